//go:build linux

package bench

import (
	"errors"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// pollReadBuf is the read buffer of one poll loop: one read(2) takes up to
// this much of a connection's pending data.
const pollReadBuf = 64 << 10

// pollWake is the epoll data of a loop's wake-up eventfd; connection
// indexes are never negative.
const pollWake = -1

// pollReader reads the worker's connections from a few goroutines, each
// blocking in epoll_wait on its own level-triggered epoll instance and
// doing non-blocking read(2) into one buffer per loop. Connection i belongs
// to loop i % len(loops) for its whole life, so its parse state needs no
// lock. Compared with a goroutine per connection, a delivery costs one
// read(2) and a share of one epoll_wait instead of a netpoller wake-up, a
// goroutine switch and a read; the harness's CPU, which shares the cores
// with the server, shrinks accordingly.
type pollReader struct {
	sink  frameSink
	conns []atomic.Pointer[pollConn] // by connection index; nil when not (or no longer) read
	loops []*pollLoop
	mu    sync.Mutex // guards closed; held by add while it registers
	// closed is set by close; add then closes what it is given.
	closed bool
	wg     sync.WaitGroup
}

// pollConn is one connection's state: its descriptor and its partial frame.
// Only the owning loop touches it once it is published in conns.
type pollConn struct {
	fd int // -1 once closed
	fr frameReader
}

// pollLoop is one reader goroutine's epoll instance and buffer.
type pollLoop struct {
	r      *pollReader
	epfd   int
	wake   int // eventfd that ends the loop
	buf    []byte
	events [256]unix.EpollEvent
	// cur, curFd and now describe the connection being parsed, for the
	// frameHandler methods.
	cur   int
	curFd int
	now   int64
}

var _ connReader = (*pollReader)(nil)

func newPollReader(n, readers int, sink frameSink) (connReader, error) {
	if readers <= 0 {
		readers = runtime.GOMAXPROCS(0)
	}
	r := &pollReader{sink: sink, conns: make([]atomic.Pointer[pollConn], n)}
	for range min(readers, max(n, 1)) {
		l, err := newPollLoop(r)
		if err != nil {
			r.closeLoops()
			return nil, err
		}
		r.loops = append(r.loops, l)
	}
	for _, l := range r.loops {
		r.wg.Add(1)
		go l.run()
	}
	return r, nil
}

func newPollLoop(r *pollReader) (*pollLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: pollWake}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return &pollLoop{r: r, epfd: epfd, wake: wake, buf: make([]byte, pollReadBuf)}, nil
}

// add takes c's descriptor away from Go's netpoller (a duplicate survives
// closing the net.Conn, which deregisters the original), parses what c had
// already buffered, and registers the descriptor with loop i % len(loops).
func (r *pollReader) add(i int, c *wsConn) error {
	fd, err := detachFD(c)
	if err != nil {
		c.close()
		return err
	}
	pc := &pollConn{fd: fd}
	l := r.loops[i%len(r.loops)]
	if c.w > c.r || c.fr.frag != nil {
		// Frames that arrived with the subscribe reply: parse them here,
		// before any loop can see the connection.
		pc.fr.frag = c.fr.frag
		h := &pollLoop{r: r, cur: i, curFd: fd, now: nowNanos()}
		if err := pc.fr.feed(c.buf[c.r:c.w], h); err != nil {
			r.end(i, pc, err)
			return nil
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		closeFD(pc)
		return errReaderClosed
	}
	r.conns[i].Store(pc)
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(i)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		r.conns[i].Store(nil)
		closeFD(pc)
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// detachFD takes c's socket from Go's netpoller (see dupSocket).
func detachFD(c *wsConn) (int, error) { return dupSocket(c.nc) }

// run waits for readable connections and reads each once per wake-up;
// level triggering brings back those with more to read.
func (l *pollLoop) run() {
	defer l.r.wg.Done()
	for {
		n, err := unix.EpollWait(l.epfd, l.events[:], -1)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return // the descriptor is gone; close handles the rest
		}
		for _, ev := range l.events[:n] {
			if ev.Fd == pollWake {
				return
			}
			i := int(ev.Fd)
			if pc := l.r.conns[i].Load(); pc != nil && pc.fd >= 0 {
				l.read(i, pc)
			}
		}
	}
}

// pollDrainReads bounds the reads one connection gets per wake-up, so that a
// connection with a deep backlog does not hold its loop for long.
const pollDrainReads = 16

// read reads connection i until its socket is drained (a short read) or it
// had pollDrainReads reads, parsing as it goes. Draining matters: a server
// bounds what it queues per connection, and a reader that took one buffer
// per wake-up from each of thousands of busy sockets would fall behind and
// be evicted as a slow consumer.
func (l *pollLoop) read(i int, pc *pollConn) {
	for range pollDrainReads {
		n, err := unix.Read(pc.fd, l.buf)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			return
		case err != nil:
			l.r.end(i, pc, os.NewSyscallError("read", err))
			return
		case n == 0:
			l.r.end(i, pc, io.EOF)
			return
		}
		l.cur, l.curFd, l.now = i, pc.fd, nowNanos()
		if err := pc.fr.feed(l.buf[:n], l); err != nil {
			l.r.end(i, pc, err)
			return
		}
		if n < len(l.buf) {
			return
		}
	}
}

func (l *pollLoop) data(p []byte) { l.r.sink.message(l.cur, p, l.now) }

func (l *pollLoop) ping(p []byte) error { return writeFD(l.curFd, ws.OpPong, p, time.Second) }

// end closes connection i after the server or the network ended it,
// answering a close frame with one, and reports it.
func (r *pollReader) end(i int, pc *pollConn, err error) {
	var ce *closeError
	if errors.As(err, &ce) {
		var code [2]byte
		code[0], code[1] = byte(ce.code>>8), byte(ce.code)
		writeFD(pc.fd, ws.OpClose, code[:], 0)
	}
	r.conns[i].Store(nil)
	closeFD(pc) // closing removes it from its epoll set
	r.sink.ended(i, err)
}

// closeFD closes pc's descriptor once.
func closeFD(pc *pollConn) {
	if pc.fd >= 0 {
		unix.Close(pc.fd)
		pc.fd = -1
	}
}

// writeFD writes one client frame to a non-blocking descriptor, waiting up
// to wait for room in the socket's send buffer.
func writeFD(fd int, op ws.OpCode, p []byte, wait time.Duration) error {
	var scratch [64]byte
	return writeAllFD(fd, appendClientFrame(scratch[:0], op, p), wait)
}

// close wakes every loop, waits for them, then closes each connection still
// open with a normal close frame.
func (r *pollReader) close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.mu.Unlock()
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	for _, l := range r.loops {
		unix.Write(l.wake, one)
	}
	r.wg.Wait()
	normal := []byte{0x03, 0xe8} // 1000
	for i := range r.conns {
		if pc := r.conns[i].Swap(nil); pc != nil {
			writeFD(pc.fd, ws.OpClose, normal, 0) // best effort: the socket closes regardless
			closeFD(pc)
		}
	}
	r.closeLoops()
}

func (r *pollReader) closeLoops() {
	for _, l := range r.loops {
		unix.Close(l.epfd)
		unix.Close(l.wake)
	}
}
