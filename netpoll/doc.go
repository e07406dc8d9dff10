// Package netpoll is roost's readiness poller: it tells a bounded pool of
// worker goroutines when a registered connection can be read or written, so
// that an idle connection costs neither a goroutine nor a buffer.
//
// On Linux a Poller owns one epoll instance (created with EPOLL_CLOEXEC) and one
// goroutine that waits in epoll_wait and hands events to Config.Workers worker
// goroutines through a queue of Config.QueueSize events. Add registers the
// connection's own descriptor, taken with syscall.RawConn.Control: no dup and
// no os.File, so one connection costs one file, not two. The Go runtime keeps
// the same descriptor in its own epoll set (the net.Conn stays non-blocking);
// the two registrations are independent.
//
// Every descriptor is registered with EPOLLONESHOT: once the kernel reports an
// event the descriptor is disarmed until its handler has returned, and the
// worker then re-arms it with the current interest (read, plus write while a
// WantWrite is pending). Hence the handler of one Desc never runs on two
// workers at once, while different descriptors are handled in parallel.
// Readiness is level-triggered: data a handler leaves unread is reported again
// after the re-arm.
//
// Each event carries the descriptor number and a generation, checked against
// an fd-indexed table, and Remove deletes the descriptor from epoll before the
// caller closes it; an event that was already fetched for a removed
// descriptor is dropped, so a reused descriptor number never receives another
// connection's events.
//
// On other systems the same API is served by one goroutine per Desc that waits
// for readability through syscall.RawConn.Read (and one per pending WantWrite
// waiting in poll(2), 50 ms at a time, inside RawConn.Control). It exists so that code built on netpoll compiles and
// its tests run on a developer's laptop; it is not meant to hold many
// connections.
//
// The package knows nothing of WebSocket; package hub builds on it.
package netpoll
