package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Markers delimit the generated part of docs/benchmarks.md's harness section.
const (
	suiteBegin     = "<!-- suite:begin -->"
	suiteEnd       = "<!-- suite:end -->"
	harnessHeading = "## Harness (roost-bench)"
)

var errNoSection = errors.New("roost: bench: docs/benchmarks.md has no \"## Harness (roost-bench)\" heading")

// SuiteOptions configures Suite.
type SuiteOptions struct {
	// Out is the docs directory: Out/benchmarks.md is updated and charts go
	// to Out/img. Empty means "docs".
	Out string
	// Base carries options every run inherits (RoostBin, Sources, Quiet,
	// Exec, ...); scenario, sizes and targets are set by the suite.
	Base Options
	// Runs is how many runs per server the comparisons take medians of.
	// Zero means 3.
	Runs int
	// Conns is the size of the comparisons. Zero means 18,000.
	Conns int
	// Sizes are the extra sizes of the scaling charts. Nil means 2,000
	// and 6,000.
	Sizes []int
}

// suiteData is everything the suite measured, for the docs and charts.
type suiteData struct {
	started     time.Time
	elapsed     time.Duration
	sides       []string
	comparisons []*Comparison
	scaling     map[string]map[string][]*Result // scenario -> server -> results
	note        string
}

// Suite runs the standard suite (idle, broadcast and channels, each compared
// between roost and the baseline at Conns, plus idle and broadcast at Sizes
// for the scaling charts), then regenerates the marked part of
// Out/benchmarks.md and the charts in Out/img. Without a roost binary it
// measures the baseline alone and says so in the docs.
func Suite(ctx context.Context, so SuiteOptions) error {
	if so.Out == "" {
		so.Out = "docs"
	}
	if so.Runs == 0 {
		so.Runs = 3
	}
	if so.Conns == 0 {
		so.Conns = 18000
	}
	if so.Sizes == nil {
		so.Sizes = []int{2000, 6000}
	}
	docPath := filepath.Join(so.Out, "benchmarks.md")
	if _, err := os.Stat(docPath); err != nil {
		return err
	}
	d := &suiteData{started: time.Now(), sides: []string{"roost", "baseline"}, scaling: map[string]map[string][]*Result{}}
	if _, err := findRoost(so.Base.RoostBin); err != nil {
		d.sides = []string{"baseline"}
		d.note = "roost was not measured in this run: " + err.Error()
	}
	log := so.Base.progress()
	var lossErr error
	for _, sc := range []string{"idle", "broadcast", "channels"} {
		o := so.Base
		o.Scenario, o.Conns, o.URLs, o.Spawn, o.Nodes = sc, so.Conns, nil, "", 1
		o.Channels, o.Msgs, o.Rate = 0, 0, 0
		sides := d.sides
		if sc == "broadcast" && len(d.sides) == 2 {
			sides = append(slices.Clone(d.sides), "floor")
		}
		c, err := compare(ctx, o, so.Runs, sides)
		if errors.Is(err, ErrLoss) {
			lossErr = err
		} else if err != nil {
			return err
		}
		d.comparisons = append(d.comparisons, c)
		if sc == "channels" {
			continue
		}
		d.scaling[sc] = map[string][]*Result{"roost": c.Roost, "baseline": c.Baseline}
		for _, n := range so.Sizes {
			for _, side := range d.sides {
				ro := o
				ro.Conns, ro.Spawn = n, side
				fmt.Fprintf(log, "== %s at %d against %s (scaling)\n", sc, n, side)
				res, err := Run(ctx, ro)
				if errors.Is(err, ErrLoss) {
					lossErr = err
				} else if err != nil {
					return err
				}
				d.scaling[sc][side] = append(d.scaling[sc][side], res)
			}
		}
	}
	d.elapsed = time.Since(d.started)
	if err := d.plots(filepath.Join(so.Out, "img")); err != nil {
		return err
	}
	doc, err := os.ReadFile(docPath)
	if err != nil {
		return err
	}
	var section bytes.Buffer
	d.markdown(&section)
	doc, err = replaceSuiteSection(doc, section.Bytes())
	if err != nil {
		return err
	}
	if err := os.WriteFile(docPath, doc, 0o644); err != nil {
		return err
	}
	for _, c := range d.comparisons {
		WriteComparison(log, c, false)
	}
	return lossErr
}

// plots writes the suite's charts into dir.
func (d *suiteData) plots(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, c := range d.comparisons {
		if err := PlotComparison(dir, c); err != nil {
			return err
		}
	}
	if b := d.scaling["broadcast"]; b != nil {
		if err := plotScaling(filepath.Join(dir, "fanout-vs-conns.png"), "broadcast: fan-out completion (median)", "ms", b,
			func(r *Result) (float64, bool) { return r.FanoutMedianMs, len(r.FanoutMs) > 0 }); err != nil {
			return err
		}
	}
	if i := d.scaling["idle"]; i != nil {
		if err := plotScaling(filepath.Join(dir, "memory-per-conn.png"), "idle: server RSS growth per connection", "KiB", i,
			func(r *Result) (float64, bool) { return r.ServerSide.RSSPerConn / 1024, r.ServerSide.RSSConnected > 0 }); err != nil {
			return err
		}
	}
	return nil
}

// machine describes this host for the record.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
	}
	kernel := ""
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		kernel = ", Linux " + unix.ByteSliceToString(u.Release[:])
	}
	return fmt.Sprintf("%d CPU (%s)%s%s, %s, RLIMIT_NOFILE %d", runtime.NumCPU(), model, mem, kernel, runtime.Version(), connsPerWorker()+fdReserve)
}

// markdown writes the generated section.
func (d *suiteData) markdown(w io.Writer) {
	fmt.Fprintf(w, "Generated by `make bench` (`roost-bench suite --out docs`) on %s in %s.\n", d.started.UTC().Format("2006-01-02 15:04 MST"), d.elapsed.Round(time.Second))
	fmt.Fprintf(w, "Machine: %s. Load generator and server share the machine.\n", machine())
	if d.note != "" {
		fmt.Fprintf(w, "\n**%s.**\n", d.note)
	}
	for _, c := range d.comparisons {
		fmt.Fprintf(w, "\n#### %s, %d connections (median of %d runs per server)\n\n", c.Scenario, c.Conns, c.Runs)
		fmt.Fprintln(w, "| metric | roost | baseline | roost/baseline |")
		fmt.Fprintln(w, "|---|--:|--:|--:|")
		writeRows(w, "| %s | %s | %s | %s |\n", c.Metrics)
		if len(c.FloorMetrics) > 0 {
			fmt.Fprintf(w, "\nAgainst the write(2) floor in the same runs (`bench.Floor`: the push written to every member with one bare write(2) each, %d loops, nothing else; median of %d runs):\n\n", floorWriters(), len(c.Floor))
			fmt.Fprintln(w, "| metric | roost | floor | roost/floor |")
			fmt.Fprintln(w, "|---|--:|--:|--:|")
			writeRows(w, "| %s | %s | %s | %s |\n", c.FloorMetrics)
		}
		loss := Loss{}
		for _, rs := range [][]*Result{c.Roost, c.Baseline, c.Floor} {
			for _, r := range rs {
				loss.Add(r.Loss)
			}
		}
		if c.Scenario != "idle" {
			fmt.Fprintf(w, "\nDeliveries checked: %d expected, %d missing, %d duplicate, %d unexpected.\n", loss.Expected, loss.Missing, loss.Duplicate, loss.Unexpected)
		}
		var loads []float64
		for _, rs := range [][]*Result{c.Roost, c.Baseline, c.Floor} {
			for _, r := range rs {
				loads = append(loads, r.LoadAvg)
			}
		}
		fmt.Fprintf(w, "\nMachine load average at the start of the runs: median %.1f, max %.1f (other work on the machine competes for the 2 cores).\n", median(loads), slices.Max(loads))
		fmt.Fprintf(w, "\n![%s: roost vs baseline](img/%s-roost-vs-baseline.png)\n", c.Scenario, c.Scenario)
		if c.Scenario != "idle" {
			fmt.Fprintf(w, "![%s: latency CDF](img/%s-latency-cdf.png)\n", c.Scenario, c.Scenario)
		}
	}
	for _, sc := range []string{"idle", "broadcast"} {
		bySide := d.scaling[sc]
		if bySide == nil {
			continue
		}
		fmt.Fprintf(w, "\n#### %s by size (medians)\n\n", sc)
		fmt.Fprintln(w, "| server | connections | RSS/conn (KiB) | fan-out (ms) | p99 (ms) | CPU ms/1k deliveries |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|")
		for _, side := range d.sides {
			byN := map[int][]*Result{}
			var ns []int
			for _, r := range bySide[side] {
				if byN[r.Conns] == nil {
					ns = append(ns, r.Conns)
				}
				byN[r.Conns] = append(byN[r.Conns], r)
			}
			for _, n := range sortedInts(ns) {
				rs := byN[n]
				col := func(f func(*Result) float64) string {
					var v []float64
					for _, r := range rs {
						if x := f(r); x > 0 && !math.IsNaN(x) {
							v = append(v, x)
						}
					}
					return fmtNum(median(v))
				}
				fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s |\n", side, n,
					col(func(r *Result) float64 { return r.ServerSide.RSSPerConn / 1024 }),
					col(func(r *Result) float64 { return r.FanoutMedianMs }),
					col(func(r *Result) float64 { return r.Latency.P99 }),
					col(func(r *Result) float64 { return r.ServerSide.CPUMsPer1000 }))
			}
		}
	}
	fmt.Fprintln(w, "\n![fan-out completion vs connections](img/fanout-vs-conns.png)")
	fmt.Fprintln(w, "![memory per connection vs connections](img/memory-per-conn.png)")
}

func sortedInts(v []int) []int {
	out := slices.Clone(v)
	slices.Sort(out)
	return out
}

// replaceSuiteSection puts body between the suite markers, adding the
// markers at the end of the harness section when they are missing.
func replaceSuiteSection(doc, body []byte) ([]byte, error) {
	block := append(append(append([]byte(suiteBegin+"\n"), body...), '\n'), suiteEnd...)
	if b := bytes.Index(doc, []byte(suiteBegin)); b >= 0 {
		e := bytes.Index(doc[b:], []byte(suiteEnd))
		if e < 0 {
			return nil, fmt.Errorf("roost: bench: %s without %s", suiteBegin, suiteEnd)
		}
		out := append([]byte{}, doc[:b]...)
		out = append(out, block...)
		return append(out, doc[b+e+len(suiteEnd):]...), nil
	}
	h := bytes.Index(doc, []byte(harnessHeading))
	if h < 0 {
		return nil, errNoSection
	}
	end := len(doc)
	if n := bytes.Index(doc[h+len(harnessHeading):], []byte("\n## ")); n >= 0 {
		end = h + len(harnessHeading) + n + 1
	}
	out := append([]byte{}, bytes.TrimRight(doc[:end], "\n")...)
	out = append(out, "\n\n"...)
	out = append(out, block...)
	out = append(out, '\n')
	if end < len(doc) {
		out = append(out, '\n')
		out = append(out, doc[end:]...)
	}
	return out, nil
}
