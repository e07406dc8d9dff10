package bench

import (
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// Reader kinds a worker can read its connections with (Plan.Reader).
const (
	// ReaderEpoll reads every connection from a few goroutines, each
	// waiting on its own level-triggered epoll instance (Linux only; other
	// systems fall back to ReaderGoroutine).
	ReaderEpoll = "epoll"
	// ReaderGoroutine reads each connection from its own goroutine through
	// Go's netpoller: the simple design, and the fallback.
	ReaderGoroutine = "goroutine"
)

var errReader = errors.New("roost: bench: --reader takes epoll or goroutine")

// frameSink is where a connReader hands what it read. The worker implements
// it; calls for one connection never overlap.
type frameSink interface {
	// message receives a complete data message of connection i that arrived
	// at now (unix nanoseconds). p is valid only during the call.
	message(i int, p []byte, now int64)
	// ended reports that connection i was ended by the server or the
	// network (never for connections the reader closes itself).
	ended(i int, err error)
}

// connReader owns the read side of a worker's subscribed connections.
type connReader interface {
	// add hands connection i over to the reader, which reads it until the
	// server ends it or close is called. c must not be used by the caller
	// afterwards. add after close closes c.
	add(i int, c *wsConn) error
	// close stops reading, closes every connection still open with a normal
	// close frame, and waits for the reader's goroutines.
	close()
}

// newConnReader returns the reader of the given kind ("" means epoll where
// available) delivering to sink; n is the number of connections it will be
// given, readers how many goroutines read (0 means GOMAXPROCS).
func newConnReader(kind string, n, readers int, sink frameSink) (connReader, error) {
	switch kind {
	case "", ReaderEpoll:
		return newPollReader(n, readers, sink)
	case ReaderGoroutine:
		return newGoroutineReader(n, sink), nil
	}
	return nil, errReader
}

// goroutineReader reads each connection in a goroutine of its own, blocking
// in Go's netpoller: one goroutine, its stack and a read buffer per
// connection.
type goroutineReader struct {
	sink frameSink
	mu   sync.Mutex // guards conns, closed
	// conns holds the connections being read; an entry is set to nil when
	// close takes it, so that a read ending afterwards is not reported.
	conns  []*wsConn
	closed bool
	wg     sync.WaitGroup
}

func newGoroutineReader(n int, sink frameSink) *goroutineReader {
	return &goroutineReader{sink: sink, conns: make([]*wsConn, n)}
}

func (g *goroutineReader) add(i int, c *wsConn) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		c.close()
		return errReaderClosed
	}
	g.conns[i] = c
	g.wg.Add(1)
	go g.loop(i, c)
	return nil
}

// loop reads connection i until it ends.
func (g *goroutineReader) loop(i int, c *wsConn) {
	defer g.wg.Done()
	for {
		p, err := c.next()
		if err != nil {
			g.mu.Lock()
			ours := g.conns[i] == nil
			g.conns[i] = nil
			g.mu.Unlock()
			if !ours {
				c.nc.Close()
				g.sink.ended(i, err)
			}
			return
		}
		g.sink.message(i, p, nowNanos())
	}
}

func (g *goroutineReader) close() {
	g.mu.Lock()
	conns := g.conns
	g.conns = make([]*wsConn, len(conns))
	g.closed = true
	g.mu.Unlock()
	closeConns(conns)
	g.wg.Wait()
}

// closeConns closes conns (nil entries skipped), 64 at a time.
func closeConns(conns []*wsConn) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, c := range conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() { defer wg.Done(); c.close(); <-sem }()
	}
	wg.Wait()
}

var errReaderClosed = errors.New("roost: bench: reader closed")

// frameHeader parses the header of a server frame at the start of b. n is
// the header length plus the payload length, or 0 when b does not yet hold
// the whole header; the frame is complete when len(b) >= n.
func frameHeader(b []byte) (fin bool, op ws.OpCode, hl int, n int, err error) {
	if len(b) < 2 {
		return false, 0, 0, 0, nil
	}
	b0, b1 := b[0], b[1]
	if b1&0x80 != 0 || b0&0x70 != 0 {
		// Server frames are never masked (RFC 6455 section 5.1) and no
		// extension was negotiated that would set the reserved bits.
		return false, 0, 0, 0, errProtocol
	}
	hl, l := 2, uint64(b1&0x7f)
	switch l {
	case 126:
		hl = 4
	case 127:
		hl = 10
	}
	if len(b) < hl {
		return false, 0, 0, 0, nil
	}
	switch hl {
	case 4:
		l = uint64(binary.BigEndian.Uint16(b[2:]))
	case 10:
		l = binary.BigEndian.Uint64(b[2:])
	}
	if l > maxServerFrame {
		return false, 0, 0, 0, errFrameLarge
	}
	return b0&0x80 != 0, ws.OpCode(b0 & 0x0f), hl, hl + int(l), nil
}

// frameHandler takes what a frameReader finds; p is valid during the call
// only.
type frameHandler interface {
	// data receives a complete data message.
	data(p []byte)
	// ping receives a ping's payload; the answer is a pong with the same
	// payload (RFC 6455 section 5.5.3).
	ping(p []byte) error
}

// frameReader reassembles the server frames of one connection from reads
// of any size: a frame split over reads is carried in pend, a fragmented
// message in frag. Both are nil between frames, so an idle connection costs
// no buffer.
type frameReader struct {
	pend []byte
	frag []byte
}

// feed parses data, which follows whatever an earlier feed left incomplete,
// handing h each complete data message and each ping. A close frame ends
// parsing with *closeError; protocol errors end it with errProtocol or
// errFrameLarge. Complete frames are parsed where they lie in data; only a
// frame split across reads is copied, and only its own bytes.
func (f *frameReader) feed(data []byte, h frameHandler) error {
	var spare []byte // a completed pend's array, reused for the new tail
	for len(f.pend) > 0 {
		_, _, _, n, err := frameHeader(f.pend)
		if err != nil {
			return err
		}
		if n > 0 && len(f.pend) == n {
			if _, err := f.frames(f.pend, h); err != nil {
				return err
			}
			spare, f.pend = f.pend[:0], nil
			break
		}
		if len(data) == 0 {
			return nil // data used up inside the carried frame
		}
		want := n
		if n == 0 {
			want = len(f.pend) + 1 // a byte at a time until the header is whole
		}
		k := min(len(data), want-len(f.pend))
		f.pend = append(f.pend, data[:k]...)
		data = data[k:]
	}
	rest, err := f.frames(data, h)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		if cap(spare) < len(rest) {
			spare = make([]byte, 0, max(len(rest), 256))
		}
		f.pend = append(spare[:0], rest...)
	}
	return nil
}

// frames parses the complete frames at the start of data and returns what
// follows them (an incomplete frame, or nothing).
func (f *frameReader) frames(data []byte, h frameHandler) ([]byte, error) {
	for {
		fin, op, hl, n, err := frameHeader(data)
		if err != nil {
			return nil, err
		}
		if n == 0 || len(data) < n {
			return data, nil
		}
		p := data[hl:n]
		data = data[n:]
		if err := f.frame(fin, op, p, h); err != nil {
			return nil, err
		}
	}
}

// frame handles one complete server frame with payload p: a data message
// (whole, or completed by this fragment) goes to h.data, a ping to h.ping,
// and a close frame ends the connection with *closeError. A data frame
// inside a fragmented message, or a continuation outside one, is a
// protocol error (RFC 6455 section 5.4).
func (f *frameReader) frame(fin bool, op ws.OpCode, p []byte, h frameHandler) error {
	switch op {
	case ws.OpPing:
		return h.ping(p)
	case ws.OpPong:
	case ws.OpClose:
		code := uint16(1005)
		if len(p) >= 2 {
			code = binary.BigEndian.Uint16(p)
		}
		return &closeError{code}
	case ws.OpText, ws.OpBinary:
		if f.frag != nil {
			return errProtocol
		}
		if fin {
			h.data(p)
		} else {
			f.frag = append(make([]byte, 0, 2*len(p)), p...)
		}
	case ws.OpContinuation:
		if f.frag == nil {
			return errProtocol
		}
		f.frag = append(f.frag, p...)
		if fin {
			m := f.frag
			f.frag = nil
			h.data(m)
		}
	default:
		return errProtocol
	}
	return nil
}

func nowNanos() int64 { return time.Now().UnixNano() }

func isEOF(err error) bool { return errors.Is(err, io.EOF) }

// closeKey is the close_codes key for how a connection ended.
func closeKey(err error) string {
	var ce *closeError
	switch {
	case errors.As(err, &ce):
		return strconv.Itoa(int(ce.code))
	case isEOF(err):
		return "eof"
	}
	return "error"
}
