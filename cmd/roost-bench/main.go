// Command roost-bench drives load against roost (or the goroutine-per-
// connection baseline it carries) over the wire and reports latency,
// fan-out completion, loss and server cost. See docs/benchmarks.md.
//
//	roost-bench [run] --scenario broadcast --conns 18000 --spawn roost
//	roost-bench compare --scenario idle --conns 18000 --runs 3
//	roost-bench suite --out docs
//	roost-bench soak --duration 10m
//	roost-bench baseline --addr 127.0.0.1:8081
//	roost-bench worker            (internal: a load worker fed a plan on stdin)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/roost-rt/roost/bench"
)

// list is a repeatable flag that also splits on commas.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }
func (l *list) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "worker":
		if path := os.Getenv("ROOST_BENCH_WORKER_CPUPROFILE"); path != "" {
			// A debugging aid: profile the load generator itself.
			if f, err := os.Create(path); err == nil {
				pprof.StartCPUProfile(f)
				defer pprof.StopCPUProfile()
			}
		}
		if err := bench.Worker(ctx, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "roost-bench worker:", err)
			return 1
		}
		return 0
	case "baseline":
		fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
		addr := fs.String("addr", "127.0.0.1:8081", "listen address (port 0 picks a free one)")
		floor := fs.Bool("floor", false, "serve the fan-out floor (bare write(2) loops, see bench.Floor) instead of the baseline")
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if err := bench.ServeBaseline(ctx, *addr, *floor, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "roost-bench baseline:", err)
			return 1
		}
		return 0
	case "run", "compare", "suite", "soak":
	default:
		fmt.Fprintf(os.Stderr, "roost-bench: unknown command %q (run, compare, suite, soak, baseline, worker)\n", cmd)
		return 2
	}

	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	var o bench.Options
	var urls, pids list
	fs.StringVar(&o.Scenario, "scenario", "broadcast", "scenario: "+strings.Join(bench.Scenarios, ", "))
	fs.IntVar(&o.Conns, "conns", 0, "connections to hold (0: 1000)")
	fs.IntVar(&o.Channels, "channels", 0, "channels (0: scenario default)")
	fs.IntVar(&o.Msgs, "msgs", 0, "messages to publish (0: scenario default)")
	fs.Float64Var(&o.Rate, "rate", 0, "publishes per second (0: scenario default)")
	fs.Float64Var(&o.Zipf, "zipf", 0, "spread connections over channels by Zipf with this exponent (> 1); 0: uniform")
	fs.IntVar(&o.Size, "size", 0, "payload bytes (0: 100; slow: 16384)")
	fs.Float64Var(&o.SlowShare, "slow-share", 0, "slow: share of connections that stop reading (0: 0.1)")
	fs.Float64Var(&o.ChurnRate, "churn-rate", 0, "churn: connections opened and closed per second (0: 200)")
	fs.Float64Var(&o.ConnectRate, "connect-rate", 0, "new connections per second (0: unlimited)")
	fs.IntVar(&o.Dials, "dials", 0, "handshakes in flight per worker (0: 256)")
	fs.DurationVar(&o.Hold, "hold", 0, "idle: how long to hold the connections before measuring (0: 5s)")
	fs.DurationVar(&o.Wait, "wait", 0, "how long to wait for deliveries after the last publish (0: 30s)")
	fs.Var(&urls, "url", "server WebSocket URL, ws://host:port/ws (repeatable or comma list)")
	fs.StringVar(&o.Spawn, "spawn", "", "start the server: roost, baseline, or floor (bare write(2) fan-out, for comparison)")
	fs.IntVar(&o.Nodes, "nodes", 0, "nodes to spawn; > 1 with roost starts a redis-server too")
	fs.StringVar(&o.RoostBin, "roost-bin", "", "roost binary (default: next to roost-bench, then PATH)")
	fs.StringVar(&o.WSPath, "ws-path", "/ws", "WebSocket path of spawned servers")
	fs.StringVar(&o.APIKey, "api-key", "", "HTTP API key (sent as Authorization: apikey KEY)")
	fs.Var(&pids, "server-pid", "server PID for /proc figures when not spawned (repeatable)")
	fs.StringVar(&o.Sources, "source", "", "source addresses, e.g. 127.0.0.1-127.0.0.254")
	fs.IntVar(&o.PerWorker, "per-worker", 0, "connections per worker process (0: from RLIMIT_NOFILE)")
	fs.StringVar(&o.Reader, "reader", "", "how workers read: epoll (default on Linux) or goroutine (one per connection)")
	fs.IntVar(&o.Readers, "readers", 0, "epoll loops per worker (0: GOMAXPROCS)")
	fs.BoolVar(&o.Quiet, "quiet", false, "no progress output")
	jsonOut := fs.String("json", "", "write the result as JSON to this file")
	plotDir := fs.String("plot", "", "write PNG charts to this directory")
	runs := fs.Int("runs", 3, "compare: runs per server")
	out := fs.String("out", "docs", "suite: docs directory to update")
	duration := fs.Duration("duration", 10*time.Minute, "soak: how long to cycle churn, slow and broadcast runs")
	sample := fs.Duration("sample", 10*time.Second, "soak: interval of the server's RSS and goroutine samples")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "roost-bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	o.URLs = urls
	for _, p := range pids {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "roost-bench: --server-pid %q is not a PID\n", p)
			return 2
		}
		o.ServerPIDs = append(o.ServerPIDs, n)
	}
	color := bench.ColorOK(os.Stdout)

	switch cmd {
	case "compare":
		c, err := bench.Compare(ctx, o, *runs)
		if c != nil {
			bench.WriteComparison(os.Stdout, c, color)
			if *jsonOut != "" {
				if err := bench.WriteJSON(*jsonOut, c); err != nil {
					fmt.Fprintln(os.Stderr, "roost-bench:", err)
					return 1
				}
			}
			if *plotDir != "" {
				if err := bench.PlotComparison(*plotDir, c); err != nil {
					fmt.Fprintln(os.Stderr, "roost-bench:", err)
					return 1
				}
			}
		}
		return exitCode(err)
	case "soak":
		if o.Spawn == "" {
			o.Spawn = "roost"
		}
		r, err := bench.Soak(ctx, bench.SoakOptions{Base: o, Duration: *duration, Sample: *sample})
		if r != nil {
			bench.WriteSoak(os.Stdout, r, color)
			if *jsonOut != "" {
				if err := bench.WriteJSON(*jsonOut, r); err != nil {
					fmt.Fprintln(os.Stderr, "roost-bench:", err)
					return 1
				}
			}
		}
		if errors.Is(err, bench.ErrDrift) {
			return 1 // the summary already says so
		}
		return exitCode(err)
	case "suite":
		start := time.Now()
		err := bench.Suite(ctx, bench.SuiteOptions{Out: *out, Base: o})
		fmt.Fprintf(os.Stderr, "suite finished in %s\n", time.Since(start).Round(time.Second))
		return exitCode(err)
	}

	res, err := bench.Run(ctx, o)
	if res != nil {
		bench.WriteTable(os.Stdout, res, color)
		if *jsonOut != "" {
			if err := bench.WriteJSON(*jsonOut, res); err != nil {
				fmt.Fprintln(os.Stderr, "roost-bench:", err)
				return 1
			}
		}
		if *plotDir != "" {
			if err := bench.PlotRun(*plotDir, res); err != nil {
				fmt.Fprintln(os.Stderr, "roost-bench:", err)
				return 1
			}
		}
	}
	return exitCode(err)
}

func exitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, bench.ErrLoss):
		return 1 // the table already says so
	default:
		fmt.Fprintln(os.Stderr, "roost-bench:", err)
		return 1
	}
}
