package hub

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roost-rt/roost/hub/internal/wire"
	"github.com/roost-rt/roost/netpoll"
	"github.com/roost-rt/roost/shard"
)

// Connection states, guarded by conn.mu.
const (
	stateOpen    uint8 = iota
	stateClosing       // a close frame is queued or sent; waiting for the client's
	stateClosed        // the socket is closed
)

// conn is one WebSocket connection. An idle conn owns no goroutine and no
// buffer: its read state is the Parser (empty between messages) and its
// output queue is nil until a write cannot complete at once.
//
// Reads happen on one poller worker at a time (netpoll guarantees it), so the
// read-side fields (parser, rate limiter, privileges) need no lock. Writes
// come from fan-out workers, poller workers and the sweeper, and are
// serialized by mu.
type conn struct {
	h     *Hub
	entry *shard.Conn[*conn]
	// nc is the socket while the Go runtime owns it: TLS streams, and
	// sockets roost could not take over (see ownSocket). It is nil when
	// roost owns the descriptor fd outright.
	nc   net.Conn
	desc *netpoll.Desc
	// stream is set for connections served by goroutines (TLS); nil for
	// polled ones.
	stream *stream

	// Read side: owned by the poller worker handling this conn.
	parser    wire.Parser
	rlTokens  float32 // inbound rate limiter: tokens left
	rlStrikes int32   // consecutive commands refused by the limiter
	rlLast    int64   // unix nanos of the last refill

	// grants lists the private channels the identity grants ("*" = all);
	// a refresh replaces it while hooks may read it.
	grants atomic.Pointer[[]string]
	// expiresAt is the identity's expiry in unix nanos (0: never); the
	// sweeper reads it, a refresh writes it.
	expiresAt atomic.Int64
	// pingedAt is when the sweeper last pinged this conn (unix nanos).
	pingedAt atomic.Int64
	// stalledSince is when queued output stopped making progress (unix
	// nanos, 0 when the queue is empty).
	stalledSince atomic.Int64

	// The fields below are guarded by mu. They are packed (int32 offsets,
	// byte-sized state) so that a conn fits the 208-byte size class: at a
	// million connections each 32 bytes is 32 MB.
	mu        sync.Mutex
	state     uint8
	wantWrite bool // EAGAIN was hit before desc existed
	reason    CloseReason
	outOff    int32    // bytes of out[0] already written
	out       [][]byte // frames the kernel has not taken, oldest first; out[0][outOff:] is next
	outBytes  int32    // bytes in out not yet written (at most Config.OutboundQueueBytes)
	// fd is the descriptor roost owns when nc is nil (-1 otherwise). It
	// never changes, but it is used only under mu while state is not
	// stateClosed, or by the goroutine that set stateClosed before it
	// closes fd: nothing else keeps a closed number, reused at once by the
	// next accepted socket, from receiving this connection's reads and
	// writes.
	fd int32
}

// info returns the hook view of c.
func (c *conn) info() ConnInfo {
	return ConnInfo{
		ID:         c.entry.ID(),
		User:       c.entry.User(),
		RemoteAddr: c.entry.RemoteAddr(),
		Identity: Identity{
			User:      c.entry.User(),
			Channels:  c.grantList(),
			ExpiresAt: nanosTime(c.expiresAt.Load()),
		},
	}
}

func (c *conn) grantList() []string {
	if g := c.grants.Load(); g != nil {
		return *g
	}
	return nil
}

func nanosTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// open reports whether c still takes messages.
func (c *conn) open() bool {
	c.mu.Lock()
	ok := c.state == stateOpen
	c.mu.Unlock()
	return ok
}

// atFrameBoundaryLocked reports whether the bytes sent so far end on a frame
// boundary, so that a frame written now directly, bypassing the queue (a
// close frame), cannot land inside a frame the kernel took only part of.
func (c *conn) atFrameBoundaryLocked() bool { return c.outOff == 0 }

// evict ends c at once because it failed (slow, write error or timeout, no
// heartbeat): it is counted as an eviction and reported to ErrorHandler.
func (c *conn) evict(reason CloseReason, err error) {
	if !c.kill(reason) {
		return
	}
	c.h.st.evictions.Add(1)
	if eh := c.h.cfg.ErrorHandler; eh != nil {
		eh(c.info(), reason, err)
	}
}

// kill ends c at once: it leaves the registry, its queue is dropped, a close
// frame with the reason's code is attempted without waiting (not after a
// write error: the socket is gone), and the socket is closed. It reports
// whether this call ended c.
func (c *conn) kill(reason CloseReason) bool {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return false
	}
	wasClosing := c.state == stateClosing
	c.state = stateClosed
	c.reason = reason
	boundary := c.atFrameBoundaryLocked()
	c.dropQueueLocked()
	if reason != ReasonWriteError && boundary {
		var scratch [16]byte
		c.writeDirectLocked(wire.AppendClose(scratch[:0], reason.Code(), ""), nil) // best effort
	}
	if wasClosing {
		c.h.trackClosing(c, 0)
	}
	c.mu.Unlock()
	c.teardown(reason)
	return true
}

// closeGraceful starts the close handshake: c leaves the registry so it gets
// no more messages, a close frame is queued behind what is already queued,
// and the socket is closed when the client answers, or when
// closeHandshakeTimeout passes.
func (c *conn) closeGraceful(reason CloseReason, text string) {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return
	}
	c.state = stateClosing
	c.reason = reason
	frame := wire.AppendClose(nil, reason.Code(), text)
	c.enqueueLocked(frame, nil)
	// Under c.mu, so finish cannot run before it.
	c.h.trackClosing(c, time.Now().Add(closeHandshakeTimeout).UnixNano())
	c.mu.Unlock()
	c.leave()
}

// finish closes the socket of a conn and releases it. It is called when the
// client answered our close frame, closed its side, or the close handshake
// timed out, and for client-initiated closes.
func (c *conn) finish(reason CloseReason) {
	c.mu.Lock()
	if c.state == stateClosed {
		c.h.trackClosing(c, 0) // never leave a closed conn in the set
		c.mu.Unlock()
		return
	}
	wasClosing := c.state == stateClosing
	if !wasClosing {
		c.reason = reason
	}
	reason = c.reason
	c.state = stateClosed
	c.dropQueueLocked()
	if wasClosing {
		c.h.trackClosing(c, 0)
	}
	c.mu.Unlock()
	c.teardown(reason)
}

// teardown removes c from the poller before its descriptor is closed (so a
// reused descriptor number never gets c's events), closes the socket (no
// read or write of it can start any more: state is stateClosed), and
// removes c from the registry, reporting the change to the Broker and the
// PresenceStore. It runs once per conn, after state became stateClosed.
func (c *conn) teardown(reason CloseReason) {
	if c.desc != nil {
		_ = c.desc.Remove()
	}
	if c.stream != nil {
		close(c.stream.done)
	}
	c.closeSocket()
	c.leave()
	c.h.st.disconnects[reason].Add(1)
	if f := c.h.cfg.OnDisconnect; f != nil {
		f(c.info(), reason)
	}
}

// leave removes c from the registry (idempotent) and reports emptied
// channels to the Broker and departures to the PresenceStore.
func (c *conn) leave() {
	h := c.h
	lastOfUser, ok := h.reg.Remove(c.entry, func(channel string, emptied, userLeft bool) {
		if emptied && h.cfg.Broker != nil {
			h.cfg.Broker.Unsubscribe(channel)
		}
		if userLeft && h.cfg.Presence != nil {
			h.cfg.Presence.Left(channel, c.entry.User())
		}
	})
	if ok && lastOfUser && h.cfg.Presence != nil {
		h.cfg.Presence.Disconnected(c.entry.User())
	}
}

// dropQueueLocked forgets queued output.
func (c *conn) dropQueueLocked() {
	for i := range c.out {
		c.out[i] = nil
	}
	c.out = nil
	c.outOff = 0
	c.outBytes = 0
	c.stalledSince.Store(0)
}
