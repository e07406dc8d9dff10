package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"
)

// maxTrackedIPs bounds the per-IP limiter's memory (roughly 200 bytes an
// entry, so about 20 MB). Past it new addresses are admitted untracked, see
// ipLimiter.allow.
const maxTrackedIPs = 100_000

// ipLimiter is --conn-rate-per-ip: one token bucket per client address.
// Entries whose bucket has refilled completely are dropped, which changes
// no decision (a full bucket is what a new entry starts with), so memory
// follows the number of addresses active in the last refill period and is
// capped at max entries.
type ipLimiter struct {
	rate  rate.Limit
	burst int
	idle  time.Duration // time for an empty bucket to refill completely
	max   int

	mu        sync.Mutex
	buckets   map[string]*ipBucket
	lastSweep time.Time
	full      bool // the map was found full; logged once per episode
}

type ipBucket struct {
	lim  *rate.Limiter
	last time.Time
}

// newIPLimiter returns a limiter for perSecond upgrades per address with
// the given burst (0: twice the rate, at least 1), or nil when perSecond is
// 0 (unlimited).
func newIPLimiter(perSecond float64, burst, max int) *ipLimiter {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = int(2 * perSecond)
		if burst < 1 {
			burst = 1
		}
	}
	idle := time.Duration(float64(burst)/perSecond*float64(time.Second)) + time.Second
	return &ipLimiter{rate: rate.Limit(perSecond), burst: burst, idle: idle, max: max, buckets: map[string]*ipBucket{}}
}

// allow takes one token from ip's bucket. When maxTrackedIPs addresses are
// active at once (a distributed flood) a new address is admitted without a
// bucket rather than refused: refusing would lock every newcomer out, and a
// flood from that many addresses is for --max-connections and the network
// in front of roost to absorb. It reports whether the map is full, for a
// log line.
func (l *ipLimiter) allow(ip string, now time.Time) (ok, full bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[ip]
	if b == nil {
		if now.Sub(l.lastSweep) >= l.idle || (len(l.buckets) >= l.max && now.Sub(l.lastSweep) >= time.Second) {
			l.sweepLocked(now)
		}
		if len(l.buckets) >= l.max {
			first := !l.full
			l.full = true
			return true, first
		}
		l.full = false
		b = &ipBucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[ip] = b
	}
	b.last = now
	return b.lim.AllowN(now, 1), false
}

// sweepLocked drops the buckets idle long enough to be full again.
func (l *ipLimiter) sweepLocked(now time.Time) {
	l.lastSweep = now
	for ip, b := range l.buckets {
		if now.Sub(b.last) >= l.idle {
			delete(l.buckets, ip)
		}
	}
}

// size returns the number of tracked addresses.
func (l *ipLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// countingListener wraps accepted TCP connections so that the two limits
// net/http enforces by itself, without any hook, are counted: a request
// header block over --max-header-bytes (net/http writes its own 431 on the
// socket) and a client that does not send its request headers within
// --handshake-timeout (net/http closes the socket silently).
type countingListener struct {
	net.Listener
	refused func(limit string)
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc, ok := c.(interface {
		syscall.Conn
		CloseWrite() error
	})
	if !ok {
		return c, nil
	}
	return &countingConn{Conn: c, sc: sc, refused: l.refused}, nil
}

// countingConn is a TCP connection seen by net/http. It keeps exposing the
// socket's descriptor (SyscallConn), which the hub needs after the upgrade
// to put the connection on its poller; from then on the hub does its I/O on
// the descriptor, not through these methods.
type countingConn struct {
	net.Conn
	sc interface {
		syscall.Conn
		CloseWrite() error
	}
	refused func(limit string)

	deadline  atomic.Int64 // read deadline, unix ns; 0 none
	responded atomic.Bool  // a response was written
	inRequest atomic.Bool  // request bytes arrived since the last response
	timedOut  atomic.Bool  // the handshake timeout was counted
	upgraded  atomic.Bool  // handed to the hub: no HTTP on it any more
}

// connKey is the context key under which ConnContext stores the
// *countingConn of a request, so serveWS can mark it upgraded.
type connKey struct{}

// connContext is http.Server.ConnContext: it remembers the countingConn
// under c (c itself, or the socket beneath a *tls.Conn).
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if cc, ok := c.(*countingConn); ok {
		return context.WithValue(ctx, connKey{}, cc)
	}
	return ctx
}

// markUpgraded stops counting on the connection of r, which the hub takes
// over: its reads and writes are WebSocket traffic from now on.
func markUpgraded(r *http.Request) {
	if cc, ok := r.Context().Value(connKey{}).(*countingConn); ok {
		cc.upgraded.Store(true)
	}
}

// longAgo separates real read deadlines from the ones net/http sets in the
// past (time.Unix(1, 0)) to interrupt its own background read.
var longAgo = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

func (c *countingConn) SyscallConn() (syscall.RawConn, error) { return c.sc.SyscallConn() }
func (c *countingConn) CloseWrite() error                     { return c.sc.CloseWrite() }

func (c *countingConn) SetReadDeadline(t time.Time) error {
	c.deadline.Store(unixNano(t))
	return c.Conn.SetReadDeadline(t)
}

func (c *countingConn) SetDeadline(t time.Time) error {
	c.deadline.Store(unixNano(t))
	return c.Conn.SetDeadline(t)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Read counts a timed-out read as a handshake timeout when the deadline was
// a real one and the client owed us a request: nothing was answered on the
// connection yet, or a request had started arriving. Idle keep-alive
// connections timing out between requests are not counted.
func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.inRequest.Store(true)
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !c.upgraded.Load() && c.deadline.Load() > longAgo &&
		(c.inRequest.Load() || !c.responded.Load()) && c.timedOut.CompareAndSwap(false, true) {
		c.refused("handshake_timeout")
	}
	return n, err
}

var status431 = []byte("HTTP/1.1 431 ")

func (c *countingConn) Write(p []byte) (int, error) {
	if !c.upgraded.Load() && bytes.HasPrefix(p, status431) {
		c.refused("max_header_bytes")
	}
	c.responded.Store(true)
	c.inRequest.Store(false)
	return c.Conn.Write(p)
}
