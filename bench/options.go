package bench

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// Scenarios lists what --scenario accepts.
var Scenarios = []string{"idle", "broadcast", "channels", "churn", "slow", "cluster"}

var (
	errScenario = errors.New("roost: bench: unknown scenario")
	errTarget   = errors.New("roost: bench: give --url or --spawn, not both and not neither")
	errOption   = errors.New("roost: bench: invalid option")
)

// Options configures one harness run. Zero values pick the scenario's
// defaults, listed per field.
type Options struct {
	// Scenario is one of Scenarios. Empty means "broadcast".
	Scenario string
	// Conns is how many connections to hold. Zero means 1,000.
	Conns int
	// Channels is how many channels the connections spread over. Zero means
	// 1, or 1,000 for "channels" (never more than Conns).
	Channels int
	// Msgs is how many messages to publish. Zero means 20 (broadcast, cluster),
	// 40 (churn), 400 (slow), 5,000 (channels); idle publishes none.
	Msgs int
	// Rate is publishes per second. Zero means 2 (broadcast, cluster: one
	// fan-out at a time), 4 (churn), 100 (slow), 500 (channels).
	Rate float64
	// Zipf, when above 1, spreads connections over channels with a Zipf
	// distribution of that exponent instead of uniformly.
	Zipf float64
	// Size is the payload size in bytes. Zero means 100, or 16 KiB for slow.
	Size int
	// SlowShare is the share of connections that stop reading in "slow".
	// Zero means 0.1.
	SlowShare float64
	// ChurnRate is connections opened and closed per second in "churn".
	// Zero means 200.
	ChurnRate float64
	// ConnectRate bounds new connections per second over all workers. Zero
	// means unlimited (Dials handshakes in flight per worker).
	ConnectRate float64
	// Dials bounds handshakes in flight per worker. Zero means 256.
	Dials int
	// Hold is how long "idle" holds its connections before measuring (idle
	// CPU is measured over it). Zero means 5s.
	Hold time.Duration
	// Wait bounds how long workers wait for deliveries still in flight after
	// the last publish. Zero means 30s.
	Wait time.Duration

	// URLs are the servers' WebSocket endpoints (ws://host:port/ws);
	// connections go round-robin over them and publishes go to the first's
	// HTTP API.
	URLs []string
	// Spawn starts the server: "roost", "baseline" or "floor" (Floor).
	// Exclusive with URLs.
	Spawn string
	// Nodes is how many nodes to spawn; above 1 with roost, a redis-server
	// is started too. Zero means 1 (6 for "cluster" with Spawn roost).
	Nodes int
	// RoostBin is the roost binary. Empty means next to this executable,
	// then PATH.
	RoostBin string
	// WSPath is the WebSocket path of spawned servers. Empty means "/ws".
	WSPath string
	// APIKey is sent as "Authorization: apikey KEY" to the HTTP API, and
	// passed to spawned roost nodes.
	APIKey string
	// ServerPIDs are the servers' PIDs for /proc figures when not spawned.
	ServerPIDs []int

	// Sources are source addresses ("127.0.0.1-127.0.0.254" or a comma
	// list) bound round-robin. Empty means the kernel's choice.
	Sources string
	// PerWorker caps connections per worker process. Zero means
	// RLIMIT_NOFILE minus a reserve.
	PerWorker int
	// InProcess runs workers as goroutines instead of child processes.
	InProcess bool
	// Reader is how workers read their connections: ReaderEpoll (a few
	// epoll loops per worker) or ReaderGoroutine (a goroutine per
	// connection, the design the harness had first). Empty means
	// ReaderEpoll, which falls back to goroutines off Linux.
	Reader string
	// Readers is how many epoll loops each worker runs. Zero means the
	// worker's GOMAXPROCS.
	Readers int
	// Exec builds the command that runs this program in a role ("worker",
	// "baseline") with args. Nil runs os.Executable() with the role as its
	// first argument, which is what cmd/roost-bench understands.
	Exec func(role string, args ...string) *exec.Cmd

	// Log receives progress lines when bars are off. Nil means os.Stderr.
	Log io.Writer
	// Quiet turns progress output off.
	Quiet bool
}

// command returns the Exec command for role.
func (o *Options) command(role string, args ...string) *exec.Cmd {
	if o.Exec != nil {
		return o.Exec(role, args...)
	}
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	return exec.Command(self, append([]string{role}, args...)...)
}

// normalize validates o and fills in the scenario's defaults.
func (o *Options) normalize() error {
	if o.Scenario == "" {
		o.Scenario = "broadcast"
	}
	if !slices.Contains(Scenarios, o.Scenario) {
		return fmt.Errorf("%w %q (want one of %s)", errScenario, o.Scenario, strings.Join(Scenarios, ", "))
	}
	if (len(o.URLs) == 0) == (o.Spawn == "") {
		return errTarget
	}
	for _, u := range o.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "ws" && p.Scheme != "wss") || p.Host == "" {
			return fmt.Errorf("%w: --url %q is not a ws:// or wss:// URL", errOption, u)
		}
	}
	neg := func(name string, v float64) error {
		if v < 0 {
			return fmt.Errorf("%w: %s must not be negative", errOption, name)
		}
		return nil
	}
	for _, c := range []struct {
		n string
		v float64
	}{{"--conns", float64(o.Conns)}, {"--channels", float64(o.Channels)}, {"--msgs", float64(o.Msgs)}, {"--rate", o.Rate},
		{"--size", float64(o.Size)}, {"--nodes", float64(o.Nodes)}, {"--churn-rate", o.ChurnRate}, {"--connect-rate", o.ConnectRate}} {
		if err := neg(c.n, c.v); err != nil {
			return err
		}
	}
	if o.Reader != "" && o.Reader != ReaderEpoll && o.Reader != ReaderGoroutine {
		return fmt.Errorf("%w: %q", errReader, o.Reader)
	}
	if o.Readers < 0 {
		return fmt.Errorf("%w: --readers must not be negative", errOption)
	}
	if o.SlowShare < 0 || o.SlowShare >= 1 {
		return fmt.Errorf("%w: --slow-share must be in [0, 1)", errOption)
	}
	if o.Zipf != 0 && o.Zipf <= 1 {
		return fmt.Errorf("%w: --zipf must be above 1 (or 0 for uniform)", errOption)
	}
	def := func(v *int, d int) { *v = cmp.Or(*v, d) }
	deff := func(v *float64, d float64) { *v = cmp.Or(*v, d) }
	def(&o.Conns, 1000)
	def(&o.Size, 100)
	switch o.Scenario {
	case "idle":
		def(&o.Channels, 1)
		o.Msgs = 0
	case "broadcast", "cluster":
		def(&o.Channels, 1)
		def(&o.Msgs, 20)
		deff(&o.Rate, 2)
		if o.Scenario == "cluster" && o.Spawn == "roost" {
			def(&o.Nodes, 6)
		}
	case "channels":
		def(&o.Channels, 1000)
		def(&o.Msgs, 5000)
		deff(&o.Rate, 500)
	case "churn":
		def(&o.Channels, 1)
		def(&o.Msgs, 40)
		deff(&o.Rate, 4)
		deff(&o.ChurnRate, 200)
	case "slow":
		def(&o.Channels, 1)
		def(&o.Msgs, 400)
		deff(&o.Rate, 100)
		deff(&o.SlowShare, 0.1)
		if o.Size == 100 {
			o.Size = 16 << 10
		}
	}
	o.Channels = min(o.Channels, o.Conns)
	def(&o.Nodes, 1)
	if o.Scenario == "cluster" && len(o.URLs) < 2 && o.Nodes < 2 {
		return fmt.Errorf("%w: cluster needs several --url or --spawn roost --nodes K (K >= 2)", errOption)
	}
	if (o.Spawn == "baseline" || o.Spawn == "floor") && o.Nodes > 1 {
		return fmt.Errorf("%w: the baseline has no cluster mode (--nodes 1)", errOption)
	}
	o.Hold = cmp.Or(o.Hold, 5*time.Second)
	o.Wait = cmp.Or(o.Wait, 30*time.Second)
	o.WSPath = cmp.Or(o.WSPath, "/ws")
	if o.Size < 40 {
		o.Size = 40 // room for the timestamp, sequence and channel fields
	}
	return nil
}

// apiBase turns ws://host:port/path into http://host:port.
func apiBase(wsURL string) string {
	u, err := url.Parse(wsURL)
	if err != nil {
		return ""
	}
	scheme := "http"
	if u.Scheme == "wss" {
		scheme = "https"
	}
	return scheme + "://" + u.Host
}

// progress is where a run writes its progress: o.Log, standard error when
// that is nil, nowhere when o.Quiet.
func (o *Options) progress() io.Writer {
	switch {
	case o.Quiet:
		return io.Discard
	case o.Log != nil:
		return o.Log
	}
	return os.Stderr
}
