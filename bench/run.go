package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// ErrLoss is returned by Run (with its Result) when a delivery was missing,
// duplicated or unexpected.
var ErrLoss = errors.New("roost: bench: deliveries lost or duplicated")

// Result is everything one run measured. Sizes are bytes, times
// milliseconds unless the name says otherwise; -1 means not measured.
type Result struct {
	Scenario string    `json:"scenario"`
	Server   string    `json:"server"` // roost, baseline, or the URL
	Nodes    int       `json:"nodes"`
	Conns    int       `json:"conns"`
	Channels int       `json:"channels"`
	Msgs     int       `json:"msgs"`
	Size     int       `json:"size"`
	Workers  int       `json:"workers"`
	Started  time.Time `json:"started"`
	// LoadAvg is the machine's 1-minute load average when the run started:
	// on a shared machine it says how much else competed for the cores.
	LoadAvg float64 `json:"load_avg"`

	Connected      int         `json:"connected"`
	ConnectFailed  int         `json:"connect_failed"`
	ConnectErrors  []string    `json:"connect_errors,omitempty"`
	ConnectSeconds float64     `json:"connect_seconds"`
	ConnectRate    float64     `json:"connect_rate"` // connections per second
	Handshake      Percentiles `json:"handshake"`    // connect + upgrade + subscribe

	Latency Percentiles `json:"latency"` // publish (payload timestamp) to delivery
	// RemoteLatency is Latency for the connections on other nodes than the
	// one publishes go to: cross-node delivery (empty with one node).
	RemoteLatency Percentiles `json:"remote_latency"`
	// Redis figures over the publish phase, when the run spawned a cluster:
	// commands (INFO commandstats calls, INFO itself excluded) and Redis CPU
	// (used_cpu_user+sys) per published message; -1 when not measured.
	RedisCommands       map[string]int64 `json:"redis_commands,omitempty"`
	RedisCommandsPerMsg float64          `json:"redis_commands_per_msg"`
	RedisCPUMsPerMsg    float64          `json:"redis_cpu_ms_per_msg"`
	// FanoutMs is, per message, the time from publish to its last delivery.
	FanoutMs       []float64      `json:"fanout_ms,omitempty"`
	FanoutMedianMs float64        `json:"fanout_median_ms"`
	FanoutMaxMs    float64        `json:"fanout_max_ms"`
	DeliveriesPerS float64        `json:"deliveries_per_s"`
	Loss           Loss           `json:"loss"`
	PublishErrors  int            `json:"publish_errors"`
	Closed         int            `json:"closed"` // tracked connections the server ended
	CloseCodes     map[string]int `json:"close_codes,omitempty"`

	ChurnConnects  int64       `json:"churn_connects,omitempty"`
	ChurnErrors    int64       `json:"churn_errors,omitempty"`
	ChurnHandshake Percentiles `json:"churn_handshake"`

	ServerSide ServerFigures `json:"server_side"`
	// HarnessCPUMs is the worker processes' own CPU (utime+stime) over the
	// publish phase, and HarnessCPUMsPer1000 that per 1,000 deliveries; 0
	// when workers run in-process. Reader says how the workers read.
	HarnessCPUMs        float64 `json:"harness_cpu_ms"`
	HarnessCPUMsPer1000 float64 `json:"harness_cpu_ms_per_1000_deliveries"`
	Reader              string  `json:"reader"`

	hist *hdrhistogram.Histogram // merged latency, for plots
}

// ServerFigures are the server side of a run, summed over nodes.
type ServerFigures struct {
	PIDs           []int   `json:"pids,omitempty"`
	RSSBefore      int64   `json:"rss_before"`        // before connecting
	RSSConnected   int64   `json:"rss_connected"`     // after connecting (and Hold, for idle)
	RSSPerConn     float64 `json:"rss_per_conn"`      // growth per connection
	HeapPerConn    float64 `json:"heap_per_conn"`     // Go heap growth per connection, when exposed
	GoroutinesIdle float64 `json:"goroutines_before"` // before connecting
	Goroutines     float64 `json:"goroutines"`        // while connected
	Threads        int     `json:"threads"`
	IdleCPUPercent float64 `json:"idle_cpu_percent"` // of one core, over Hold
	CPUMs          float64 `json:"cpu_ms"`           // during the publish phase
	CPUMsPer1000   float64 `json:"cpu_ms_per_1000_deliveries"`
	SockMemPerConn float64 `json:"kernel_sock_mem_per_conn"` // /proc/net/sockstat growth, both ends
	// SlabPerConn is the growth of the kernel's slab memory (/proc/meminfo
	// Slab: socket structures, TCP state, epoll items, dentries) per
	// connection, both ends of loopback and anything else the machine did
	// meanwhile; SlabConnected is Slab once connected. -1: not measured.
	SlabPerConn   float64 `json:"kernel_slab_per_conn"`
	SlabConnected int64   `json:"kernel_slab_connected"`
	Evictions     float64 `json:"evictions"`
}

// Run performs one scenario: it starts servers if asked, spreads the
// connections over workers, publishes, checks every delivery and gathers
// server figures. A run with loss returns its Result and ErrLoss.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.normalize(); err != nil {
		return nil, err
	}
	log := o.progress()
	res := &Result{Scenario: o.Scenario, Nodes: o.Nodes, Conns: o.Conns, Channels: o.Channels, Msgs: o.Msgs, Size: o.Size, Started: time.Now().UTC(), LoadAvg: loadAvg(), Reader: o.Reader}
	if res.Reader == "" {
		res.Reader = ReaderEpoll
	}
	urls, pids := o.URLs, o.ServerPIDs
	var redisAddr string
	res.Server = o.Spawn
	if o.Spawn != "" {
		fmt.Fprintf(log, "starting %d %s node(s)\n", o.Nodes, o.Spawn)
		srv, err := spawn(ctx, &o)
		if err != nil {
			return nil, err
		}
		defer srv.stop()
		urls = nil
		for _, n := range srv.nodes {
			urls = append(urls, "ws://"+n.addr+o.WSPath)
		}
		pids = srv.pids()
		if srv.redis != nil {
			redisAddr = srv.redis.addr
		}
	} else {
		res.Server = urls[0]
	}
	res.ServerSide.PIDs = pids
	r := &runner{o: &o, log: log, res: res, urls: urls, pids: pids, redisAddr: redisAddr, http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}}
	defer r.http.CloseIdleConnections()
	if err := r.run(ctx); err != nil {
		return res, err
	}
	if !res.Loss.OK() {
		return res, ErrLoss
	}
	return res, nil
}

// runner carries one run's state.
type runner struct {
	o    *Options
	log  io.Writer
	res  *Result
	urls []string
	pids []int
	// redisAddr is the spawned cluster's redis-server, for its command
	// counts; empty otherwise.
	redisAddr string
	http      *http.Client
	workers   []*workerHandle
	ui        *progressUI
}

// sample reads /proc for the servers, if their PIDs are known.
func (r *runner) sample() (procSample, bool) {
	if len(r.pids) == 0 {
		return procSample{}, false
	}
	s, err := readProcs(r.pids)
	return s, err == nil
}

// stats reads every node's HTTP stats and sums them.
func (r *runner) stats(ctx context.Context) serverStats {
	var all []serverStats
	for _, u := range r.urls {
		all = append(all, fetchStats(ctx, r.http, apiBase(u), r.o.APIKey))
	}
	return sumStats(all)
}

// assign picks each connection's channel index.
func (r *runner) assign() []int32 {
	o := r.o
	out := make([]int32, o.Conns)
	if o.Channels <= 1 {
		return out
	}
	if o.Zipf > 1 {
		z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), o.Zipf, 1, uint64(o.Channels-1))
		for i := range out {
			out[i] = int32(z.Uint64())
		}
		return out
	}
	for i := range out {
		out[i] = int32(i % o.Channels)
	}
	return out
}

func (r *runner) run(ctx context.Context) error {
	o, res := r.o, r.res
	before, haveProc := r.sample()
	statsBefore := r.stats(ctx)
	sockBefore := sockstatMem()
	slabBefore := meminfoBytes("Slab")

	sources, err := parseSources(o.Sources)
	if err != nil {
		return err
	}
	per := connsPerWorker()
	if o.PerWorker > 0 {
		per = min(per, o.PerWorker)
	}
	nw := max((o.Conns+per-1)/per, 1)
	res.Workers = nw
	channels := make([]string, o.Channels)
	for i := range channels {
		channels[i] = "bench." + strconv.Itoa(i)
	}
	assign := r.assign()
	r.ui = newProgressUI(o, r.log)
	defer r.ui.stop()
	connectBar := r.ui.bar("connect", int64(o.Conns))

	// Start the workers and hand each its slice of connections.
	defer func() {
		for _, w := range r.workers {
			w.kill()
		}
	}()
	for i := range nw {
		first, last := i*o.Conns/nw, (i+1)*o.Conns/nw
		var cmd *exec.Cmd
		if !o.InProcess {
			cmd = o.command("worker")
		}
		w, err := startWorker(ctx, i, cmd)
		if err != nil {
			return err
		}
		r.workers = append(r.workers, w)
		plan := &Plan{URLs: r.urls, First: first, Channels: channels, Assign: assign[first:last], Sources: sources,
			Dials: o.Dials, ChurnRate: o.ChurnRate / float64(nw), Reader: o.Reader, Readers: o.Readers}
		if o.ConnectRate > 0 {
			plan.ConnectRate = o.ConnectRate / float64(nw)
		}
		if o.Scenario == "slow" {
			for j := first; j < last; j++ {
				if int(float64(j+1)*o.SlowShare) > int(float64(j)*o.SlowShare) {
					plan.Slow = append(plan.Slow, j-first)
				}
			}
		}
		if o.Scenario != "churn" {
			plan.ChurnRate = 0
		}
		if err := w.send(toWorker{Plan: plan}); err != nil {
			return fmt.Errorf("%w %d: %v", errWorker, i, err)
		}
	}
	fmt.Fprintf(r.log, "connecting %d connections over %d worker(s) to %d node(s)\n", o.Conns, nw, len(r.urls))
	var handshakes []*hdrhistogram.Snapshot
	connected := make([]int, nw)
	for i, w := range r.workers {
		ready, err := r.waitFor(ctx, w, func(m fromWorker) bool { return m.Ready != nil }, func(p *Progress) {
			connected[i] = p.Connected + p.Failed
			connectBar.set(int64(sum(connected)))
		})
		if err != nil {
			return err
		}
		res.Connected += ready.Ready.Connected
		res.ConnectFailed += ready.Ready.Failed
		res.ConnectSeconds = max(res.ConnectSeconds, ready.Ready.Seconds)
		handshakes = append(handshakes, ready.Ready.Handshake)
		for _, e := range ready.Ready.Errors {
			if len(res.ConnectErrors) < 5 && !slices.Contains(res.ConnectErrors, e) {
				res.ConnectErrors = append(res.ConnectErrors, e)
			}
		}
	}
	connectBar.set(int64(o.Conns))
	if res.ConnectSeconds > 0 {
		res.ConnectRate = float64(res.Connected) / res.ConnectSeconds
	}
	if h, err := mergeSnapshots(handshakes); err == nil {
		res.Handshake = percentiles(h)
	}
	fmt.Fprintf(r.log, "connected %d (failed %d) in %.1fs\n", res.Connected, res.ConnectFailed, res.ConnectSeconds)

	// Idle figures: after the hold for idle, at once otherwise.
	idleStart, _ := r.sample()
	t0 := time.Now()
	if o.Scenario == "idle" {
		select {
		case <-time.After(o.Hold):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	after, _ := r.sample()
	statsAfter := r.stats(ctx)
	sf := &res.ServerSide
	sf.RSSPerConn, sf.HeapPerConn, sf.GoroutinesIdle, sf.Goroutines = -1, -1, statsBefore.Goroutines, statsAfter.Goroutines
	sf.SockMemPerConn = -1
	if haveProc {
		sf.RSSBefore, sf.RSSConnected, sf.Threads = before.RSS, after.RSS, after.Threads
		if res.Connected > 0 {
			sf.RSSPerConn = float64(after.RSS-before.RSS) / float64(res.Connected)
		}
		if o.Scenario == "idle" {
			sf.IdleCPUPercent = 100 * float64(after.CPU-idleStart.CPU) / float64(time.Since(t0))
		}
	}
	if statsBefore.HeapAlloc >= 0 && statsAfter.HeapAlloc >= 0 && res.Connected > 0 {
		sf.HeapPerConn = (statsAfter.HeapAlloc - statsBefore.HeapAlloc) / float64(res.Connected)
	}
	if sockAfter := sockstatMem(); sockBefore >= 0 && sockAfter >= 0 && res.Connected > 0 {
		sf.SockMemPerConn = float64(sockAfter-sockBefore) / float64(res.Connected)
	}
	sf.SlabPerConn, sf.SlabConnected = -1, meminfoBytes("Slab")
	if slabBefore >= 0 && sf.SlabConnected >= 0 && res.Connected > 0 {
		sf.SlabPerConn = float64(sf.SlabConnected-slabBefore) / float64(res.Connected)
	}

	// Publish, then let the workers count what arrived.
	cpu0, _ := r.sample()
	harness0, haveHarness := r.workerCPU()
	var redis0 redisFigures
	haveRedis := false
	if r.redisAddr != "" && o.Msgs > 0 {
		var err error
		redis0, err = readRedis(r.redisAddr)
		haveRedis = err == nil
	}
	pubStart := time.Now()
	published, perr := r.publish(ctx, channels)
	res.PublishErrors = perr
	for _, w := range r.workers {
		if err := w.send(toWorker{Expect: &Expect{Published: published, Wait: o.Wait}}); err != nil {
			return fmt.Errorf("%w %d: %v", errWorker, w.index, err)
		}
	}
	deliverBar := r.ui.bar("deliver", 0)
	delivered := make([]int64, nw)
	var latencies, remote, churnHS []*hdrhistogram.Snapshot
	completion := map[int32][]int64{}
	res.CloseCodes = map[string]int{}
	for i, w := range r.workers {
		rep, err := r.waitFor(ctx, w, func(m fromWorker) bool { return m.Report != nil }, func(p *Progress) {
			delivered[i] = p.Delivered
			deliverBar.set(sum(delivered))
		})
		if err != nil {
			return err
		}
		wr := rep.Report
		res.Loss.Add(wr.Loss)
		latencies = append(latencies, wr.Latency)
		if wr.RemoteLatency != nil {
			remote = append(remote, wr.RemoteLatency)
		}
		for ch, c := range wr.Completion {
			completion[ch] = mergeMax(completion[ch], c)
		}
		res.Closed += wr.Closed
		for k, v := range wr.CloseCodes {
			res.CloseCodes[k] += v
		}
		res.ChurnConnects += wr.ChurnConnects
		res.ChurnErrors += wr.ChurnErrors
		churnHS = append(churnHS, wr.ChurnHandshake)
	}
	phase := time.Since(pubStart)
	deliverBar.set(res.Loss.Delivered)
	cpu1, _ := r.sample()
	harness1, _ := r.workerCPU()
	res.RedisCommandsPerMsg, res.RedisCPUMsPerMsg = -1, -1
	if haveRedis {
		if redis1, err := readRedis(r.redisAddr); err == nil && sum(published) > 0 {
			var total int64
			res.RedisCommands, total = redisDelta(redis0, redis1)
			res.RedisCommandsPerMsg = float64(total) / float64(sum(published))
			res.RedisCPUMsPerMsg = (redis1.cpu - redis0.cpu) * 1000 / float64(sum(published))
		}
	}
	statsEnd := r.stats(ctx)
	r.ui.stop()

	h, err := mergeSnapshots(latencies)
	if err != nil {
		return err
	}
	res.hist = h
	if ch, err := mergeSnapshots(churnHS); err == nil {
		res.ChurnHandshake = percentiles(ch)
	}
	res.Latency = percentiles(h)
	if len(remote) > 0 {
		if rh, err := mergeSnapshots(remote); err == nil {
			res.RemoteLatency = percentiles(rh)
		}
	}
	if o.Channels == 1 { // fan-out completion means one channel's every member
		for s, ns := range completion[0] {
			if int64(s) < published[0] && ns > 0 {
				res.FanoutMs = append(res.FanoutMs, float64(ns)/1e6)
			}
		}
	}
	if len(res.FanoutMs) > 0 {
		res.FanoutMedianMs = median(res.FanoutMs)
		res.FanoutMaxMs = slices.Max(res.FanoutMs)
		res.DeliveriesPerS = float64(res.Connected) / (res.FanoutMedianMs / 1000)
	} else if phase > 0 {
		res.DeliveriesPerS = float64(res.Loss.Delivered) / phase.Seconds()
	}
	if haveProc && res.Msgs > 0 {
		sf.CPUMs = float64(cpu1.CPU-cpu0.CPU) / 1e6
		if res.Loss.Delivered > 0 {
			sf.CPUMsPer1000 = sf.CPUMs / float64(res.Loss.Delivered) * 1000
		}
	}
	if haveHarness && res.Msgs > 0 {
		res.HarnessCPUMs = float64(harness1-harness0) / 1e6
		if res.Loss.Delivered > 0 {
			res.HarnessCPUMsPer1000 = res.HarnessCPUMs / float64(res.Loss.Delivered) * 1000
		}
	}
	sf.Evictions = statsEnd.Evictions
	if statsEnd.Evictions >= 0 && statsBefore.Evictions >= 0 {
		sf.Evictions = statsEnd.Evictions - statsBefore.Evictions
	}

	// Close the workers' connections and wait for them.
	var firstErr error
	for _, w := range r.workers {
		if err := w.finish(); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("%w %d: %v", errWorker, w.index, err)
		}
	}
	r.workers = nil
	return firstErr
}

// workerCPU sums the worker processes' CPU time; ok is false when a worker
// runs in-process or its /proc entry cannot be read.
func (r *runner) workerCPU() (cpu time.Duration, ok bool) {
	var pids []int
	for _, w := range r.workers {
		if w.pid <= 0 {
			return 0, false
		}
		pids = append(pids, w.pid)
	}
	s, err := readProcs(pids)
	return s.CPU, err == nil && len(pids) > 0
}

// waitFor reads w's messages until done accepts one, passing progress on.
func (r *runner) waitFor(ctx context.Context, w *workerHandle, done func(fromWorker) bool, progress func(*Progress)) (fromWorker, error) {
	for {
		select {
		case <-ctx.Done():
			return fromWorker{}, ctx.Err()
		case m, ok := <-w.msgs:
			if !ok {
				return m, w.failure()
			}
			if m.Progress != nil {
				progress(m.Progress)
			}
			if done(m) {
				return m, nil
			}
		}
	}
}

// publish sends Msgs messages at Rate through the first node's HTTP API,
// one channel after the other, and returns how many went to each channel.
func (r *runner) publish(ctx context.Context, channels []string) ([]int64, int) {
	o := r.o
	published := make([]int64, len(channels))
	if o.Msgs == 0 {
		return published, 0
	}
	bar := r.ui.bar("publish", int64(o.Msgs))
	fmt.Fprintf(r.log, "publishing %d messages at %.0f/s\n", o.Msgs, o.Rate)
	base := apiBase(r.urls[0]) + "/api/publish"
	interval := time.Duration(float64(time.Second) / o.Rate)
	start := time.Now()
	errs := 0
	var body []byte
	for i := range o.Msgs {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return published, errs + o.Msgs - i
			}
		}
		ch := i % len(channels)
		body = append(body[:0], `{"channel":"`...)
		body = append(body, channels[ch]...)
		body = append(body, `","data":`...)
		body = appendPayload(body, time.Now().UnixNano(), published[ch], int64(ch), o.Size)
		body = append(body, '}')
		if err := r.post(ctx, base, body); err != nil {
			errs++
			if errs <= 3 {
				fmt.Fprintf(r.log, "publish: %v\n", err)
			}
			continue
		}
		published[ch]++
		bar.set(int64(i + 1))
	}
	return published, errs
}

func (r *runner) post(ctx context.Context, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if r.o.APIKey != "" {
		req.Header.Set("Authorization", "apikey "+r.o.APIKey)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

func sum[T int | int64](v []T) T {
	var n T
	for _, x := range v {
		n += x
	}
	return n
}

// median returns the median of v (which it sorts a copy of); NaN if empty.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// loadAvg returns the 1-minute load average, or -1.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	var l float64
	if _, err := fmt.Sscanf(string(b), "%f", &l); err != nil {
		return -1
	}
	return l
}
