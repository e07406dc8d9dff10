package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	errNoRoost     = errors.New("roost: bench: roost binary not found (build it with `make build` or pass --roost-bin)")
	errNoRedis     = errors.New("roost: bench: redis-server not found in PATH (apt-get install redis-server)")
	errNotHealthy  = errors.New("roost: bench: server did not become healthy")
	errSpawnTarget = errors.New("roost: bench: --spawn takes roost, baseline or floor")
)

// ServeBaseline serves the Baseline (with floor, the Floor) on addr until ctx ends, writing "listening on HOST:PORT" to
// ready once the listener is open (addr may use port 0). roost-bench runs
// it as `roost-bench baseline --addr ... [--floor]`.
func ServeBaseline(ctx context.Context, addr string, floor bool, ready io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("roost: bench: baseline: %w", err)
	}
	var b interface {
		http.Handler
		Close() error
	} = NewBaseline()
	if floor {
		b = NewFloor()
	}
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		fmt.Fprintf(ready, "listening on %s\n", ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		b.Close()
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	return b.Close()
}

// child is a process the harness started; it is stopped by its PID.
type child struct {
	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	addr string // HOST:PORT it listens on
	done chan struct{}
}

// tailBuffer keeps the last 8 KiB written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 8<<10 {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-8<<10:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// startChild starts cmd with its output kept in a tail buffer.
func startChild(name string, cmd *exec.Cmd, addr string) (*child, error) {
	c := &child{name: name, cmd: cmd, out: &tailBuffer{}, addr: addr, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = c.out, c.out
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("roost: bench: starting %s: %w", name, err)
	}
	go func() { cmd.Wait(); close(c.done) }()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop sends SIGTERM to the child's PID, then SIGKILL if it has not exited
// within grace, and waits for it.
func (c *child) stop(grace time.Duration) {
	select {
	case <-c.done:
		return
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// freeAddr returns a loopback HOST:PORT that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHealthy polls GET /healthz on addr until it answers 200, the child
// exits, or timeout passes.
func waitHealthy(ctx context.Context, c *child, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	cl := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-c.done:
			return fmt.Errorf("%w: %s exited: %s", errNotHealthy, c.name, strings.TrimSpace(c.out.String()))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := cl.Get("http://" + c.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%w: %s at %s within %v: %s", errNotHealthy, c.name, c.addr, timeout, strings.TrimSpace(c.out.String()))
}

// servers is what --spawn started: server nodes and, for a cluster, Redis.
type servers struct {
	nodes []*child
	redis *child
}

// pids returns the server nodes' PIDs (not Redis's).
func (s *servers) pids() []int {
	var p []int
	for _, n := range s.nodes {
		p = append(p, n.pid())
	}
	return p
}

// stop stops every child by PID, nodes first.
func (s *servers) stop() {
	var wg sync.WaitGroup
	for _, n := range s.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.stop(15 * time.Second) }()
	}
	wg.Wait()
	if s.redis != nil {
		s.redis.stop(5 * time.Second)
	}
}

// findRoost returns the roost binary: explicit, next to this executable, or
// in PATH.
func findRoost(explicit string) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", fmt.Errorf("%w: %v", errNoRoost, err)
		}
		return explicit, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "roost")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath("roost"); err == nil {
		return p, nil
	}
	return "", errNoRoost
}

// spawn starts the servers o asks for and waits until they are healthy.
func spawn(ctx context.Context, o *Options) (*servers, error) {
	s := &servers{}
	ok := false
	defer func() {
		if !ok {
			s.stop()
		}
	}()
	var roostBin string
	switch o.Spawn {
	case "roost":
		var err error
		if roostBin, err = findRoost(o.RoostBin); err != nil {
			return nil, err
		}
	case "baseline", "floor":
	default:
		return nil, fmt.Errorf("%w, not %q", errSpawnTarget, o.Spawn)
	}
	nodes := max(o.Nodes, 1)
	var redisURL string
	if o.Spawn == "roost" && nodes > 1 {
		r, err := startRedis(ctx)
		if err != nil {
			return nil, err
		}
		s.redis = r
		redisURL = "redis://" + r.addr
	}
	for i := range nodes {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		var cmd *exec.Cmd
		if o.Spawn == "roost" {
			args := []string{"--addr", addr}
			if redisURL != "" {
				args = append(args, "--redis-url", redisURL, "--node-id", "bench-"+strconv.Itoa(i))
			}
			if o.APIKey != "" {
				args = append(args, "--api-key", o.APIKey)
			}
			cmd = exec.CommandContext(ctx, roostBin, args...)
		} else if o.Spawn == "floor" {
			cmd = o.command("baseline", "--addr", addr, "--floor")
		} else {
			cmd = o.command("baseline", "--addr", addr)
		}
		c, err := startChild(o.Spawn+"-"+strconv.Itoa(i), cmd, addr)
		if err != nil {
			return nil, err
		}
		s.nodes = append(s.nodes, c)
	}
	for _, n := range s.nodes {
		if err := waitHealthy(ctx, n, 20*time.Second); err != nil {
			return nil, err
		}
	}
	ok = true
	return s, nil
}

// startRedis runs a throwaway redis-server on a free loopback port.
func startRedis(ctx context.Context) (*child, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errNoRedis
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.CommandContext(ctx, bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no", "--maxclients", "10000")
	c, err := startChild("redis-server", cmd, addr)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.SetDeadline(time.Now().Add(time.Second))
			io.WriteString(conn, "PING\r\n")
			line, _ := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if strings.HasPrefix(line, "+PONG") {
				return c, nil
			}
		}
		select {
		case <-c.done:
			return nil, fmt.Errorf("%w: redis-server exited: %s", errNotHealthy, c.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	c.stop(time.Second)
	return nil, fmt.Errorf("%w: redis-server at %s", errNotHealthy, addr)
}

// procSample is what /proc says about a process.
type procSample struct {
	RSS     int64         // resident set, bytes
	CPU     time.Duration // user + system
	Threads int
}

// clockTicks is USER_HZ, which Linux fixes at 100 for /proc/PID/stat.
const clockTicks = 100

// readProc reads /proc/PID/status and /proc/PID/stat.
func readProc(pid int) (procSample, error) {
	var s procSample
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			kb, _ := strconv.ParseInt(f[0], 10, 64)
			s.RSS = kb << 10
		case "Threads":
			s.Threads, _ = strconv.Atoi(f[0])
		}
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return s, err
	}
	// Fields after the command name (which may hold spaces) start at state.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("roost: bench: malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("roost: bench: short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14 utime
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15 stime
	s.CPU = time.Duration(ut+st) * time.Second / clockTicks
	return s, nil
}

// readProcs sums samples over pids; a missing process is an error.
func readProcs(pids []int) (procSample, error) {
	var sum procSample
	for _, p := range pids {
		s, err := readProc(p)
		if err != nil {
			return sum, err
		}
		sum.RSS += s.RSS
		sum.CPU += s.CPU
		sum.Threads += s.Threads
	}
	return sum, nil
}

// sockstatMem returns the kernel's TCP socket memory (all sockets on the
// machine, both ends of loopback connections), in bytes.
func sockstatMem() int64 {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "TCP:") {
			continue
		}
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "mem" {
				pages, _ := strconv.ParseInt(f[i+1], 10, 64)
				return pages * int64(os.Getpagesize())
			}
		}
	}
	return -1
}

// serverStats are the server-side figures the harness reads over HTTP; -1
// means the server does not expose it.
type serverStats struct {
	Connections float64
	Goroutines  float64
	HeapAlloc   float64
	Evictions   float64
}

// fetchStats reads GET /api/stats, and /metrics and /debug/vars when they
// exist, tolerating any of them missing.
func fetchStats(ctx context.Context, cl *http.Client, base, apiKey string) serverStats {
	s := serverStats{-1, -1, -1, -1}
	get := func(path string) []byte {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return nil
		}
		if apiKey != "" {
			req.Header.Set("Authorization", "apikey "+apiKey)
		}
		resp, err := cl.Do(req)
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		return b
	}
	var m map[string]any
	if b := get("/api/stats"); b != nil && json.Unmarshal(b, &m) == nil {
		num := func(k string) float64 {
			if v, ok := m[k].(float64); ok {
				return v
			}
			return -1
		}
		s.Connections, s.Goroutines, s.HeapAlloc = num("connections"), num("goroutines"), num("heap_alloc")
		s.Evictions = num("evictions")
	}
	if s.Goroutines < 0 || s.HeapAlloc < 0 {
		if b := get("/metrics"); b != nil {
			for _, line := range strings.Split(string(b), "\n") {
				f := strings.Fields(line)
				if len(f) != 2 {
					continue
				}
				v, err := strconv.ParseFloat(f[1], 64)
				if err != nil {
					continue
				}
				switch f[0] {
				case "go_goroutines":
					s.Goroutines = v
				case "go_memstats_heap_alloc_bytes":
					s.HeapAlloc = v
				}
			}
		}
	}
	if s.HeapAlloc < 0 {
		var vars struct {
			Memstats struct{ HeapAlloc float64 } `json:"memstats"`
		}
		if b := get("/debug/vars"); b != nil && json.Unmarshal(b, &vars) == nil && vars.Memstats.HeapAlloc > 0 {
			s.HeapAlloc = vars.Memstats.HeapAlloc
		}
	}
	return s
}

// sumStats adds per-node figures; -1 (absent) on any node stays -1.
func sumStats(all []serverStats) serverStats {
	if len(all) == 0 {
		return serverStats{-1, -1, -1, -1}
	}
	out := serverStats{}
	add := func(dst *float64, v float64) {
		if *dst < 0 || v < 0 {
			*dst = -1
			return
		}
		*dst += v
	}
	for _, s := range all {
		add(&out.Connections, s.Connections)
		add(&out.Goroutines, s.Goroutines)
		add(&out.HeapAlloc, s.HeapAlloc)
		add(&out.Evictions, s.Evictions)
	}
	return out
}
