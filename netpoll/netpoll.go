package netpoll

import (
	"errors"
	"reflect"
	"runtime"
	"strings"
	"syscall"
)

// Event is a set of readiness conditions reported to a Handler.
type Event uint8

// The readiness conditions. One call of a Handler may carry several.
const (
	// EventRead: the descriptor has data to read (or a pending EOF).
	EventRead Event = 1 << iota
	// EventWrite: the descriptor accepts writes again; it is reported once per
	// call of Desc.WantWrite and never without one.
	EventWrite
	// EventHup: the peer closed its side or hung up (EPOLLRDHUP, EPOLLHUP).
	// Data may still be readable; a handler usually reads it to EOF and then
	// calls Desc.Remove, because the condition stays set and is reported
	// after every re-arm.
	EventHup
	// EventErr: an error is pending on the socket (EPOLLERR); like EventHup it
	// stays set until the descriptor is removed.
	EventErr
)

// String returns the set as names joined by "|", such as "read|hup".
func (e Event) String() string {
	if e == 0 {
		return "none"
	}
	var names []string
	for _, n := range [...]struct {
		ev   Event
		name string
	}{{EventRead, "read"}, {EventWrite, "write"}, {EventHup, "hup"}, {EventErr, "err"}} {
		if e&n.ev != 0 {
			names = append(names, n.name)
		}
	}
	if rest := e &^ (EventRead | EventWrite | EventHup | EventErr); rest != 0 {
		names = append(names, "unknown")
	}
	return strings.Join(names, "|")
}

// Handler is called on a worker goroutine with a Desc that became ready and the
// conditions that were reported. It is never called concurrently for the same
// Desc, so per-connection state reached through Desc.Value needs no lock
// against other handler calls. It must not block for long: it holds one of a
// bounded number of workers. It must not call Poller.Close, which waits for
// the workers.
type Handler func(d *Desc, ev Event)

// Config configures a Poller. Only Handler is required; the zero value of
// every other field selects its default.
type Config struct {
	// Handler receives the events. Required.
	Handler Handler

	// Workers is the number of worker goroutines that run Handler. Zero or
	// negative means runtime.GOMAXPROCS(0). Unused by the non-Linux fallback,
	// which runs the handler on each Desc's own goroutine.
	Workers int

	// QueueSize is the number of events buffered between the epoll loop and
	// the workers; when it is full the loop waits, and the kernel keeps the
	// readiness meanwhile. Zero or negative means DefaultQueueSize. Unused by
	// the non-Linux fallback.
	QueueSize int
}

// DefaultQueueSize is the event queue length used when Config.QueueSize is
// zero: 1024 events of 16 bytes, enough for several epoll_wait batches per
// worker on a small machine.
const DefaultQueueSize = 1024

// Errors returned by the package. Syscall failures are returned as
// *os.SyscallError.
var (
	// ErrClosed is returned by operations on a closed Poller, and by
	// Desc.WantWrite after Desc.Remove.
	ErrClosed = errors.New("roost: poller closed")
	// ErrNoHandler is returned by New when Config.Handler is nil.
	ErrNoHandler = errors.New("roost: netpoll config has no Handler")
	// ErrRegistered is returned by Add when the descriptor is already
	// registered with this Poller.
	ErrRegistered = errors.New("roost: descriptor already registered")
	// ErrUnsupported is returned by AddFd where RawDescriptors is false.
	ErrUnsupported = errors.New("roost: raw descriptors need the epoll poller")
)

// withDefaults returns cfg with defaults applied, or ErrNoHandler.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Handler == nil {
		return cfg, ErrNoHandler
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	return cfg, nil
}

var errNilConn = errors.New("roost: netpoll Add of a nil conn")

// rawConn returns c's RawConn, or an error for a nil c (including a nil
// pointer in a non-nil interface, whose SyscallConn might panic).
func rawConn(c syscall.Conn) (syscall.RawConn, error) {
	if c == nil {
		return nil, errNilConn
	}
	if v := reflect.ValueOf(c); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, errNilConn
	}
	return c.SyscallConn()
}
