package hub

import (
	"errors"
	"syscall"
	"time"
)

var (
	errQueueFull = errors.New("roost: outbound queue over its bound")
	errStalled   = errors.New("roost: queued output made no progress within the write timeout")
)

// enqueue results.
const (
	sentOK = iota
	sentOverflow
	sentError
)

// send hands frame to c: straight to the kernel when nothing is queued,
// otherwise behind the queue. frame may be shared with other connections and
// is never modified. It reports whether c took the frame; a conn over its
// queue bound or whose write failed is evicted here.
func (c *conn) send(frame []byte, s *ioScratch) bool {
	if s == nil {
		s = getScratch()
		defer func() { s.flushStats(c.h); putScratch(s) }()
	}
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return false
	}
	res, err := c.enqueueLocked(frame, s)
	c.mu.Unlock()
	switch res {
	case sentOverflow:
		c.h.st.queueOverflows.Add(1)
		c.evict(ReasonSlow, errQueueFull)
		return false
	case sentError:
		c.h.st.writeErrors.Add(1)
		c.evict(ReasonWriteError, err)
		return false
	}
	s.msgsOut++
	return true
}

// enqueueLocked writes frame now if the queue is empty, and queues what the
// kernel did not take. A close frame (force) is queued past the bounds.
func (c *conn) enqueueLocked(frame []byte, s *ioScratch) (int, error) {
	h := c.h
	if len(c.out) > 0 && c.state == stateOpen &&
		(int(c.outBytes)+len(frame) > h.cfg.OutboundQueueBytes || len(c.out) >= h.cfg.OutboundQueueFrames) {
		return sentOverflow, nil
	}
	if c.stream != nil {
		if len(c.out) == 0 {
			c.stalledSince.Store(time.Now().UnixNano())
		}
		c.out = append(c.out, frame)
		c.outBytes += int32(len(frame))
		c.streamWakeLocked()
		return sentOK, nil
	}
	if len(c.out) == 0 {
		n, err := c.writeDirectLocked(frame, s)
		if err != nil {
			return sentError, err
		}
		if n == len(frame) {
			return sentOK, nil
		}
		// The whole frame is queued with outOff at what the kernel took,
		// so that atFrameBoundaryLocked knows a frame is half sent.
		c.out = append(c.out, frame)
		c.outOff = int32(n)
		c.outBytes += int32(len(frame) - n)
		c.stalledSince.Store(time.Now().UnixNano())
		c.armWriteLocked()
		return sentOK, nil
	}
	c.out = append(c.out, frame)
	c.outBytes += int32(len(frame))
	return sentOK, nil
}

// armWriteLocked asks the poller for one writable event.
func (c *conn) armWriteLocked() {
	if c.desc == nil {
		c.wantWrite = true // registered later; ServeHTTP arms it then
		return
	}
	_ = c.desc.WantWrite()
}

// writeDirectLocked makes one non-blocking write of b and returns how much
// the kernel took. EAGAIN is not an error: it returns 0.
func (c *conn) writeDirectLocked(b []byte, s *ioScratch) (int, error) {
	if c.stream != nil {
		return c.streamWriteNowLocked(b)
	}
	if s == nil {
		s = getScratch()
		defer func() { s.flushStats(c.h); putScratch(s) }()
	}
	s.bufs = append(s.bufs[:0], b)
	n, err := s.writev(c)
	s.bufs[0] = nil
	s.writes++
	s.bytesOut += uint64(n)
	return n, err
}

// flush writes as much queued output as the kernel takes, in one writev of
// up to maxIovecs frames; it runs on a poller worker when the socket became
// writable.
func (c *conn) flush(s *ioScratch) {
	c.mu.Lock()
	if c.state == stateClosed || len(c.out) == 0 {
		c.mu.Unlock()
		return
	}
	s.bufs = s.bufs[:0]
	for i, b := range c.out {
		if i == maxIovecs {
			break
		}
		if i == 0 {
			b = b[c.outOff:]
		}
		s.bufs = append(s.bufs, b)
	}
	n, err := s.writev(c)
	clear(s.bufs)
	s.writes++
	if err != nil {
		c.mu.Unlock()
		c.h.st.writeErrors.Add(1)
		c.evict(ReasonWriteError, err)
		return
	}
	s.bytesOut += uint64(n)
	c.wroteLocked(n)
	if len(c.out) > 0 {
		c.armWriteLocked()
	}
	c.mu.Unlock()
}

// wroteLocked records that the kernel took n bytes of the queue, for the
// poller's flush and the stream writer alike: they leave the queue, and the
// stall clock restarts on progress, or stops with the queue empty (an idle
// conn keeps no queue memory).
func (c *conn) wroteLocked(n int) {
	c.advanceLocked(n)
	if len(c.out) == 0 {
		c.out = nil
		c.stalledSince.Store(0)
	} else if n > 0 {
		c.stalledSince.Store(time.Now().UnixNano())
	}
}

// advanceLocked drops n written bytes from the head of the queue.
func (c *conn) advanceLocked(n int) {
	c.outBytes -= int32(n)
	for n > 0 && len(c.out) > 0 {
		rest := len(c.out[0]) - int(c.outOff)
		if n < rest {
			c.outOff += int32(n)
			return
		}
		n -= rest
		c.out[0] = nil
		c.out = c.out[1:]
		c.outOff = 0
	}
}

// stalled reports whether c's queued output made no progress for the write
// timeout.
func (c *conn) stalled(now int64) bool {
	since := c.stalledSince.Load()
	return since != 0 && now-since > int64(c.h.cfg.WriteTimeout)
}

// isAgain reports whether err means "try again when writable/readable".
func isAgain(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
}
