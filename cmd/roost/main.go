// Command roost is the standalone roost server: the hub on /ws, the demo
// page on /, the HTTP API, metrics and probes on the rest, configured by
// flags, ROOST_* environment variables and an optional config file. See
// roost --help and docs/operations.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run is roost's whole life; it returns the exit status: 0 after --help,
// --print-config or a shutdown on SIGINT/SIGTERM, 2 for a bad setting, 1
// when the server cannot start or fails.
func run(args, environ []string, stdout, stderr io.Writer) int {
	o, warnings, err := parseConfig(args, environ)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%v\nRun roost --help for every flag.\n", err)
		return 2
	}
	if o.PrintConfig {
		printConfig(stdout, o)
		return 0
	}
	log := newLogger(o, stderr)
	for _, w := range warnings {
		log.Warn(w)
	}
	if o.GCPercent > 0 {
		debug.SetGCPercent(o.GCPercent)
	}

	// Signals are caught before the socket opens so that a SIGTERM sent
	// right after start is a clean shutdown, not a kill.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	s, err := newServer(o, log)
	if err != nil {
		var ce *configError
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "%v\n", err)
			return 2
		}
		log.Error("cannot start", "err", err)
		return 1
	}
	served := make(chan error, 1)
	go func() { served <- s.serve() }()
	s.announce()

	select {
	case err := <-served:
		log.Error("server failed", "err", err)
		ctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
		defer cancel()
		_ = s.shutdown(ctx)
		return 1
	case sig := <-sigs:
		log.Info("shutting down: draining connections", "signal", sig.String(), "timeout", o.ShutdownTimeout.String(), "drain_rate", o.DrainRate)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	go func() {
		select {
		case <-sigs:
			log.Warn("second signal: closing the remaining connections at once")
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := s.shutdown(ctx); err != nil {
		// The deadline (or a second signal) cut the drain short; what was
		// left has been closed at once. That is still an orderly exit.
		log.Warn("shutdown cut short; remaining connections closed at once", "err", err)
	}
	<-served
	log.Info("stopped")
	return 0
}
