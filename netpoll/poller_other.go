//go:build !linux || netpoll_fallback

package netpoll

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
)

// This is the portable fallback: one goroutine per Desc waits for readability
// through syscall.RawConn.Read (the Go runtime's own poller does that
// waiting), and one goroutine per pending WantWrite waits in poll(2), 50 ms
// at a time, inside RawConn.Control (see writeLoop). It
// keeps the API of the Linux poller so that code built on netpoll compiles and
// its tests run on any system; it is not meant to hold many connections.
//
// A waiting goroutine is woken, for Remove and Close, by moving the
// connection's deadline into the past, so registered connections must have
// deadlines (every net.Conn does), and their owners must not set read
// deadlines of their own while registered.

var (
	errNoDeadlines = errors.New("roost: netpoll fallback needs a conn with SetReadDeadline and SetWriteDeadline")
)

// RawDescriptors reports whether Poller.AddFd is supported: false here, true
// for the epoll poller.
const RawDescriptors = false

// deadliner is the part of net.Conn used to wake waiting goroutines.
type deadliner interface {
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// Desc flags, guarded by Desc.mu.
const (
	flagWantWrite uint8 = 1 << iota // a write waiter is running
	flagRemoved
)

// Poller runs one goroutine per registered Desc. It is safe for concurrent use.
type Poller struct {
	handler Handler

	// mu guards closed and descs, and orders wg.Add before Close's wg.Wait.
	mu     sync.Mutex
	closed bool
	descs  map[*Desc]struct{}

	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Desc is one registered connection. Its methods are safe for concurrent use.
type Desc struct {
	p     *Poller
	value any
	rc    syscall.RawConn
	dl    deadliner
	fd    int

	hmu   sync.Mutex // serializes handler calls of the read and write waiters
	mu    sync.Mutex // guards flags
	flags uint8
}

// New returns a Poller. Config.Workers and Config.QueueSize are unused here.
func New(cfg Config) (*Poller, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Poller{handler: cfg.Handler, descs: make(map[*Desc]struct{})}, nil
}

// Add registers c for read readiness and starts its waiting goroutine. The
// caller keeps owning c, and must call Desc.Remove before closing it.
func (p *Poller) Add(c syscall.Conn, v any) (*Desc, error) {
	dl, ok := c.(deadliner)
	if !ok {
		return nil, errNoDeadlines
	}
	rc, err := rawConn(c)
	if err != nil {
		return nil, err
	}
	fd := -1
	if err := rc.Control(func(s uintptr) { fd = int(s) }); err != nil {
		return nil, err
	}
	d := &Desc{p: p, value: v, rc: rc, dl: dl, fd: fd}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	for o := range p.descs {
		if o.fd == fd {
			return nil, ErrRegistered
		}
	}
	p.descs[d] = struct{}{}
	p.wg.Add(1)
	go d.readLoop()
	return d, nil
}

// AddFd is not supported by the fallback, which can only wait on a
// descriptor through the Go runtime's poller; see RawDescriptors.
func (p *Poller) AddFd(fd int, v any) (*Desc, error) { return nil, ErrUnsupported }

// Len returns the number of registered descriptors.
func (p *Poller) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.descs)
}

// Close wakes every read waiter by moving its connection's read deadline
// into the past (write waiters see the close within writeWaitSlice), waits
// for all of them, and then clears the deadlines of the
// connections that are still registered. It is idempotent. It must not be
// called from a Handler.
func (p *Poller) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		descs := p.descs
		p.descs = nil
		p.mu.Unlock()
		past := time.Unix(1, 0)
		for d := range descs {
			d.dl.SetReadDeadline(past)
		}
		p.wg.Wait()
		for d := range descs {
			d.dl.SetReadDeadline(time.Time{})
		}
	})
	return nil
}

// stopped reports whether d was removed or its Poller closed.
func (d *Desc) stopped() bool {
	d.mu.Lock()
	removed := d.flags&flagRemoved != 0
	d.mu.Unlock()
	d.p.mu.Lock()
	defer d.p.mu.Unlock()
	return removed || d.p.closed
}

// deliver runs the handler unless d is stopped, one call at a time.
func (d *Desc) deliver(ev Event) {
	d.hmu.Lock()
	defer d.hmu.Unlock()
	if !d.stopped() {
		d.p.handler(d, ev)
	}
}

// readLoop waits for readability and delivers EventRead until d stops or
// its connection fails (closed without Remove, or a deadline set by the owner).
func (d *Desc) readLoop() {
	defer d.p.wg.Done()
	for {
		var ev Event
		first := true
		err := d.rc.Read(func(fd uintptr) bool {
			ev = pollReady(fd, false)
			if first && ev == 0 {
				first = false
				return false // wait for the runtime poller to report readability
			}
			return true
		})
		if err != nil || d.stopped() {
			return
		}
		d.deliver(ev | EventRead)
	}
}

// writeWaitSlice is how long one poll(2) of writeLoop waits before it
// checks again whether its Desc was removed.
const writeWaitSlice = 50 * time.Millisecond

// writeLoop waits for writability and delivers one EventWrite. It waits in
// poll(2) inside RawConn.Control, a slice at a time, and not in
// RawConn.Write: a waiting RawConn.Write holds the descriptor's write lock,
// and the owner's own writes (the close frame of an eviction) would queue
// behind it for as long as the peer does not read.
func (d *Desc) writeLoop() {
	defer d.p.wg.Done()
	ready := false
	for !ready && !d.stopped() {
		if err := d.rc.Control(func(fd uintptr) { ready = waitWritable(fd, writeWaitSlice) }); err != nil {
			break
		}
	}
	d.mu.Lock()
	d.flags &^= flagWantWrite
	d.mu.Unlock()
	if ready {
		d.deliver(EventWrite)
	}
}

// Value returns the value given to Add.
func (d *Desc) Value() any { return d.value }

// Fd returns the descriptor number.
func (d *Desc) Fd() int { return d.fd }

// WantWrite asks for one EventWrite when the socket becomes writable. Calls
// before the event is delivered are merged into one. It returns ErrClosed
// after Remove or Close.
func (d *Desc) WantWrite() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.flags&flagRemoved != 0 {
		return ErrClosed
	}
	if d.flags&flagWantWrite != 0 {
		return nil
	}
	d.p.mu.Lock()
	defer d.p.mu.Unlock()
	if d.p.closed {
		return ErrClosed
	}
	d.flags |= flagWantWrite
	d.p.wg.Add(1)
	go d.writeLoop()
	return nil
}

// Remove stops delivery for d: after it returns the handler is not called
// again for d (a call already running may finish). It wakes the read waiter
// with a past read deadline (a pending write waiter sees the removal within
// writeWaitSlice); the caller closes the connection next. Remove is
// idempotent and safe from any goroutine, including d's own handler.
func (d *Desc) Remove() error {
	d.mu.Lock()
	if d.flags&flagRemoved != 0 {
		d.mu.Unlock()
		return nil
	}
	d.flags |= flagRemoved
	d.mu.Unlock()
	p := d.p
	p.mu.Lock()
	delete(p.descs, d)
	p.mu.Unlock()
	past := time.Unix(1, 0)
	err := d.dl.SetReadDeadline(past)
	if err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}
