package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"text/tabwriter"
	"time"
)

// ErrDrift is returned by Soak when the server's memory or goroutines grew
// beyond SoakOptions' bounds between the first and the last cycle.
var ErrDrift = errors.New("roost: bench: server grew during the soak")

// SoakOptions configures Soak. Zero values pick the defaults listed.
type SoakOptions struct {
	// Base carries what every run inherits (Conns, RoostBin, Sources,
	// Reader, Exec, Quiet, Log, ...). Base.Spawn is the server to start:
	// empty means "roost". Scenario and URLs are set per run; Msgs, Rate,
	// Size and Channels zero mean each scenario's defaults. Base.Conns zero
	// means 2,000.
	Base Options
	// Duration bounds the soak: no run starts after it has passed, so the
	// soak ends within Duration plus one run (about 20 s). Zero means 10m.
	Duration time.Duration
	// Sample is the interval of the RSS and goroutine samples. Zero means
	// 10s.
	Sample time.Duration
	// RSSGrowth and RSSSlack bound memory drift: the server's RSS with all
	// connections up in the last cycle may exceed the first cycle's by at
	// most RSSGrowth (a fraction) plus RSSSlack bytes. Zero means 0.25 and
	// 16 MiB: Go's heap settles during the first cycle, and a leak of 1 KiB
	// per churned connection crosses the bound within the default 10
	// minutes.
	RSSGrowth float64
	RSSSlack  int64
	// GoroutineSlack bounds goroutine drift: with no connection open, the
	// server may hold at most this many more goroutines after the last
	// cycle than after the first. Zero means 16.
	GoroutineSlack float64
}

// SoakSample is one periodic reading of the server.
type SoakSample struct {
	At          time.Duration `json:"at"` // since the soak started
	RSS         int64         `json:"rss"`
	Goroutines  float64       `json:"goroutines"` // -1: not exposed
	Connections float64       `json:"connections"`
}

// SoakCycle is one round of the soak's scenarios.
type SoakCycle struct {
	// RSSConnected is, per scenario, the server's RSS once every
	// connection of that run was up.
	RSSConnected map[string]int64 `json:"rss_connected"`
	// QuietGoroutines are the server's goroutines after the cycle, once
	// its connections were gone (-1: not exposed or never quiet).
	QuietGoroutines float64 `json:"quiet_goroutines"`
	QuietRSS        int64   `json:"quiet_rss"`
}

// SoakResult is what Soak measured.
type SoakResult struct {
	Server     string        `json:"server"`
	Conns      int           `json:"conns"`
	Elapsed    time.Duration `json:"elapsed"`
	Runs       int           `json:"runs"`
	Cycles     []SoakCycle   `json:"cycles"`
	Samples    []SoakSample  `json:"samples"`
	Loss       Loss          `json:"loss"`
	LossRuns   []string      `json:"loss_runs,omitempty"` // "cycle N scenario" of runs with loss
	Evictions  float64       `json:"evictions"`           // slow consumers the server evicted
	Churned    int64         `json:"churned"`             // churn connections opened and closed
	ChurnErrs  int64         `json:"churn_errors"`
	RSSDrift   int64         `json:"rss_drift"`  // worst per-scenario growth, last cycle over first, bytes
	RSSBound   int64         `json:"rss_bound"`  // what RSSDrift may reach
	GoroDrift  float64       `json:"goro_drift"` // quiet goroutines, last cycle minus first
	GoroBound  float64       `json:"goro_bound"` // what GoroDrift may reach
	Violations []string      `json:"violations"` // bounds crossed
}

// soakScenarios is one cycle: connection churn while broadcasting, slow
// consumers next to fast ones, and a plain broadcast.
var soakScenarios = []string{"churn", "slow", "broadcast"}

// Soak starts one server and cycles through churn, slow and broadcast runs
// against it until Duration has passed, sampling the server's RSS and
// goroutines every Sample. It returns ErrLoss if any run lost, duplicated
// or misdelivered a message, ErrDrift if the server grew beyond the bounds
// (loss wins when both), with the result in either case. At least two
// cycles run, so that there is a first and a last to compare.
func Soak(ctx context.Context, so SoakOptions) (*SoakResult, error) {
	if so.Duration == 0 {
		so.Duration = 10 * time.Minute
	}
	if so.Sample == 0 {
		so.Sample = 10 * time.Second
	}
	if so.RSSGrowth == 0 {
		so.RSSGrowth = 0.25
	}
	if so.RSSSlack == 0 {
		so.RSSSlack = 16 << 20
	}
	if so.GoroutineSlack == 0 {
		so.GoroutineSlack = 16
	}
	if so.Duration < 0 || so.Sample < 0 || so.RSSGrowth < 0 || so.RSSSlack < 0 || so.GoroutineSlack < 0 {
		return nil, fmt.Errorf("%w: soak durations and bounds must not be negative", errOption)
	}
	o := so.Base
	if o.Spawn == "" {
		o.Spawn = "roost"
	}
	if o.Conns == 0 {
		o.Conns = 2000
	}
	o.Nodes, o.URLs = 1, nil
	// Validate once, as a run would.
	check := o
	if err := check.normalize(); err != nil {
		return nil, err
	}
	log := o.progress()
	srv, err := spawn(ctx, &check)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	url := "ws://" + srv.nodes[0].addr + check.WSPath
	pid := srv.pids()[0]
	res := &SoakResult{Server: o.Spawn, Conns: o.Conns}
	cl := &http.Client{Timeout: 5 * time.Second}
	defer cl.CloseIdleConnections()

	start := time.Now()
	var mu sync.Mutex // guards res.Samples while the sampler runs
	sample := func() SoakSample {
		s := SoakSample{At: time.Since(start).Round(time.Second), Goroutines: -1, Connections: -1}
		if p, err := readProc(pid); err == nil {
			s.RSS = p.RSS
		}
		st := fetchStats(ctx, cl, apiBase(url), o.APIKey)
		s.Goroutines, s.Connections = st.Goroutines, st.Connections
		return s
	}
	samplerCtx, stopSampler := context.WithCancel(ctx)
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		t := time.NewTicker(so.Sample)
		defer t.Stop()
		for {
			s := sample()
			mu.Lock()
			res.Samples = append(res.Samples, s)
			mu.Unlock()
			fmt.Fprintf(log, "soak %5s: RSS %s, %.0f goroutines, %.0f connections\n", s.At, fmtBytes(float64(s.RSS)), s.Goroutines, s.Connections)
			select {
			case <-samplerCtx.Done():
				return
			case <-t.C:
			}
		}
	}()

	var runErr error
	for cycle := 1; ctx.Err() == nil && (cycle <= 2 || time.Since(start) < so.Duration); cycle++ {
		c := SoakCycle{RSSConnected: map[string]int64{}, QuietGoroutines: -1}
		for _, sc := range soakScenarios {
			ro := o
			ro.Spawn, ro.URLs, ro.ServerPIDs = "", []string{url}, []int{pid}
			ro.Scenario, ro.Quiet, ro.Log = sc, true, io.Discard
			r, err := Run(ctx, ro)
			res.Runs++
			if err != nil && !errors.Is(err, ErrLoss) {
				runErr = fmt.Errorf("soak cycle %d %s: %w", cycle, sc, err)
				break
			}
			res.Loss.Add(r.Loss)
			if !r.Loss.OK() {
				res.LossRuns = append(res.LossRuns, fmt.Sprintf("cycle %d %s", cycle, sc))
			}
			if r.ServerSide.Evictions > 0 {
				res.Evictions += r.ServerSide.Evictions
			}
			res.Churned += r.ChurnConnects
			res.ChurnErrs += r.ChurnErrors
			c.RSSConnected[sc] = r.ServerSide.RSSConnected
			fmt.Fprintf(log, "soak cycle %d %s: %d connected, p99 %.1f ms, %d missing, %d duplicate, %.0f evictions\n",
				cycle, sc, r.Connected, r.Latency.P99, r.Loss.Missing, r.Loss.Duplicate, r.ServerSide.Evictions)
		}
		if runErr != nil {
			break
		}
		q := waitQuiet(ctx, sample)
		c.QuietGoroutines, c.QuietRSS = q.Goroutines, q.RSS
		res.Cycles = append(res.Cycles, c)
	}
	stopSampler()
	<-samplerDone
	res.Elapsed = time.Since(start).Round(time.Second)
	if runErr != nil {
		return res, runErr
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	so.judge(res)
	switch {
	case !res.Loss.OK():
		return res, ErrLoss
	case len(res.Violations) > 0:
		return res, ErrDrift
	}
	return res, nil
}

// waitQuiet waits up to 30 s for the server to report no connection, and
// returns the sample that said so (or the last one).
func waitQuiet(ctx context.Context, sample func() SoakSample) SoakSample {
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := sample()
		if s.Connections == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return s
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// judge compares the last cycle with the first against the bounds.
func (so SoakOptions) judge(res *SoakResult) {
	if len(res.Cycles) < 2 {
		res.Violations = append(res.Violations, "fewer than two cycles: nothing to compare")
		return
	}
	first, last := res.Cycles[0], res.Cycles[len(res.Cycles)-1]
	for _, sc := range soakScenarios {
		a, b := first.RSSConnected[sc], last.RSSConnected[sc]
		if a <= 0 || b <= 0 {
			continue
		}
		bound := int64(float64(a)*so.RSSGrowth) + so.RSSSlack
		if b-a > res.RSSDrift {
			res.RSSDrift, res.RSSBound = b-a, bound
		}
		if b-a > bound {
			res.Violations = append(res.Violations, fmt.Sprintf("%s: RSS with connections up grew from %s to %s (bound +%s)",
				sc, fmtBytes(float64(a)), fmtBytes(float64(b)), fmtBytes(float64(bound))))
		}
	}
	if res.RSSBound == 0 {
		res.RSSBound = int64(float64(first.RSSConnected["broadcast"])*so.RSSGrowth) + so.RSSSlack
	}
	res.GoroBound = so.GoroutineSlack
	if first.QuietGoroutines >= 0 && last.QuietGoroutines >= 0 {
		res.GoroDrift = last.QuietGoroutines - first.QuietGoroutines
		if res.GoroDrift > so.GoroutineSlack {
			res.Violations = append(res.Violations, fmt.Sprintf("goroutines with no connection grew from %.0f to %.0f (bound +%.0f)",
				first.QuietGoroutines, last.QuietGoroutines, so.GoroutineSlack))
		}
	}
}

// WriteSoak prints a soak's summary: cycles, drift against the bounds,
// loss, and any bound crossed (red when color).
func WriteSoak(w io.Writer, r *SoakResult, color bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "soak\t%s, %d connections per run, %d cycles (%d runs) in %s\n", r.Server, r.Conns, len(r.Cycles), r.Runs, r.Elapsed)
	fmt.Fprintf(tw, "cycle\tRSS connected (churn / slow / broadcast)\tquiet RSS\tquiet goroutines\n")
	for i, c := range r.Cycles {
		fmt.Fprintf(tw, "%d\t%s / %s / %s\t%s\t%.0f\n", i+1, fmtBytes(float64(c.RSSConnected["churn"])), fmtBytes(float64(c.RSSConnected["slow"])),
			fmtBytes(float64(c.RSSConnected["broadcast"])), fmtBytes(float64(c.QuietRSS)), c.QuietGoroutines)
	}
	fmt.Fprintf(tw, "RSS drift\t%s (bound %s)\n", fmtBytes(float64(r.RSSDrift)), fmtBytes(float64(r.RSSBound)))
	fmt.Fprintf(tw, "goroutine drift\t%+.0f (bound +%.0f)\n", r.GoroDrift, r.GoroBound)
	fmt.Fprintf(tw, "deliveries\t%d expected, %d delivered, %d missing, %d duplicate, %d unexpected\n", r.Loss.Expected, r.Loss.Delivered, r.Loss.Missing, r.Loss.Duplicate, r.Loss.Unexpected)
	fmt.Fprintf(tw, "churn\t%d connections opened and closed, %d errors\n", r.Churned, r.ChurnErrs)
	fmt.Fprintf(tw, "evictions\t%.0f slow consumers\n", r.Evictions)
	if err := tw.Flush(); err != nil {
		return err
	}
	var bad []string
	if !r.Loss.OK() {
		bad = append(bad, fmt.Sprintf("LOSS in %v", r.LossRuns))
	}
	bad = append(bad, r.Violations...)
	for _, b := range bad {
		if color {
			b = ansiRed + b + ansiReset
		}
		if _, err := fmt.Fprintln(w, b); err != nil {
			return err
		}
	}
	return nil
}
