package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Plan is what the coordinator tells one worker process: which connections
// to open, where, and how. It travels as one JSON line on the worker's stdin.
type Plan struct {
	URLs     []string `json:"urls"`     // connection i (global index) uses URLs[i % len(URLs)]
	First    int      `json:"first"`    // global index of this worker's first connection
	Channels []string `json:"channels"` // channel names; Assign indexes them
	Assign   []int32  `json:"assign"`   // channel index per connection of this worker
	Sources  []string `json:"sources"`  // source IPs, used round-robin by global index; empty: any
	// Slow marks connections (by local index) that stop reading after they
	// subscribed; they are left out of loss accounting.
	Slow []int `json:"slow,omitempty"`
	// Dials bounds the handshakes in flight. Zero means 256.
	Dials int `json:"dials"`
	// ConnectRate bounds this worker's new connections per second. Zero
	// means unlimited.
	ConnectRate float64 `json:"connect_rate"`
	// ChurnRate is how many extra connections per second this worker opens,
	// subscribes and closes while messages are published. Zero means none.
	ChurnRate float64 `json:"churn_rate"`
	// HandshakeTimeout bounds one connect, upgrade and subscribe. Zero means 30s.
	HandshakeTimeout time.Duration `json:"handshake_timeout"`
	// Reader is how subscribed connections are read: ReaderEpoll (a few
	// epoll loops) or ReaderGoroutine (one goroutine each). Empty means
	// ReaderEpoll, which falls back to goroutines off Linux.
	Reader string `json:"reader,omitempty"`
	// Readers is how many epoll loops read. Zero means GOMAXPROCS.
	Readers int `json:"readers,omitempty"`
}

// Expect tells a worker that publishing is over: Published[c] messages went
// to channel index c. The worker waits up to Wait for the deliveries still
// in flight, then reports.
type Expect struct {
	Published []int64       `json:"published"`
	Wait      time.Duration `json:"wait"`
}

// Progress is a worker's periodic connection count.
type Progress struct {
	Connected int   `json:"connected"`
	Failed    int   `json:"failed"`
	Delivered int64 `json:"delivered"`
}

// Ready says a worker finished opening its connections.
type Ready struct {
	Connected int                    `json:"connected"`
	Failed    int                    `json:"failed"`
	Errors    []string               `json:"errors,omitempty"` // a sample of distinct connect errors
	Seconds   float64                `json:"seconds"`          // from first dial to last subscribe
	Handshake *hdrhistogram.Snapshot `json:"handshake"`        // connect+upgrade+subscribe, µs
}

// WorkerReport is a worker's result after Expect.
type WorkerReport struct {
	Loss    Loss                   `json:"loss"`
	Latency *hdrhistogram.Snapshot `json:"latency"` // publish to delivery, µs
	// RemoteLatency is Latency for connections to other nodes than the
	// first URL's (where publishes go); nil with one URL.
	RemoteLatency *hdrhistogram.Snapshot `json:"remote_latency,omitempty"`
	// Completion holds, per channel index and sequence, the largest
	// publish-to-delivery latency this worker saw, in nanoseconds.
	Completion     map[int32][]int64      `json:"completion"`
	Closed         int                    `json:"closed"`      // tracked connections the server closed
	CloseCodes     map[string]int         `json:"close_codes"` // by close code or error
	ChurnConnects  int64                  `json:"churn_connects"`
	ChurnErrors    int64                  `json:"churn_errors"`
	ChurnHandshake *hdrhistogram.Snapshot `json:"churn_handshake"`
}

// toWorker and fromWorker are the line protocol between coordinator and
// worker: exactly one field is set per line.
type toWorker struct {
	Plan   *Plan   `json:"plan,omitempty"`
	Expect *Expect `json:"expect,omitempty"`
	Quit   bool    `json:"quit,omitempty"`
}

type fromWorker struct {
	Progress *Progress     `json:"progress,omitempty"`
	Ready    *Ready        `json:"ready,omitempty"`
	Report   *WorkerReport `json:"report,omitempty"`
}

var errPlanFirst = errors.New("roost: bench: worker expected a plan first")

// Worker runs one worker: it reads a Plan from in, opens and subscribes the
// connections, reports Progress and Ready on out, waits for Expect, reports
// its WorkerReport, and closes its connections on Quit or end of input.
// roost-bench runs it in a child process ("roost-bench worker") so that
// connections spread over as many processes as the file limit requires.
func Worker(ctx context.Context, in io.Reader, out io.Writer) error {
	dec := json.NewDecoder(bufio.NewReader(in))
	var encMu sync.Mutex
	enc := json.NewEncoder(out)
	send := func(m fromWorker) error {
		encMu.Lock()
		defer encMu.Unlock()
		return enc.Encode(m)
	}
	var first toWorker
	if err := dec.Decode(&first); err != nil {
		return fmt.Errorf("roost: bench: worker reading plan: %w", err)
	}
	if first.Plan == nil {
		return errPlanFirst
	}
	w, err := newWorker(*first.Plan)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer w.closeAll()

	// Commands from the coordinator arrive on cmds; end of input quits.
	cmds := make(chan toWorker, 4)
	go func() {
		defer close(cmds)
		for {
			var m toWorker
			if err := dec.Decode(&m); err != nil {
				return
			}
			cmds <- m
		}
	}()

	setupDone := make(chan struct{})
	go func() { w.setup(ctx); close(setupDone) }()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case <-setupDone:
			waiting = false
		case <-tick.C:
			send(fromWorker{Progress: w.progress()})
		case m, ok := <-cmds:
			if !ok || m.Quit {
				return nil
			}
		}
	}
	send(fromWorker{Progress: w.progress()})
	if err := send(fromWorker{Ready: w.ready()}); err != nil {
		return err
	}

	churnDone := make(chan struct{})
	churnCtx, stopChurn := context.WithCancel(ctx)
	go func() { w.churn(churnCtx); close(churnDone) }()
	defer func() { stopChurn(); <-churnDone }()
	for {
		select {
		case <-tick.C:
			send(fromWorker{Progress: w.progress()})
		case m, ok := <-cmds:
			if !ok || m.Quit {
				return nil
			}
			if m.Expect != nil {
				w.await(ctx, *m.Expect, func() { send(fromWorker{Progress: w.progress()}) })
				stopChurn()
				<-churnDone
				if err := send(fromWorker{Report: w.report(m.Expect.Published)}); err != nil {
					return err
				}
			}
		}
	}
}

// worker is the state of one worker process.
type worker struct {
	plan   Plan
	tally  *tally
	slow   map[int]bool
	reader connReader // reads every subscribed connection but the slow ones

	mu sync.Mutex // guards conns, errs, closeCodes
	// conns holds the slow connections, which are never read; the reader
	// owns the others.
	conns []*wsConn
	errs  map[string]int

	connected, failed atomic.Int64
	closed            atomic.Int64
	hsMu              sync.Mutex
	handshake         *hdrhistogram.Histogram
	setupSeconds      float64

	churnConnects, churnErrors atomic.Int64
	churnHS                    *hdrhistogram.Histogram // owned by the churn goroutine until it ends
	closeCodes                 map[string]int          // guarded by mu
}

func newWorker(p Plan) (*worker, error) {
	if p.Dials <= 0 {
		p.Dials = 256
	}
	if p.HandshakeTimeout <= 0 {
		p.HandshakeTimeout = 30 * time.Second
	}
	w := &worker{
		plan:       p,
		tally:      newTally(p.Assign),
		slow:       make(map[int]bool, len(p.Slow)),
		conns:      make([]*wsConn, len(p.Assign)),
		errs:       make(map[string]int),
		handshake:  newHistogram(),
		churnHS:    newHistogram(),
		closeCodes: make(map[string]int),
	}
	for _, i := range p.Slow {
		w.slow[i] = true
	}
	if len(p.URLs) > 1 {
		for i := range p.Assign {
			if (p.First+i)%len(p.URLs) != 0 {
				w.tally.markRemote(i)
			}
		}
	}
	kind := p.Reader
	for _, u := range p.URLs {
		if strings.HasPrefix(u, "wss:") {
			kind = ReaderGoroutine // a TLS connection has no socket to hand to epoll
		}
	}
	r, err := newConnReader(kind, len(p.Assign), p.Readers, w)
	if err != nil {
		return nil, err
	}
	w.reader = r
	return w, nil
}

// target returns the URL and source IP of global connection index g.
func (w *worker) target(g int) (string, net.IP) {
	u := w.plan.URLs[g%len(w.plan.URLs)]
	var src net.IP
	if n := len(w.plan.Sources); n > 0 {
		src = net.ParseIP(w.plan.Sources[g%n])
	}
	return u, src
}

// userURL adds ?user= so each connection has its own user in open mode.
func userURL(u string, g int) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + "user=u" + strconv.Itoa(g)
}

// open dials, upgrades and subscribes one connection.
func (w *worker) open(ctx context.Context, g int, channel string) (*wsConn, time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, w.plan.HandshakeTimeout)
	defer cancel()
	u, src := w.target(g)
	c, err := dialWS(ctx, userURL(u, g), src)
	if err != nil {
		return nil, 0, err
	}
	dl, _ := ctx.Deadline()
	if err := c.command(1, "subscribe", channel, dl); err != nil {
		c.nc.Close()
		return nil, 0, err
	}
	return c, time.Since(start), nil
}

// setup opens every connection of the plan, at most Dials at once.
func (w *worker) setup(ctx context.Context) {
	start := time.Now()
	sem := make(chan struct{}, w.plan.Dials)
	var interval time.Duration
	if w.plan.ConnectRate > 0 {
		interval = time.Duration(float64(time.Second) / w.plan.ConnectRate)
	}
	var setupWG sync.WaitGroup
	for i := range w.plan.Assign {
		if interval > 0 {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			w.failed.Add(int64(len(w.plan.Assign) - i))
			for j := i; j < len(w.plan.Assign); j++ {
				w.tally.untrack(j)
			}
			break
		}
		setupWG.Add(1)
		go func(i int) {
			defer setupWG.Done()
			c, hs, err := w.open(ctx, w.plan.First+i, w.plan.Channels[w.plan.Assign[i]])
			<-sem
			if err != nil {
				w.setupFailed(i, err)
				return
			}
			w.hsMu.Lock()
			recordMicros(w.handshake, int64(hs))
			w.hsMu.Unlock()
			if w.slow[i] {
				w.tally.untrack(i)
				w.mu.Lock()
				w.conns[i] = c // a slow consumer never reads again
				w.mu.Unlock()
				w.connected.Add(1)
				return
			}
			if err := w.reader.add(i, c); err != nil {
				w.setupFailed(i, err)
				return
			}
			w.connected.Add(1)
		}(i)
	}
	setupWG.Wait()
	w.setupSeconds = time.Since(start).Seconds()
}

// setupFailed records that connection i could not be set up: it is not
// expected to receive anything, and err is counted by its text.
func (w *worker) setupFailed(i int, err error) {
	w.failed.Add(1)
	w.tally.untrack(i)
	w.mu.Lock()
	w.errs[err.Error()]++
	w.mu.Unlock()
}

// message records a harness push that connection i received at now.
func (w *worker) message(i int, p []byte, now int64) {
	if bp, ok := parsePush(p); ok {
		w.tally.record(i, int32(bp.channel), bp.seq, bp.sent, now)
	}
}

// ended counts a connection the server (or the network) ended; the reader
// does not report connections the worker closes itself.
func (w *worker) ended(i int, err error) {
	w.mu.Lock()
	w.closeCodes[closeKey(err)]++
	w.mu.Unlock()
	w.closed.Add(1)
}

func (w *worker) progress() *Progress {
	return &Progress{Connected: int(w.connected.Load()), Failed: int(w.failed.Load()), Delivered: w.tally.delivered()}
}

func (w *worker) ready() *Ready {
	r := &Ready{Connected: int(w.connected.Load()), Failed: int(w.failed.Load()), Seconds: w.setupSeconds}
	w.mu.Lock()
	for e := range w.errs {
		if len(r.Errors) < 5 {
			r.Errors = append(r.Errors, e)
		}
	}
	w.mu.Unlock()
	w.hsMu.Lock()
	r.Handshake = w.handshake.Export()
	w.hsMu.Unlock()
	return r
}

// churn opens, subscribes and closes extra connections at ChurnRate until
// ctx ends. Churn connections use the channel of connection 0 and are not
// part of loss accounting.
func (w *worker) churn(ctx context.Context) {
	if w.plan.ChurnRate <= 0 || len(w.plan.Assign) == 0 {
		return
	}
	interval := time.Duration(float64(time.Second) / w.plan.ChurnRate)
	t := time.NewTicker(interval)
	defer t.Stop()
	var wg sync.WaitGroup
	var hsMu sync.Mutex
	defer wg.Wait()
	g := 1 << 30 // global indices apart from the held connections
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g++
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			c, hs, err := w.open(ctx, w.plan.First+g, w.plan.Channels[w.plan.Assign[0]])
			if err != nil {
				if ctx.Err() == nil {
					w.churnErrors.Add(1)
				}
				return
			}
			w.churnConnects.Add(1)
			hsMu.Lock()
			recordMicros(w.churnHS, int64(hs))
			hsMu.Unlock()
			c.close()
		}(g)
	}
}

// await waits until every expected delivery arrived or exp.Wait passed.
func (w *worker) await(ctx context.Context, exp Expect, progress func()) {
	want := w.tally.expected(exp.Published)
	deadline := time.Now().Add(exp.Wait)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	last := time.Now()
	lastCheck := time.Time{}
	for time.Now().Before(deadline) {
		if w.tally.delivered() >= want && time.Since(lastCheck) > 50*time.Millisecond {
			if w.tally.check(exp.Published).Missing <= 0 {
				return
			}
			lastCheck = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if time.Since(last) > 250*time.Millisecond {
			progress()
			last = time.Now()
		}
	}
}

func (w *worker) report(published []int64) *WorkerReport {
	r := &WorkerReport{
		Loss:           w.tally.check(published),
		Latency:        w.tally.histogram().Export(),
		Completion:     w.tally.completion(),
		Closed:         int(w.closed.Load()),
		ChurnConnects:  w.churnConnects.Load(),
		ChurnErrors:    w.churnErrors.Load(),
		ChurnHandshake: w.churnHS.Export(),
	}
	if h := w.tally.remoteHistogram(); h != nil {
		r.RemoteLatency = h.Export()
	}
	w.mu.Lock()
	r.CloseCodes = make(map[string]int, len(w.closeCodes))
	for k, v := range w.closeCodes {
		r.CloseCodes[k] = v
	}
	w.mu.Unlock()
	return r
}

// closeAll closes every connection and waits for the reader.
func (w *worker) closeAll() {
	w.mu.Lock()
	conns := w.conns
	w.conns = make([]*wsConn, len(conns))
	w.mu.Unlock()
	closeConns(conns)
	w.reader.close()
}
