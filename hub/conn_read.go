package hub

import (
	"errors"
	"time"

	"github.com/roost-rt/roost/hub/internal/wire"
	"github.com/roost-rt/roost/netpoll"
)

// onEvent is the poller's handler: netpoll runs it on a worker, never twice
// at once for one connection.
func (h *Hub) onEvent(d *netpoll.Desc, ev netpoll.Event) {
	c, ok := d.Value().(*conn)
	if !ok {
		return
	}
	s := getScratch()
	if ev&netpoll.EventWrite != 0 {
		c.flush(s)
	}
	if ev&(netpoll.EventRead|netpoll.EventHup|netpoll.EventErr) != 0 {
		c.readOnce(s)
	}
	s.flushStats(h)
	putScratch(s)
}

// readOnce makes one non-blocking read and handles every complete message
// in it. One read per event keeps a chatty client from starving others: the
// poller re-arms the descriptor and comes back if more is waiting.
func (c *conn) readOnce(s *ioScratch) {
	n, err := s.read(c)
	if n == 0 {
		if err != nil && isAgain(err) {
			return
		}
		c.finish(ReasonClientClosed) // end of stream or a read error
		return
	}
	c.consume(s.buf[:n], s)
}

// consume feeds bytes read from the socket (or left in the upgrade's buffer)
// to the frame parser.
func (c *conn) consume(b []byte, s *ioScratch) {
	s.now = time.Now().UnixNano()
	c.entry.Touch(s.now)
	c.pingedAt.Store(0)
	s.bytesIn += uint64(len(b))
	s.conn = c
	err := c.parser.Feed(b, c.h.cfg.MaxMessageBytes, s.msgFn)
	s.conn = nil
	if err == nil || errors.Is(err, errConnDone) {
		return
	}
	var ce *wire.CloseError
	if errors.As(err, &ce) {
		c.parser.Reset()
		c.abort(closeReasonFor(ce.Code), err)
		return
	}
	c.abort(ReasonInternal, err)
}

// errConnDone stops parsing once the connection has ended.
var errConnDone = errors.New("roost: connection done")

func closeReasonFor(code uint16) CloseReason {
	switch code {
	case 1007:
		return ReasonInvalidData
	case 1009:
		return ReasonTooBig
	default:
		return ReasonProtocolError
	}
}

// handleMessage handles one complete message or control frame of s.conn.
func (s *ioScratch) handleMessage(m wire.Message) error {
	c := s.conn
	switch m.Kind {
	case wire.KindClose:
		c.answerClose(m.CloseCode, s)
		return errConnDone
	case wire.KindPing:
		// RFC 6455 section 5.5.3: the pong echoes the ping's payload. The
		// payload aliases the read buffer, so the frame copies it.
		c.send(wire.AppendFrame(nil, wire.KindPong, m.Payload), s)
		return nil
	case wire.KindPong:
		return nil // activity was recorded when the bytes arrived
	}
	if !c.open() {
		return nil // closing or closed: the client's remaining messages are dropped
	}
	s.msgsIn++
	if m.Kind == wire.KindBinary {
		c.replyError(0, false, &Error{Code: 400, Message: "binary messages are not supported; send JSON text"}, s)
		return nil
	}
	c.handleCommand(m.Payload, s)
	return nil
}

// answerClose completes a close handshake: when the client started it, the
// server answers with the same code (RFC 6455 section 5.5.1) unless a frame
// is half sent (the answer cannot go in the middle of it); when the server
// started it, this is the client's answer.
func (c *conn) answerClose(code uint16, s *ioScratch) {
	c.mu.Lock()
	if c.state == stateOpen && c.atFrameBoundaryLocked() {
		if code == 0 {
			code = 1000
		}
		var scratch [16]byte
		c.writeDirectLocked(wire.AppendClose(scratch[:0], code, ""), s)
	}
	c.mu.Unlock()
	c.finish(ReasonClientClosed)
}

// abort ends c because the client broke the protocol or a limit: a close
// frame with the reason's code is attempted and the socket closed. Unlike
// evict it is not counted as an eviction.
func (c *conn) abort(reason CloseReason, err error) {
	if c.kill(reason) {
		c.h.log.Debug("connection aborted", "conn", c.entry.ID(), "reason", reason.String(), "err", err)
	}
}
