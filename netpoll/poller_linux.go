//go:build linux && !netpoll_fallback

package netpoll

import (
	"errors"
	"math"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Interest sets passed to epoll_ctl. EPOLLERR and EPOLLHUP are always reported.
const (
	readInterest  = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT
	writeInterest = readInterest | unix.EPOLLOUT
)

// waitBatch is the number of events fetched by one epoll_wait.
const waitBatch = 256

// Desc flags, guarded by Desc.mu.
const (
	// flagBusy: the kernel reported an event and the descriptor is disarmed
	// (EPOLLONESHOT) until a worker re-arms it after the handler returned.
	flagBusy uint8 = 1 << iota
	// flagWantWrite: WantWrite was called and EventWrite not yet delivered.
	flagWantWrite
	// flagRemoved: Remove was called; the descriptor is never armed again.
	flagRemoved
)

// RawDescriptors reports whether Poller.AddFd is supported: true for the
// epoll poller, false for the goroutine fallback, which can only wait on a
// descriptor through the Go runtime's own poller.
const RawDescriptors = true

// Poller delivers readiness events of registered descriptors to a bounded
// pool of worker goroutines. It is safe for concurrent use.
type Poller struct {
	handler Handler
	epfd    int
	wakefd  int // eventfd, written by Close to end epoll_wait
	queue   chan job
	done    chan struct{} // closed by Close

	// mu guards the fields below, and the validity of epfd for epoll_ctl:
	// every epoll_ctl happens with mu held (read or write) and !closed.
	mu     sync.RWMutex
	closed bool
	table  []*Desc // indexed by descriptor number
	n      int     // registered descriptors
	gen    uint32  // generation of the last Add; never 0 for a Desc

	loopDone  chan struct{}
	loopErr   error // set by the loop before loopDone is closed
	workers   sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// job is one event handed from the loop to a worker.
type job struct {
	d  *Desc
	ev Event
}

// Desc is one registered descriptor. Its methods are safe for concurrent use.
// An idle Desc is 48 bytes of heap plus one table slot: no goroutine, no buffer.
type Desc struct {
	p     *Poller
	value any
	mu    sync.Mutex // guards flags and orders epoll_ctl calls on this descriptor
	fd    int32
	gen   uint32
	flags uint8
}

// New creates the epoll instance and the eventfd used to wake it, and starts
// the loop goroutine and cfg.Workers worker goroutines; Close stops them.
func New(cfg Config) (*Poller, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	// Generation 0 marks the wake-up descriptor; no Desc has it.
	if err := epollCtl(epfd, unix.EPOLL_CTL_ADD, int32(wakefd), unix.EPOLLIN, 0); err != nil {
		unix.Close(wakefd)
		unix.Close(epfd)
		return nil, err
	}
	p := &Poller{
		handler:  cfg.Handler,
		epfd:     epfd,
		wakefd:   wakefd,
		queue:    make(chan job, cfg.QueueSize),
		done:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	p.workers.Add(cfg.Workers)
	for range cfg.Workers {
		go p.work()
	}
	go p.loop()
	return p, nil
}

// epollCtl wraps epoll_ctl with the descriptor number and generation as the
// event data.
func epollCtl(epfd, op int, fd int32, events uint32, gen uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: fd, Pad: int32(gen)}
	for {
		err := unix.EpollCtl(epfd, op, int(fd), &ev)
		if err != unix.EINTR {
			return os.NewSyscallError("epoll_ctl", err)
		}
	}
}

// ctl runs epoll_ctl unless the Poller is closed.
func (p *Poller) ctl(op int, d *Desc, events uint32) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	return epollCtl(p.epfd, op, d.fd, events, d.gen)
}

// Add registers the descriptor of c for read readiness and returns its Desc,
// which carries v. The descriptor is taken with c.SyscallConn().Control and
// is neither duplicated nor wrapped. The caller keeps owning c, and must call
// Desc.Remove before closing it.
func (p *Poller) Add(c syscall.Conn, v any) (*Desc, error) {
	rc, err := rawConn(c)
	if err != nil {
		return nil, err
	}
	var d *Desc
	var addErr error
	// Registering inside Control keeps the descriptor open meanwhile.
	err = rc.Control(func(s uintptr) {
		d, addErr = p.register(s, v)
	})
	if err != nil {
		return nil, err
	}
	return d, addErr
}

// AddFd registers a descriptor the caller owns outright (no net.Conn
// behind it, so no runtime poll descriptor) for read readiness, and returns
// its Desc, which carries v. fd must be a non-blocking socket. The caller
// must call Desc.Remove before closing fd, and must not read or write fd
// once it has started closing it: with no runtime reference count in
// between, a closed number can be handed to the next accepted socket at
// once.
func (p *Poller) AddFd(fd int, v any) (*Desc, error) {
	if fd < 0 {
		return nil, os.NewSyscallError("epoll_ctl", unix.EBADF)
	}
	return p.register(uintptr(fd), v)
}

// register adds descriptor s to epoll and to the table. It runs inside
// RawConn.Control, which keeps the descriptor open meanwhile, or on a
// descriptor its caller owns.
func (p *Poller) register(s uintptr, v any) (*Desc, error) {
	if s > math.MaxInt32 {
		return nil, os.NewSyscallError("epoll_ctl", unix.EBADF)
	}
	fd := int(s)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if fd < len(p.table) && p.table[fd] != nil {
		return nil, ErrRegistered
	}
	p.gen++
	if p.gen == 0 {
		p.gen = 1
	}
	d := &Desc{p: p, value: v, fd: int32(fd), gen: p.gen}
	if err := epollCtl(p.epfd, unix.EPOLL_CTL_ADD, d.fd, readInterest, d.gen); err != nil {
		return nil, err
	}
	if fd >= len(p.table) {
		p.table = append(p.table, make([]*Desc, max(fd+1-len(p.table), len(p.table)))...)
	}
	p.table[fd] = d
	p.n++
	return d, nil
}

// Len returns the number of registered descriptors.
func (p *Poller) Len() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.n
}

// Close stops the poller: it wakes the loop through the eventfd, stops the
// workers, waits for every goroutine the Poller started (a handler that is
// running is waited for; queued events are dropped), and closes the epoll
// instance. Registered connections are not closed: they belong to the
// caller. Close is idempotent and returns the same error each time. It must
// not be called from a Handler.
func (p *Poller) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.table, p.n = nil, 0
		p.mu.Unlock()
		close(p.done)
		wakeErr := p.wake()
		<-p.loopDone
		close(p.queue) // the loop was the only sender
		p.workers.Wait()
		p.closeErr = errors.Join(p.loopErr, wakeErr,
			os.NewSyscallError("close", unix.Close(p.wakefd)),
			os.NewSyscallError("close", unix.Close(p.epfd)))
	})
	return p.closeErr
}

// wake makes epoll_wait return by writing to the eventfd.
func (p *Poller) wake() error {
	var one = [8]byte{1} // native-endian 1 on little-endian; any non-zero value wakes
	for {
		_, err := unix.Write(p.wakefd, one[:])
		switch err {
		case unix.EINTR:
			continue
		case nil, unix.EAGAIN: // EAGAIN: the counter is saturated, a wake-up is pending
			return nil
		default:
			return os.NewSyscallError("write", err)
		}
	}
}

// loop waits for events and hands each claimed Desc to the workers.
func (p *Poller) loop() {
	defer close(p.loopDone)
	events := make([]unix.EpollEvent, waitBatch)
	descs := make([]*Desc, waitBatch)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			p.loopErr = os.NewSyscallError("epoll_wait", err)
			return
		}
		p.mu.RLock()
		for i := range n {
			fd, gen := int(events[i].Fd), uint32(events[i].Pad)
			descs[i] = nil
			if gen != 0 && fd < len(p.table) {
				if d := p.table[fd]; d != nil && d.gen == gen {
					descs[i] = d // otherwise a stale event for a reused number
				}
			}
		}
		p.mu.RUnlock()
		for i, d := range descs[:n] {
			if d == nil {
				continue
			}
			descs[i] = nil
			ev, ok := d.claim(events[i].Events)
			if !ok {
				continue
			}
			select {
			case p.queue <- job{d, ev}:
			case <-p.done:
				return
			}
		}
		select {
		case <-p.done:
			return
		default:
		}
	}
}

// claim marks d busy for an event the kernel reported with mask, and returns
// the Event to deliver. It returns false if d is removed or already busy: the
// event was then reported by an arming that raced with the running handler,
// and the worker's re-arm will report the still-present condition again.
func (d *Desc) claim(mask uint32) (Event, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.flags&(flagBusy|flagRemoved) != 0 {
		return 0, false
	}
	d.flags |= flagBusy
	var ev Event
	if mask&unix.EPOLLIN != 0 {
		ev |= EventRead
	}
	if mask&unix.EPOLLOUT != 0 && d.flags&flagWantWrite != 0 {
		ev |= EventWrite
		d.flags &^= flagWantWrite
	}
	if mask&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		ev |= EventHup
	}
	if mask&unix.EPOLLERR != 0 {
		ev |= EventErr
	}
	return ev, true
}

// work runs handlers until Close.
func (p *Poller) work() {
	defer p.workers.Done()
	for j := range p.queue {
		select {
		case <-p.done:
			continue // closing: drop queued events
		default:
		}
		if j.ev != 0 && j.d.live() {
			p.handler(j.d, j.ev)
		}
		j.d.rearm()
	}
}

// live reports whether d has not been removed. A handler call begins when
// live returns true: Remove after that point lets the call finish.
func (d *Desc) live() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.flags&flagRemoved == 0
}

// rearm clears busy and re-arms d with its current interest, unless removed.
// Holding d.mu across epoll_ctl orders it with WantWrite and Remove.
func (d *Desc) rearm() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.flags&flagRemoved != 0 {
		return
	}
	d.flags &^= flagBusy
	interest := uint32(readInterest)
	if d.flags&flagWantWrite != 0 {
		interest = writeInterest
	}
	// An error here means the caller closed the descriptor without Remove,
	// or the Poller is closed; either way nothing is left to re-arm.
	_ = d.p.ctl(unix.EPOLL_CTL_MOD, d, interest)
}

// Value returns the value given to Add.
func (d *Desc) Value() any { return d.value }

// Fd returns the descriptor number. It stays valid until the caller closes
// the connection.
func (d *Desc) Fd() int { return int(d.fd) }

// WantWrite asks for one EventWrite when the socket becomes writable; call it
// after a non-blocking write returned EAGAIN. Calls before the event is
// delivered are merged into one. It is safe from any goroutine, including
// d's own handler: there the request is recorded and applied when the
// handler returns, so the handler is not run twice at once. It returns
// ErrClosed after Remove or Close.
func (d *Desc) WantWrite() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.flags&flagRemoved != 0 {
		return ErrClosed
	}
	if d.flags&flagWantWrite != 0 {
		return nil
	}
	d.flags |= flagWantWrite
	if d.flags&flagBusy != 0 {
		return nil // the re-arm after the handler adds EPOLLOUT
	}
	return d.p.ctl(unix.EPOLL_CTL_MOD, d, writeInterest)
}

// Remove deletes d from epoll while its descriptor is still open; the caller
// closes the connection after Remove returns, so a reused descriptor number
// can never receive this connection's events. After Remove returns, the
// handler is not called again for d (a call already running on another
// worker may finish). Remove is idempotent and safe from any goroutine,
// including d's own handler. After Close it only marks d removed.
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
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if int(d.fd) < len(p.table) && p.table[d.fd] == d {
		p.table[d.fd] = nil
		p.n--
	}
	return epollCtl(p.epfd, unix.EPOLL_CTL_DEL, d.fd, 0, d.gen)
}
