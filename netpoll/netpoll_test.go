package netpoll_test

import (
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/roost-rt/roost/netpoll"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// listen returns a loopback listener closed at the end of the test.
func listen(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ln
}

// pair returns the server and client ends of a new loopback connection; both
// are closed at the end of the test (closing twice is harmless).
func pair(tb testing.TB, ln net.Listener) (srv, cli *net.TCPConn) {
	tb.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		tb.Fatalf("accept: %v", err)
	}
	tb.Cleanup(func() { s.Close(); c.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

// newPoller returns a Poller closed at the end of the test.
func newPoller(tb testing.TB, cfg netpoll.Config) *netpoll.Poller {
	tb.Helper()
	p, err := netpoll.New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return p
}

// eventually fails the test unless cond becomes true within 10 s.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// recv returns the next value from ch, failing the test after 10 s.
func recv[T any](tb testing.TB, ch <-chan T) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		tb.Fatal("timed out waiting for an event")
		panic("unreachable")
	}
}

// quiet fails the test if ch yields a value within d: used to check that an
// event that must not happen does not (a wrong implementation is caught with
// high probability; a right one never fails).
func quiet[T any](tb testing.TB, ch <-chan T, d time.Duration, what string) {
	tb.Helper()
	select {
	case v := <-ch:
		tb.Fatalf("unexpected %s: %v", what, v)
	case <-time.After(d):
	}
}

func TestNewConfig(t *testing.T) {
	h := func(*netpoll.Desc, netpoll.Event) {}
	tests := []struct {
		name string
		cfg  netpoll.Config
		err  error
	}{
		{"zero", netpoll.Config{}, netpoll.ErrNoHandler},
		{"handler only", netpoll.Config{Handler: h}, nil},
		{"negative sizes", netpoll.Config{Handler: h, Workers: -1, QueueSize: -5}, nil},
		{"explicit", netpoll.Config{Handler: h, Workers: 3, QueueSize: 7}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := netpoll.New(tt.cfg)
			if !errors.Is(err, tt.err) {
				t.Fatalf("New: err %v, want %v", err, tt.err)
			}
			if err == nil {
				if err := p.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
			}
		})
	}
}

func TestEventString(t *testing.T) {
	tests := []struct {
		ev   netpoll.Event
		want string
	}{
		{0, "none"},
		{netpoll.EventRead, "read"},
		{netpoll.EventRead | netpoll.EventHup, "read|hup"},
		{netpoll.EventWrite | netpoll.EventErr, "write|err"},
		{1 << 7, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.ev.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReadEvents(t *testing.T) {
	const conns, msgs = 20, 50
	ln := listen(t)
	var mu sync.Mutex
	got := make(map[int]int) // conn index -> bytes read
	p := newPoller(t, netpoll.Config{Workers: 3, Handler: func(d *netpoll.Desc, ev netpoll.Event) {
		var buf [256]byte
		n, _ := d.Value().(net.Conn).Read(buf[:])
		mu.Lock()
		got[d.Fd()] += n
		mu.Unlock()
	}})
	var clis []net.Conn
	var fds []int
	for range conns {
		srv, cli := pair(t, ln)
		d, err := p.Add(srv, srv)
		if err != nil {
			t.Fatalf("Add: %v", err)
		}
		fds = append(fds, d.Fd())
		clis = append(clis, cli)
	}
	if n := p.Len(); n != conns {
		t.Fatalf("Len = %d, want %d", n, conns)
	}
	for range msgs {
		for _, c := range clis {
			if _, err := c.Write([]byte("hello")); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
	}
	eventually(t, "all bytes read", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, fd := range fds {
			if got[fd] != 5*msgs {
				return false
			}
		}
		return true
	})
}

// TestNoConcurrentHandler checks that one Desc's handler never runs on two
// workers at once, while events, WantWrite from outside and from the handler
// race. The handler reads one byte per call, so data stays pending and the
// descriptor is reported again at every re-arm.
func TestNoConcurrentHandler(t *testing.T) {
	const conns, bytesPerConn = 4, 400
	ln := listen(t)
	var inside [conns]atomic.Int32
	var overlap atomic.Bool
	var total atomic.Int64
	p := newPoller(t, netpoll.Config{Workers: 4, QueueSize: 2, Handler: func(d *netpoll.Desc, ev netpoll.Event) {
		v := d.Value().(*tagged)
		i := int(v.name[0] - '0')
		if inside[i].Add(1) != 1 {
			overlap.Store(true)
		}
		if ev&netpoll.EventRead != 0 {
			var b [1]byte
			if n, _ := v.c.Read(b[:]); n == 1 {
				total.Add(1)
			}
		}
		if ev&netpoll.EventWrite == 0 {
			_ = d.WantWrite() // from inside the handler: recorded, applied on re-arm
		}
		runtime.Gosched()
		inside[i].Add(-1)
	}})
	var descs []*netpoll.Desc
	var clis []net.Conn
	for i := range conns {
		srv, cli := pair(t, ln)
		d, err := p.Add(srv, &tagged{string(rune('0' + i)), srv})
		if err != nil {
			t.Fatalf("Add: %v", err)
		}
		descs = append(descs, d)
		clis = append(clis, cli)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, d := range descs {
		wg.Go(func() { // WantWrite from another goroutine, racing the handler
			for {
				select {
				case <-stop:
					return
				default:
					_ = d.WantWrite()
					runtime.Gosched()
				}
			}
		})
	}
	for _, c := range clis {
		wg.Go(func() {
			for range bytesPerConn / 10 {
				if _, err := c.Write([]byte("0123456789")); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
	}
	eventually(t, "all bytes read", func() bool { return total.Load() == conns*bytesPerConn })
	close(stop)
	wg.Wait()
	if overlap.Load() {
		t.Fatal("a handler ran concurrently with itself for one Desc")
	}
}

// fillSendBuffer writes to c until the kernel's send buffer and the peer's
// receive buffer are full (a write times out), and returns the bytes written.
func fillSendBuffer(tb testing.TB, c *net.TCPConn) int {
	tb.Helper()
	chunk := make([]byte, 64<<10)
	total := 0
	for {
		if err := c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
			tb.Fatalf("SetWriteDeadline: %v", err)
		}
		n, err := c.Write(chunk)
		total += n
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				tb.Fatalf("write: %v", err)
			}
			if err := c.SetWriteDeadline(time.Time{}); err != nil {
				tb.Fatalf("SetWriteDeadline: %v", err)
			}
			return total
		}
	}
}

func TestWantWrite(t *testing.T) {
	ln := listen(t)
	srv, cli := pair(t, ln)
	if err := srv.SetWriteBuffer(16 << 10); err != nil {
		t.Fatalf("SetWriteBuffer: %v", err)
	}
	if err := cli.SetReadBuffer(16 << 10); err != nil {
		t.Fatalf("SetReadBuffer: %v", err)
	}
	writes := make(chan netpoll.Event, 16)
	p := newPoller(t, netpoll.Config{Handler: func(d *netpoll.Desc, ev netpoll.Event) {
		if ev&netpoll.EventWrite != 0 {
			writes <- ev
		}
	}})
	d, err := p.Add(srv, nil)
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	quiet(t, writes, 50*time.Millisecond, "EventWrite before WantWrite")

	written := fillSendBuffer(t, srv)
	if err := d.WantWrite(); err != nil {
		t.Fatalf("WantWrite: %v", err)
	}
	if err := d.WantWrite(); err != nil { // merged with the first
		t.Fatalf("WantWrite: %v", err)
	}
	quiet(t, writes, 100*time.Millisecond, "EventWrite while the send buffer is full")

	drained := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, cli, int64(written))
		drained <- err
	}()
	recv(t, writes)
	if err := recv(t, drained); err != nil {
		t.Fatalf("drain: %v", err)
	}
	quiet(t, writes, 50*time.Millisecond, "second EventWrite for one WantWrite")

	// Writable now: a new WantWrite is answered at once.
	if err := d.WantWrite(); err != nil {
		t.Fatalf("WantWrite: %v", err)
	}
	recv(t, writes)
}

func TestPeerClose(t *testing.T) {
	ln := listen(t)
	srv, cli := pair(t, ln)
	type result struct {
		ev  netpoll.Event
		err error
	}
	results := make(chan result, 1)
	p := newPoller(t, netpoll.Config{Handler: func(d *netpoll.Desc, ev netpoll.Event) {
		var b [16]byte
		_, err := srv.Read(b[:])
		if err := d.Remove(); err != nil {
			t.Errorf("Remove: %v", err)
		}
		results <- result{ev, err}
	}})
	if _, err := p.Add(srv, nil); err != nil {
		t.Fatalf("Add: %v", err)
	}
	cli.Close()
	r := recv(t, results)
	if r.ev&(netpoll.EventHup|netpoll.EventRead) == 0 {
		t.Fatalf("peer close reported as %v, want read or hup", r.ev)
	}
	if r.err != io.EOF {
		t.Fatalf("read after peer close: %v, want EOF", r.err)
	}
	if !netpoll.Fallback && r.ev&netpoll.EventHup == 0 {
		t.Fatalf("epoll reported peer close as %v, want hup", r.ev)
	}
}

func TestRemoveInHandler(t *testing.T) {
	ln := listen(t)
	srv, cli := pair(t, ln)
	var calls atomic.Int32
	removed := make(chan error, 1)
	p := newPoller(t, netpoll.Config{Workers: 2, Handler: func(d *netpoll.Desc, ev netpoll.Event) {
		if calls.Add(1) == 1 {
			removed <- d.Remove() // data stays unread: without Remove it would be reported again
			if err := d.Remove(); err != nil {
				t.Errorf("second Remove: %v", err)
			}
			if err := d.WantWrite(); !errors.Is(err, netpoll.ErrClosed) {
				t.Errorf("WantWrite after Remove: %v, want ErrClosed", err)
			}
		}
	}})
	if _, err := p.Add(srv, nil); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if _, err := cli.Write([]byte("x")); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := recv(t, removed); err != nil {
		t.Fatalf("Remove in handler: %v", err)
	}
	if n := p.Len(); n != 0 {
		t.Fatalf("Len after Remove = %d, want 0", n)
	}
	if _, err := cli.Write([]byte("more")); err != nil {
		t.Fatalf("write: %v", err)
	}
	never := make(chan int32)
	go func() {
		if calls.Load() > 1 {
			never <- calls.Load()
		}
	}()
	quiet(t, never, 50*time.Millisecond, "handler call after Remove")
	if c := calls.Load(); c != 1 {
		t.Fatalf("handler called %d times, want 1", c)
	}
	srv.Close()
}

// TestRemoveCloseReuse removes and closes a registered conn, makes a new conn
// that gets the same descriptor number, registers it, and checks that only the
// new Desc ever sees events for that number.
func TestRemoveCloseReuse(t *testing.T) {
	ln := listen(t)
	type hit struct {
		v  string
		ev netpoll.Event
	}
	hits := make(chan hit, 64)
	// The contract: once Remove returns, no new handler run for the old
	// descriptor begins (one already running may still finish and report).
	var oldRemoved, lateStarts atomic.Int32
	p := newPoller(t, netpoll.Config{Handler: func(d *netpoll.Desc, ev netpoll.Event) {
		name := d.Value().(*tagged).name
		if name == "old" && oldRemoved.Load() != 0 {
			lateStarts.Add(1)
		}
		var b [64]byte
		d.Value().(*tagged).c.Read(b[:])
		hits <- hit{name, ev}
	}})
	oldSrv, oldCli := pair(t, ln)
	old, err := p.Add(oldSrv, &tagged{"old", oldSrv})
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	fd := old.Fd()
	if _, err := oldCli.Write([]byte("a")); err != nil {
		t.Fatalf("write: %v", err)
	}
	if h := recv(t, hits); h.v != "old" {
		t.Fatalf("event for %q, want old", h.v)
	}
	if _, err := oldCli.Write([]byte("pending")); err != nil { // readable again when removed
		t.Fatalf("write: %v", err)
	}
	if err := old.Remove(); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	oldRemoved.Store(1)
	oldSrv.Close()

	// The lowest free number is reused: by the new client socket or the
	// accepted one, whichever is created first.
	newSrv, newCli := pair(t, ln)
	conn, peer := newSrv, newCli
	if fdOf(t, newCli) == fd {
		conn, peer = newCli, newSrv
	}
	if fdOf(t, conn) != fd {
		t.Skipf("descriptor %d was not reused (got %d and %d)", fd, fdOf(t, newSrv), fdOf(t, newCli))
	}
	d, err := p.Add(conn, &tagged{"new", conn})
	if err != nil {
		t.Fatalf("Add reused descriptor: %v", err)
	}
	if d.Fd() != fd {
		t.Fatalf("Fd = %d, want %d", d.Fd(), fd)
	}
	for range 3 {
		if _, err := peer.Write([]byte("b")); err != nil {
			t.Fatalf("write: %v", err)
		}
		h := recv(t, hits)
		for h.v == "old" { // reported by a run that began before Remove
			h = recv(t, hits)
		}
		if h.v != "new" {
			t.Fatalf("event for %q on reused descriptor, want new", h.v)
		}
	}
	if n := lateStarts.Load(); n != 0 {
		t.Fatalf("%d handler runs for the removed descriptor began after Remove returned", n)
	}
	if err := d.Remove(); err != nil {
		t.Fatalf("Remove: %v", err)
	}
}

type tagged struct {
	name string
	c    net.Conn
}

func fdOf(tb testing.TB, c *net.TCPConn) int {
	tb.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		tb.Fatalf("SyscallConn: %v", err)
	}
	fd := -1
	if err := rc.Control(func(s uintptr) { fd = int(s) }); err != nil {
		tb.Fatalf("Control: %v", err)
	}
	return fd
}

func TestAddErrors(t *testing.T) {
	ln := listen(t)
	p := newPoller(t, netpoll.Config{Handler: func(*netpoll.Desc, netpoll.Event) {}})
	srv, _ := pair(t, ln)
	d, err := p.Add(srv, nil)
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	closedSrv, _ := pair(t, ln)
	closedSrv.Close()
	var nilConn *net.TCPConn
	tests := []struct {
		name string
		c    syscall.Conn
		want error // nil: any error
	}{
		{"twice", srv, netpoll.ErrRegistered},
		{"nil interface", nil, nil},
		{"nil pointer", nilConn, nil},
		{"closed conn", closedSrv, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Add(tt.c, nil)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Add: %v, want %v", err, tt.want)
			}
		})
	}
	if n := p.Len(); n != 1 {
		t.Fatalf("Len after failed Adds = %d, want 1", n)
	}
	if err := d.Remove(); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	other, _ := pair(t, ln)
	if _, err := p.Add(other, nil); !errors.Is(err, netpoll.ErrClosed) {
		t.Errorf("Add after Close: %v, want ErrClosed", err)
	}
	if err := d.Remove(); err != nil {
		t.Errorf("Remove after Close: %v", err)
	}
}

// TestCloseStopsGoroutines closes a Poller while descriptors are registered,
// a handler is running and events are queued, and checks that every
// goroutine it started is gone when Close returns.
func TestCloseStopsGoroutines(t *testing.T) {
	ln := listen(t)
	before := goleak.IgnoreCurrent()
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	p, err := netpoll.New(netpoll.Config{Workers: 2, QueueSize: 1, Handler: func(d *netpoll.Desc, ev netpoll.Event) {
		select {
		case entered <- struct{}{}:
			<-release // the first call blocks until Close has begun
		default:
		}
		var b [64]byte
		d.Value().(net.Conn).Read(b[:])
	}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for range 10 {
		srv, cli := pair(t, ln)
		if _, err := p.Add(srv, srv); err != nil {
			t.Fatalf("Add: %v", err)
		}
		if _, err := cli.Write([]byte("x")); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	recv(t, entered)
	closed := make(chan error)
	go func() { closed <- p.Close() }()
	close(release)
	if err := recv(t, closed); err != nil {
		t.Fatalf("Close: %v", err)
	}
	goleak.VerifyNone(t, before)
}

// TestIdleConnsCostNoGoroutine registers 5,000 idle connections (10,000
// descriptors with their peers, half the process limit) and checks that the
// goroutine count does not change.
func TestIdleConnsCostNoGoroutine(t *testing.T) {
	if netpoll.Fallback {
		t.Skip("the fallback runs one goroutine per Desc by design")
	}
	const conns = 5000
	ln := listen(t)
	p := newPoller(t, netpoll.Config{Handler: func(*netpoll.Desc, netpoll.Event) {}})
	srvs := make([]*net.TCPConn, 0, conns)
	for range conns {
		srv, _ := pair(t, ln)
		srvs = append(srvs, srv)
	}
	base := runtime.NumGoroutine()
	descs := make([]*netpoll.Desc, 0, conns)
	for _, s := range srvs {
		d, err := p.Add(s, nil)
		if err != nil {
			t.Fatalf("Add: %v", err)
		}
		descs = append(descs, d)
	}
	if n := p.Len(); n != conns {
		t.Fatalf("Len = %d, want %d", n, conns)
	}
	if g := runtime.NumGoroutine(); g != base {
		t.Fatalf("%d idle registered conns: %d goroutines, want %d as before", conns, g, base)
	}
	for _, d := range descs {
		if err := d.Remove(); err != nil {
			t.Fatalf("Remove: %v", err)
		}
	}
	if n := p.Len(); n != 0 {
		t.Fatalf("Len after Remove = %d, want 0", n)
	}
}
