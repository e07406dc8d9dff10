package hub_test

import (
	"context"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roost-rt/roost/hub"
	"github.com/roost-rt/roost/netpoll"
)

// heapAfterGC returns the live heap after two forced collections.
func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// openDescriptors counts the process's open descriptors, or returns -1
// where /proc is missing.
func openDescriptors() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents) - 1 // ReadDir's own
}

// holdConns opens n bare TCP connections to addr and performs the WebSocket
// handshake and one subscribe on each with gobwas/ws, which keeps no
// goroutine per client connection.
func holdConns(t *testing.T, url string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	sub := ws.MaskFrameInPlace(ws.NewFrame(ws.OpText, true, []byte(`{"id":1,"op":"subscribe","channel":"idle"}`)))
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, br, _, err := ws.Dial(ctx, url+"?user=u"+strconv.Itoa(i))
		cancel()
		require.NoError(t, err)
		if br != nil {
			ws.PutReader(br)
		}
		conns = append(conns, c)
		require.NoError(t, ws.WriteFrame(c, sub))
		f, err := ws.ReadFrame(c)
		require.NoError(t, err)
		require.Equal(t, `{"id":1,"ok":true}`, string(f.Payload))
	}
	return conns
}

// TestIdleConnectionsOwnNoGoroutine holds 2,000 subscribed idle
// connections and checks that the process's goroutine count does not grow
// with them, and reports the heap they cost.
func TestIdleConnectionsOwnNoGoroutine(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2,000 connections")
	}
	if !netpoll.RawDescriptors {
		t.Skip("the fallback poller waits with a goroutine per connection by design")
	}
	const n = 2000
	h, url := startHub(t, hub.Config{})
	runtime.GC()
	g0 := runtime.NumGoroutine()
	heap0 := heapAfterGC()

	// The same count of plain TCP pairs with no hub: half of one is what a
	// client socket costs the process (the hub takes its own sockets over
	// from the runtime, so the server half is the hub's to account for).
	plain := tcpPairsHeap(t, n)

	fds0 := openDescriptors()
	conns := holdConns(t, url, n)
	eventually(t, 10*time.Second, func() bool { return h.Stats().Subscriptions == n }, "all subscribed")
	if fds0 >= 0 {
		// One descriptor per client socket and one per server socket: taking
		// a socket over from the runtime leaves no duplicate behind.
		assert.InDelta(t, 2*n, openDescriptors()-fds0, 10, "descriptors per connection")
	}
	g1 := runtime.NumGoroutine()
	heap1 := heapAfterGC()
	perConn := float64(heap1-heap0)/n - plain/2
	t.Logf("goroutines: %d with 0 connections, %d with %d; server heap per idle connection: %.0f B (plain TCP pair: %.0f B)", g0, g1, n, perConn, plain)
	assert.Less(t, g1-g0, 20, "goroutines must not grow with connections")
	assert.Less(t, perConn, 1024.0, "hub heap per idle connection")
	runtime.KeepAlive(conns)
}

// tcpPairsHeap measures the heap per connected TCP pair (dialed and
// accepted) with nothing on top, then closes them.
func tcpPairsHeap(t *testing.T, n int) float64 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var mu sync.Mutex
	var accepted []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, c)
			mu.Unlock()
		}
	}()
	before := heapAfterGC()
	dialed := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		dialed = append(dialed, c)
	}
	<-done
	after := heapAfterGC()
	for _, c := range dialed {
		_ = c.Close()
	}
	mu.Lock()
	for _, c := range accepted {
		_ = c.Close()
	}
	mu.Unlock()
	return float64(after-before) / float64(n)
}

// freezeProxy forwards TCP both ways until frozen; then it stops reading and
// writing without closing anything, like a peer whose machine vanished.
type freezeProxy struct {
	ln     net.Listener
	target string
	frozen chan struct{}
	stop   chan struct{} // closed at cleanup: frozen pipes end
	once   sync.Once
}

func newFreezeProxy(t *testing.T, target string) *freezeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &freezeProxy{ln: ln, target: target, frozen: make(chan struct{}), stop: make(chan struct{})}
	t.Cleanup(func() { close(p.stop); _ = ln.Close() })
	go p.serve(t)
	return p
}

func (p *freezeProxy) serve(t *testing.T) {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			return
		}
		t.Cleanup(func() { _ = c.Close(); _ = up.Close() })
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *freezeProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.frozen:
			<-p.stop // hold both sockets open, forward nothing, until the test ends
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err == io.EOF || err != nil {
			return
		}
	}
}

func (p *freezeProxy) freeze() { p.once.Do(func() { close(p.frozen) }) }

func TestVanishedClientEvictedWithinIdleTimeout(t *testing.T) {
	evicted := make(chan hub.CloseReason, 1)
	h, url := startHub(t, hub.Config{
		PingInterval: 300 * time.Millisecond,
		IdleTimeout:  1500 * time.Millisecond,
		ErrorHandler: func(_ hub.ConnInfo, r hub.CloseReason, _ error) { evicted <- r },
	})
	host := url[len("ws://"):]
	p := newFreezeProxy(t, host)
	c := dial(t, "ws://"+p.ln.Addr().String()+"/?user=ghost")
	c.sendJSON(`{"id":1,"op":"ping"}`)
	require.Equal(t, `{"id":1,"ok":true}`, c.nextRaw())

	// While the client answers pings (gorilla does in its read loop), it
	// stays connected past the idle timeout.
	go func() {
		for {
			if _, _, err := c.ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	time.Sleep(2500 * time.Millisecond) // longer than IdleTimeout: a heartbeat keeps it alive
	require.EqualValues(t, 1, h.Stats().Connections, "a live client answering pings must stay")

	p.freeze()
	start := time.Now()
	select {
	case r := <-evicted:
		assert.Equal(t, hub.ReasonNoHeartbeat, r)
		// IdleTimeout plus one sweep interval plus scheduling slack.
		assert.Less(t, time.Since(start), 5*time.Second)
	case <-time.After(10 * time.Second):
		t.Fatal("a client behind a frozen link was not evicted")
	}
	assert.EqualValues(t, 0, h.Stats().Connections)
}
