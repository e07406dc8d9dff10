package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
)

// Comparison is the same scenario run against roost and the baseline,
// alternating, with the median of each metric and roost/baseline ratios.
type Comparison struct {
	Scenario string         `json:"scenario"`
	Conns    int            `json:"conns"`
	Runs     int            `json:"runs"`
	Roost    []*Result      `json:"roost"`
	Baseline []*Result      `json:"baseline"`
	Metrics  []MetricMedian `json:"metrics"`
	// Floor holds runs against the write(2) floor (Floor) when the
	// comparison included it, and FloorMetrics the fan-out figures with
	// the floor in the Baseline column (Ratio is roost/floor).
	Floor        []*Result      `json:"floor,omitempty"`
	FloorMetrics []MetricMedian `json:"floor_metrics,omitempty"`
}

// MetricMedian is one metric's medians over the runs. Ratio is
// roost/baseline (NaN when either side is missing).
type MetricMedian struct {
	Name     string  `json:"name"`
	Unit     string  `json:"unit"`
	Short    string  `json:"short"`
	Roost    float64 `json:"roost"`
	Baseline float64 `json:"baseline"`
	Ratio    float64 `json:"ratio"`
}

// metric extracts one figure from a result; ok false means not measured.
type metric struct {
	name, unit, short string // short labels chart axes
	get               func(*Result) (float64, bool)
}

func nonNeg(v float64) (float64, bool) { return v, v >= 0 && !math.IsNaN(v) }

// Names of the metrics the floor comparison keeps.
const (
	metricServerCPU = "server CPU per 1,000 deliveries"
	metricFanout    = "fan-out completion (median)"
)

// metricsFor lists the figures a scenario's comparison reports.
func metricsFor(scenario string) []metric {
	p99 := metric{"latency p99", "ms", "p99", func(r *Result) (float64, bool) { return r.Latency.P99, r.Latency.Count > 0 }}
	p50 := metric{"latency p50", "ms", "p50", func(r *Result) (float64, bool) { return r.Latency.P50, r.Latency.Count > 0 }}
	cpu := metric{metricServerCPU, "ms", "CPU/1k deliv.", func(r *Result) (float64, bool) { return r.ServerSide.CPUMsPer1000, r.ServerSide.CPUMsPer1000 > 0 }}
	rss := metric{"server RSS per connection", "KiB", "RSS/conn", func(r *Result) (float64, bool) { return r.ServerSide.RSSPerConn / 1024, r.ServerSide.RSSConnected > 0 }}
	switch scenario {
	case "idle":
		return []metric{
			rss,
			{"server Go heap per connection", "KiB", "heap/conn", func(r *Result) (float64, bool) { return nonNeg(r.ServerSide.HeapPerConn / 1024) }},
			{"server goroutines connected", "", "goroutines", func(r *Result) (float64, bool) { return nonNeg(r.ServerSide.Goroutines) }},
			{"server threads", "", "threads", func(r *Result) (float64, bool) { return float64(r.ServerSide.Threads), r.ServerSide.Threads > 0 }},
			{"kernel socket memory per connection", "KiB", "sock mem", func(r *Result) (float64, bool) { return nonNeg(r.ServerSide.SockMemPerConn / 1024) }},
			{"server idle CPU", "% core", "idle CPU", func(r *Result) (float64, bool) { return r.ServerSide.IdleCPUPercent, r.ServerSide.RSSConnected > 0 }},
			{"connect rate", "conn/s", "conn/s", func(r *Result) (float64, bool) { return r.ConnectRate, r.ConnectRate > 0 }},
			{"handshake p99", "ms", "handshake p99", func(r *Result) (float64, bool) { return r.Handshake.P99, r.Handshake.Count > 0 }},
		}
	case "broadcast", "cluster", "churn":
		return []metric{
			cpu,
			{metricFanout, "ms", "fan-out", func(r *Result) (float64, bool) { return r.FanoutMedianMs, len(r.FanoutMs) > 0 }},
			p99, p50,
			{"deliveries per second in a fan-out", "1/s", "deliv./s", func(r *Result) (float64, bool) { return r.DeliveriesPerS, r.DeliveriesPerS > 0 }},
			rss,
			{"harness CPU per 1,000 deliveries", "ms", "harness CPU/1k", func(r *Result) (float64, bool) { return r.HarnessCPUMsPer1000, r.HarnessCPUMsPer1000 > 0 }},
		}
	default:
		return []metric{p50, p99,
			{"latency p99.9", "ms", "p99.9", func(r *Result) (float64, bool) { return r.Latency.P999, r.Latency.Count > 0 }},
			cpu, rss,
			{"server evictions", "", "evictions", func(r *Result) (float64, bool) { return nonNeg(r.ServerSide.Evictions) }},
		}
	}
}

// Compare runs o's scenario runs times against a spawned roost and a spawned
// baseline, alternating which goes first, and returns medians and ratios.
// o.Spawn and o.URLs are ignored. A run with loss makes Compare return
// ErrLoss after all runs (with the Comparison).
func Compare(ctx context.Context, o Options, runs int) (*Comparison, error) {
	return compare(ctx, o, runs, []string{"roost", "baseline"})
}

func compare(ctx context.Context, o Options, runs int, sides []string) (*Comparison, error) {
	if runs < 1 {
		return nil, fmt.Errorf("%w: --runs must be at least 1", errOption)
	}
	o.URLs = nil
	if o.Scenario == "cluster" {
		return nil, fmt.Errorf("%w: compare has no cluster scenario (the baseline is single-node)", errOption)
	}
	o.Nodes = 1
	for _, s := range sides {
		if s == "roost" {
			if _, err := findRoost(o.RoostBin); err != nil {
				return nil, err
			}
		}
	}
	c := &Comparison{Scenario: o.Scenario, Runs: runs}
	var lossErr error
	log := o.progress()
	for i := range runs {
		// Each run starts with a different side, so that a drift of the
		// machine's load does not favour one.
		order := append(slices.Clone(sides[i%len(sides):]), sides[:i%len(sides)]...)
		for _, side := range order {
			ro := o
			ro.Spawn = side
			fmt.Fprintf(log, "== %s run %d/%d against %s\n", o.Scenario, i+1, runs, side)
			res, err := Run(ctx, ro)
			if errors.Is(err, ErrLoss) {
				lossErr = ErrLoss
			} else if err != nil {
				return c, fmt.Errorf("%s run %d against %s: %w", o.Scenario, i+1, side, err)
			}
			c.Conns = res.Conns
			switch side {
			case "roost":
				c.Roost = append(c.Roost, res)
			case "floor":
				c.Floor = append(c.Floor, res)
			default:
				c.Baseline = append(c.Baseline, res)
			}
		}
	}
	c.Metrics = medians(o.Scenario, c.Roost, c.Baseline)
	if len(c.Floor) > 0 {
		for _, m := range medians(o.Scenario, c.Roost, c.Floor) {
			if m.Name == metricServerCPU || m.Name == metricFanout {
				c.FloorMetrics = append(c.FloorMetrics, m)
			}
		}
	}
	return c, lossErr
}

// medians computes each metric's median per side and the ratio.
func medians(scenario string, roost, base []*Result) []MetricMedian {
	var out []MetricMedian
	side := func(m metric, rs []*Result) float64 {
		var v []float64
		for _, r := range rs {
			if x, ok := m.get(r); ok {
				v = append(v, x)
			}
		}
		return median(v)
	}
	for _, m := range metricsFor(scenario) {
		mm := MetricMedian{Name: m.name, Unit: m.unit, Short: m.short, Roost: side(m, roost), Baseline: side(m, base)}
		mm.Ratio = mm.Roost / mm.Baseline
		out = append(out, mm)
	}
	return out
}

// writeRows writes one line per metric with format, which takes the
// label, roost's median, the other side's, and the ratio.
func writeRows(w io.Writer, format string, ms []MetricMedian) {
	for _, m := range ms {
		name := m.Name
		if m.Unit != "" {
			name += " (" + m.Unit + ")"
		}
		fmt.Fprintf(w, format, name, fmtNum(m.Roost), fmtNum(m.Baseline), fmtRatio(m.Ratio))
	}
}

// WriteComparison prints a comparison's medians and ratios, and any loss.
func WriteComparison(w io.Writer, c *Comparison, color bool) error {
	fmt.Fprintf(w, "%s at %d connections, median of %d run(s) each\n", c.Scenario, c.Conns, c.Runs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "metric\troost\tbaseline\troost/baseline\t\n")
	writeRows(tw, "%s\t%s\t%s\t%s\t\n", c.Metrics)
	if len(c.FloorMetrics) > 0 {
		fmt.Fprintf(tw, "\t\t\t\t\nagainst the write(2) floor\troost\tfloor\troost/floor\t\n")
		writeRows(tw, "%s\t%s\t%s\t%s\t\n", c.FloorMetrics)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, rs := range [][]*Result{c.Roost, c.Baseline, c.Floor} {
		for _, r := range rs {
			if !r.Loss.OK() {
				msg := fmt.Sprintf("LOSS against %s: %d missing, %d duplicate, %d unexpected of %d", r.Server, r.Loss.Missing, r.Loss.Duplicate, r.Loss.Unexpected, r.Loss.Expected)
				if color {
					msg = ansiRed + msg + ansiReset
				}
				fmt.Fprintln(w, msg)
			}
		}
	}
	return nil
}

func fmtNum(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "-"
	case math.Abs(v) >= 1000:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf("%.2fx", v)
}
