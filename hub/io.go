package hub

import (
	"errors"
	"net"
	"sync"
	"syscall"

	"github.com/roost-rt/roost/hub/internal/wire"
)

const (
	// readBufSize is the read buffer each poller worker borrows while it
	// handles one readiness event; no connection keeps one.
	readBufSize = 32 << 10
	// maxIovecs bounds the frames one writev hands to the kernel.
	maxIovecs = 64
)

// ioScratch is the per-goroutine state of non-blocking socket I/O: a read
// buffer, an iovec array, and the RawConn callbacks bound to them once, so
// that reading and writing allocate nothing per call. A goroutine takes one
// from scratchPool for the duration of an event or a fan-out batch.
type ioScratch struct {
	buf     []byte
	bufs    [][]byte
	iov     []syscall.Iovec
	n       int
	err     error
	readFn  func(fd uintptr) bool
	writeFn func(fd uintptr) bool

	// now is when the bytes being parsed were read (unix nanos), read
	// once per read for activity and the inbound rate limiter.
	now int64

	// conn is the connection whose bytes are being parsed; msgFn is
	// handleMessage bound to s once, so Feed's callback allocates nothing.
	conn  *conn
	msgFn func(wire.Message) error

	// Counters gathered locally and added to the Hub's once per event or
	// fan-out batch, so that two cores do not share a cache line per
	// recipient or per inbound message.
	writes, bytesOut, msgsOut, delivered uint64
	bytesIn, msgsIn                      uint64
}

// flushStats adds s's local counters to h's and zeroes them.
func (s *ioScratch) flushStats(h *Hub) {
	if s.writes != 0 {
		h.st.writeCalls.Add(s.writes)
		h.st.bytesOut.Add(s.bytesOut)
	}
	if s.msgsOut != 0 {
		h.st.messagesOut.Add(s.msgsOut)
	}
	if s.delivered != 0 {
		h.st.deliveries.Add(s.delivered)
	}
	if s.bytesIn != 0 {
		h.st.bytesIn.Add(s.bytesIn)
		h.st.messagesIn.Add(s.msgsIn)
	}
	s.writes, s.bytesOut, s.msgsOut, s.delivered, s.bytesIn, s.msgsIn = 0, 0, 0, 0, 0, 0
}

// scratchPool's New is set in init: newScratch binds handleMessage, which
// reaches back to the pool.
var scratchPool sync.Pool

func init() { scratchPool.New = func() any { return newScratch() } }

func newScratch() *ioScratch {
	s := &ioScratch{
		buf:  make([]byte, readBufSize),
		bufs: make([][]byte, 0, maxIovecs),
		iov:  make([]syscall.Iovec, 0, maxIovecs),
	}
	s.readFn = s.doRead
	s.writeFn = s.doWrite
	s.msgFn = s.handleMessage
	return s
}

func getScratch() *ioScratch  { return scratchPool.Get().(*ioScratch) }
func putScratch(s *ioScratch) { scratchPool.Put(s) }

// read makes one non-blocking read into s.buf. It returns 0, nil at end of
// stream and 0, EAGAIN when nothing is ready. The descriptor cannot be
// closed, and its number handed to another connection, during the read:
// when roost owns it, c.mu is held and teardown comes after stateClosed;
// when the runtime owns it, RawConn.Read holds the runtime's reference.
func (s *ioScratch) read(c *conn) (int, error) {
	s.n, s.err = 0, nil
	if c.nc == nil {
		c.mu.Lock()
		if c.state == stateClosed {
			c.mu.Unlock()
			return 0, net.ErrClosed
		}
		s.doRead(uintptr(c.fd))
		c.mu.Unlock()
		return s.n, s.err
	}
	rc, err := c.rawConn()
	if err == nil {
		err = rc.Read(s.readFn)
	}
	if err != nil {
		return 0, err
	}
	return s.n, s.err
}

// rawConn returns the RawConn of a runtime-owned socket (one small
// allocation: only connections roost could not take over pay it).
func (c *conn) rawConn() (syscall.RawConn, error) {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return nil, errNoDescriptor
	}
	return sc.SyscallConn()
}

var errNoDescriptor = errors.New("roost: connection has no descriptor")

func (s *ioScratch) doRead(fd uintptr) bool {
	for {
		n, err := syscall.Read(int(fd), s.buf)
		if err == syscall.EINTR {
			continue
		}
		if n < 0 {
			n = 0
		}
		s.n, s.err = n, err
		return true
	}
}

// writev makes one non-blocking write of s.bufs and returns the bytes the
// kernel took; a full socket buffer is not an error. The caller holds c.mu,
// and c is not closed, or c is being closed by this goroutine.
func (s *ioScratch) writev(c *conn) (int, error) {
	s.n, s.err = 0, nil
	if c.nc == nil {
		s.doWrite(uintptr(c.fd))
	} else {
		rc, err := c.rawConn()
		if err == nil {
			err = rc.Write(s.writeFn)
		}
		if err != nil {
			return 0, err
		}
	}
	if s.err != nil && isAgain(s.err) {
		return s.n, nil
	}
	return s.n, s.err
}

func (s *ioScratch) doWrite(fd uintptr) bool {
	for {
		n, err := s.writeBufs(int(fd))
		if err == syscall.EINTR {
			continue
		}
		if n < 0 {
			n = 0
		}
		s.n, s.err = n, err
		return true
	}
}
