package hub

import (
	"errors"
	"net"
	"os"
	"time"
)

// Connections without a raw descriptor (TLS terminated in this process: a
// *tls.Conn must decrypt in user space) cannot be driven by epoll. They are
// "stream" connections: one goroutine reads and one writes, the design roost
// avoids elsewhere, so they cost a few KB and two goroutines each. Parsing,
// the outbound queue and its bounds, eviction and liveness are shared with
// polled connections.

// streamReadBuf is a stream connection's read buffer, owned by its reader.
const streamReadBuf = 4 << 10

// closeFrameDeadline bounds the blocking write of a close frame on a stream
// connection being killed.
const closeFrameDeadline = 100 * time.Millisecond

// stream holds what only stream connections have.
type stream struct {
	wake chan struct{} // a frame was queued
	done chan struct{} // closed by teardown
}

func (h *Hub) registerStream(c *conn, leftover []byte) {
	c.stream = &stream{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go c.streamRead(leftover)
	go c.streamWrite()
}

// streamRead feeds the parser until the connection ends. It reads into its
// own small buffer and borrows the pooled scratch (whose 32 KiB read buffer
// it does not use) only while it handles what it read, as a poller worker
// does.
func (c *conn) streamRead(leftover []byte) {
	handle := func(b []byte) {
		s := getScratch()
		c.consume(b, s)
		s.flushStats(c.h)
		putScratch(s)
	}
	if len(leftover) > 0 {
		handle(leftover)
	}
	buf := make([]byte, streamReadBuf)
	for {
		n, err := c.nc.Read(buf)
		if n > 0 {
			handle(buf[:n])
		}
		if err != nil {
			c.finish(ReasonClientClosed)
			return
		}
	}
}

// streamWrite writes the queue whenever frames arrive, with a deadline of
// WriteTimeout per batch.
func (c *conn) streamWrite() {
	var bufs net.Buffers
	for {
		select {
		case <-c.stream.wake:
		case <-c.stream.done:
			return
		}
		for {
			c.mu.Lock()
			if c.state == stateClosed || len(c.out) == 0 {
				c.mu.Unlock()
				break
			}
			bufs = append(bufs[:0], c.out...)
			bufs[0] = bufs[0][c.outOff:]
			c.mu.Unlock()

			_ = c.nc.SetWriteDeadline(time.Now().Add(c.h.cfg.WriteTimeout))
			n, err := bufs.WriteTo(c.nc)
			clear(bufs[:cap(bufs)])
			c.h.st.writeCalls.Add(1)
			c.h.st.bytesOut.Add(uint64(n))
			c.mu.Lock()
			if c.state != stateClosed {
				c.wroteLocked(int(n))
			}
			c.mu.Unlock()
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					c.evict(ReasonWriteTimeout, err)
				} else {
					c.h.st.writeErrors.Add(1)
					c.evict(ReasonWriteError, err)
				}
				return
			}
		}
	}
}

// streamWakeLocked tells the writer goroutine that a frame was queued.
func (c *conn) streamWakeLocked() {
	select {
	case c.stream.wake <- struct{}{}:
	default:
	}
}

// streamWriteNowLocked writes b with a short deadline; it is used only for
// the close frame of a connection being killed.
func (c *conn) streamWriteNowLocked(b []byte) (int, error) {
	_ = c.nc.SetWriteDeadline(time.Now().Add(closeFrameDeadline))
	return c.nc.Write(b)
}
