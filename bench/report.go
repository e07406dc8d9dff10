package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

const (
	ansiRed   = "\x1b[31m"
	ansiReset = "\x1b[0m"
)

// WriteTable prints a run's figures as an aligned table. color turns the
// loss line red (for terminals).
func WriteTable(w io.Writer, r *Result, color bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	row("scenario", "%s against %s (%d node(s)), %d worker process(es)", r.Scenario, r.Server, r.Nodes, r.Workers)
	row("machine load", "%.2f (1-minute load average at start)", r.LoadAvg)
	row("connections", "%d connected, %d failed, %.1fs (%.0f/s)", r.Connected, r.ConnectFailed, r.ConnectSeconds, r.ConnectRate)
	for _, e := range r.ConnectErrors {
		row("  connect error", "%s", e)
	}
	row("handshake", "%s", fmtPct(r.Handshake))
	if r.Msgs > 0 {
		row("messages", "%d of %d bytes over %d channel(s), %d publish errors", r.Msgs, r.Size, r.Channels, r.PublishErrors)
		row("latency", "%s", fmtPct(r.Latency))
		if r.RemoteLatency.Count > 0 {
			row("cross-node latency", "%s", fmtPct(r.RemoteLatency))
		}
		if r.RedisCommandsPerMsg >= 0 && r.RedisCommands != nil {
			row("redis", "%.2f commands and %.3f ms CPU per published message %s", r.RedisCommandsPerMsg, r.RedisCPUMsPerMsg, fmtCounts(r.RedisCommands))
		}
		if len(r.FanoutMs) > 0 {
			row("fan-out completion", "median %.1f ms, max %.1f ms (%.0f deliveries/s)", r.FanoutMedianMs, r.FanoutMaxMs, r.DeliveriesPerS)
		} else {
			row("deliveries/s", "%.0f", r.DeliveriesPerS)
		}
		row("deliveries", "%d expected, %d delivered, %d missing, %d duplicate, %d unexpected", r.Loss.Expected, r.Loss.Delivered, r.Loss.Missing, r.Loss.Duplicate, r.Loss.Unexpected)
	}
	if r.Closed > 0 {
		row("closed by server", "%d %s", r.Closed, fmtCodes(r.CloseCodes))
	}
	if r.ChurnConnects > 0 || r.ChurnErrors > 0 {
		row("churn", "%d connects, %d errors, handshake %s", r.ChurnConnects, r.ChurnErrors, fmtPct(r.ChurnHandshake))
	}
	s := r.ServerSide
	if s.RSSConnected > 0 {
		row("server RSS", "%s before, %s connected, %s per connection, %d threads", fmtBytes(float64(s.RSSBefore)), fmtBytes(float64(s.RSSConnected)), fmtBytes(s.RSSPerConn), s.Threads)
	}
	if s.HeapPerConn >= 0 {
		row("server Go heap", "%s per connection", fmtBytes(s.HeapPerConn))
	}
	if s.Goroutines >= 0 {
		row("server goroutines", "%.0f before, %.0f connected", s.GoroutinesIdle, s.Goroutines)
	}
	if s.SlabPerConn >= 0 {
		row("kernel slab", "%s connected, %s per connection (both ends)", fmtBytes(float64(s.SlabConnected)), fmtBytes(s.SlabPerConn))
	}
	if s.SockMemPerConn >= 0 {
		row("kernel socket memory", "%s per connection (both ends)", fmtBytes(s.SockMemPerConn))
	}
	if r.Scenario == "idle" && s.RSSConnected > 0 {
		row("server idle CPU", "%.2f%% of a core", s.IdleCPUPercent)
	}
	if s.CPUMs > 0 {
		row("server CPU", "%.0f ms, %.2f ms per 1,000 deliveries", s.CPUMs, s.CPUMsPer1000)
	}
	if s.Evictions > 0 {
		row("server evictions", "%.0f", s.Evictions)
	}
	if r.HarnessCPUMs > 0 {
		row("harness CPU", "%.0f ms, %.2f ms per 1,000 deliveries (%s reader, workers only)", r.HarnessCPUMs, r.HarnessCPUMsPer1000, r.Reader)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !r.Loss.OK() {
		msg := fmt.Sprintf("LOSS: %d missing, %d duplicate, %d unexpected of %d expected deliveries\n", r.Loss.Missing, r.Loss.Duplicate, r.Loss.Unexpected, r.Loss.Expected)
		if color {
			msg = ansiRed + strings.TrimSuffix(msg, "\n") + ansiReset + "\n"
		}
		_, err := io.WriteString(w, msg)
		return err
	}
	return nil
}

// ColorOK reports whether w is a terminal that should get color.
func ColorOK(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f) && os.Getenv("NO_COLOR") == ""
}

// WriteJSON writes v as indented JSON to path.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func fmtPct(p Percentiles) string {
	if p.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f ms (n=%d)", p.P50, p.P90, p.P99, p.P999, p.Max, p.Count)
}

func fmtCodes(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return "(" + strings.Join(parts, " ") + ")"
}

// fmtBytes prints a byte count with a binary unit.
func fmtBytes(b float64) string {
	switch {
	case b < 0:
		return "-"
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.2f KiB", b/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", b)
	}
}

// fmtCounts prints per-command counts, largest first.
func fmtCounts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || (m[keys[i]] == m[keys[j]] && keys[i] < keys[j]) })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return "(" + strings.Join(parts, " ") + ")"
}
