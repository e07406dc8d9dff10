package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// roostBin is the roost binary built once for the whole test run by TestMain,
// with the race detector when the tests run with it.
var roostBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "roost-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	roostBin = filepath.Join(dir, "roost")
	args := []string{"build", "-o", roostBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building roost:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running roost binary.
type proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	addr string // host:port it listens on

	mu     sync.Mutex
	stderr bytes.Buffer

	exited   chan struct{}
	exitCode int
}

// cleanEnv is the test process's environment without ROOST_ variables,
// plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ROOST_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// startRoost starts the binary on a free loopback port with JSON logs, the
// given environment additions and flags (which may override the defaults),
// and waits until it announces its address. The process is killed at the
// end of the test if it is still running.
func startRoost(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	all := append([]string{"--addr", "127.0.0.1:0", "--log-format", "json"}, args...)
	p := &proc{t: t, cmd: exec.Command(roostBin, all...), exited: make(chan struct{})}
	p.cmd.Env = cleanEnv(env...)
	errPipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(errPipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.mu.Lock()
			p.stderr.Write(line)
			p.stderr.WriteByte('\n')
			p.mu.Unlock()
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "roost listening" {
				select {
				case addrc <- rec.Addr:
				default:
				}
			}
		}
		_ = p.cmd.Wait()
		p.exitCode = p.cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("roost stderr:\n%s", p.logs())
		}
	})
	select {
	case p.addr = <-addrc:
	case <-p.exited:
		t.Fatalf("roost exited with %d before listening:\n%s", p.exitCode, p.logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("roost did not announce its address within 30s:\n%s", p.logs())
	}
	return p
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// url returns an http:// URL of path on p.
func (p *proc) url(path string) string { return "http://" + p.addr + path }

// wsURL returns the ws:// URL of /ws with the query string q.
func (p *proc) wsURL(q string) string {
	u := "ws://" + p.addr + "/ws"
	if q != "" {
		u += "?" + q
	}
	return u
}

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.exitCode
	case <-time.After(timeout):
		p.t.Fatalf("roost still running after %v:\n%s", timeout, p.logs())
		return -1
	}
}

// runRoost runs the binary to completion (for --help and start-up errors)
// and returns its exit code, stdout and stderr.
func runRoost(t testing.TB, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(roostBin, args...)
	cmd.Env = cleanEnv(env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("roost %v did not exit within 30s; stderr:\n%s", args, stderr.String())
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// httpDo sends a request and returns the status and body.
func httpDo(t testing.TB, method, url, body string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// dial opens a WebSocket; on a refused upgrade it returns the HTTP status
// and a nil conn.
func dial(t testing.TB, url string, header http.Header) (*websocket.Conn, int) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	c, resp, err := d.Dial(url, header)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
			return nil, resp.StatusCode
		}
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, http.StatusSwitchingProtocols
}

// mustDial opens a WebSocket that must be accepted.
func mustDial(t testing.TB, url string, header http.Header) *websocket.Conn {
	t.Helper()
	c, code := dial(t, url, header)
	if c == nil {
		t.Fatalf("dial %s: status %d, want 101", url, code)
	}
	return c
}

// message is any frame the server sends: a reply or a push.
type message struct {
	ID      int64           `json:"id"`
	OK      bool            `json:"ok"`
	Result  json.RawMessage `json:"result"`
	Error   *struct{ Code int }
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// command sends a command and returns the next frame, which must arrive
// within 10s.
func command(t testing.TB, c *websocket.Conn, cmd string) message {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(cmd)); err != nil {
		t.Fatalf("write %s: %v", cmd, err)
	}
	return readMessage(t, c)
}

func readMessage(t testing.TB, c *websocket.Conn) message {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("frame %s: %v", b, err)
	}
	return m
}

// readClose reads until the connection ends and returns the close code
// (or -1 when it ended without a close frame).
func readClose(t testing.TB, c *websocket.Conn) int {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			return -1
		}
	}
}

// metric returns the value of one sample of /metrics, such as
// `roost_handshake_failures_total{reason="limit"}`, or fails.
func metric(t testing.TB, p *proc, sample string) string {
	t.Helper()
	code, body := httpDo(t, "GET", p.url("/metrics"), "", nil)
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no sample %s", sample)
	return ""
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
