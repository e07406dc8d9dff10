package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

var (
	errSources = errors.New("roost: bench: --source wants A.B.C.D-A.B.C.E or a comma list of IPs")
	errWorker  = errors.New("roost: bench: worker failed")
)

// fdReserve is how many descriptors a worker keeps for itself besides its
// connections (stdio, the runtime's epoll, DNS, pipes).
const fdReserve = 128

// connsPerWorker returns how many connections one worker process may hold:
// its RLIMIT_NOFILE (raised to the hard limit, as the Go runtime does at
// start) minus a reserve.
func connsPerWorker() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 1024 - fdReserve
	}
	lim := rl.Cur
	if rl.Max > lim {
		lim = rl.Max
	}
	if lim > 1<<22 {
		lim = 1 << 22
	}
	return max(int(lim)-fdReserve, 1)
}

// parseSources expands "127.0.0.1-127.0.0.254" or "a,b,c" into IPs.
func parseSources(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		a, b := net.ParseIP(strings.TrimSpace(lo)).To4(), net.ParseIP(strings.TrimSpace(hi)).To4()
		if a == nil || b == nil || a[0] != b[0] || a[1] != b[1] || a[2] != b[2] || a[3] > b[3] {
			return nil, fmt.Errorf("%w: %q", errSources, s)
		}
		var out []string
		for i := int(a[3]); i <= int(b[3]); i++ {
			out = append(out, net.IPv4(a[0], a[1], a[2], byte(i)).String())
		}
		return out, nil
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		ip := net.ParseIP(strings.TrimSpace(f))
		if ip == nil {
			return nil, fmt.Errorf("%w: %q", errSources, f)
		}
		out = append(out, ip.String())
	}
	return out, nil
}

// workerHandle is the coordinator's side of one worker: a JSON line stream
// each way, over a child process's pipes or, in-process, over io.Pipes.
type workerHandle struct {
	index int
	pid   int // the child's PID; 0 in-process
	enc   *json.Encoder
	in    io.WriteCloser
	msgs  chan fromWorker
	wait  func() error
	kill  func()
	errMu sync.Mutex
	err   error
}

// startWorker launches worker i as a child process (cmd non-nil) or as a
// goroutine running Worker.
func startWorker(ctx context.Context, i int, cmd *exec.Cmd) (*workerHandle, error) {
	h := &workerHandle{index: i, msgs: make(chan fromWorker, 16)}
	var out io.ReadCloser
	if cmd == nil {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		done := make(chan error, 1)
		wctx, cancel := context.WithCancel(ctx)
		go func() {
			err := Worker(wctx, inR, outW)
			outW.CloseWithError(io.EOF)
			inR.Close()
			done <- err
		}()
		h.in, out = inW, outR
		h.wait = func() error { err := <-done; cancel(); return err }
		h.kill = cancel
	} else {
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		if out, err = cmd.StdoutPipe(); err != nil {
			return nil, err
		}
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = childProcAttr()
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("roost: bench: starting worker %d: %w", i, err)
		}
		h.in = in
		h.pid = cmd.Process.Pid
		h.wait = cmd.Wait
		h.kill = func() { cmd.Process.Kill() }
	}
	h.enc = json.NewEncoder(h.in)
	go func() {
		defer close(h.msgs)
		dec := json.NewDecoder(out)
		for {
			var m fromWorker
			if err := dec.Decode(&m); err != nil {
				if !errors.Is(err, io.EOF) {
					h.setErr(fmt.Errorf("%w %d: reading its output: %v", errWorker, i, err))
				}
				return
			}
			h.msgs <- m
		}
	}()
	return h, nil
}

func (h *workerHandle) setErr(err error) {
	h.errMu.Lock()
	if h.err == nil {
		h.err = err
	}
	h.errMu.Unlock()
}

func (h *workerHandle) failure() error {
	h.errMu.Lock()
	defer h.errMu.Unlock()
	if h.err != nil {
		return h.err
	}
	return fmt.Errorf("%w %d: exited early", errWorker, h.index)
}

func (h *workerHandle) send(m toWorker) error { return h.enc.Encode(m) }

// finish asks the worker to quit and waits for it.
func (h *workerHandle) finish() error {
	h.send(toWorker{Quit: true})
	h.in.Close()
	for range h.msgs {
	}
	return h.wait()
}
