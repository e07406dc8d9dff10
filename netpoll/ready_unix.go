//go:build unix && (!linux || netpoll_fallback)

package netpoll

import (
	"time"

	"golang.org/x/sys/unix"
)

// pollReady reports, without waiting, the conditions present on fd: read (or
// write) readiness, hang-up and error. The fallback uses it to keep epoll's
// level-triggered behaviour: data a handler left unread is reported again
// without waiting for the runtime poller's next edge.
func pollReady(fd uintptr, write bool) Event {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if write {
		pfd[0].Events = unix.POLLOUT
	}
	for {
		n, err := unix.Poll(pfd, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return 0
		}
		break
	}
	var ev Event
	re := pfd[0].Revents
	if re&unix.POLLIN != 0 {
		ev |= EventRead
	}
	if re&unix.POLLOUT != 0 {
		ev |= EventWrite
	}
	if re&unix.POLLHUP != 0 {
		ev |= EventHup
	}
	if re&unix.POLLERR != 0 {
		ev |= EventErr
	}
	return ev
}

// waitWritable waits up to d in poll(2) for fd to accept writes, or to
// report an error or hang-up (a write then fails at once, which its owner
// must learn), and reports whether it did.
func waitWritable(fd uintptr, d time.Duration) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	for {
		n, err := unix.Poll(pfd, int(d.Milliseconds()))
		if err == unix.EINTR {
			continue
		}
		return err != nil || n > 0
	}
}
