package bench

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// dupSocket returns a close-on-exec duplicate of nc's socket and closes nc,
// so that only the duplicate, unknown to Go's netpoller, remains. The
// duplicate shares the socket's file status flags, so it is non-blocking.
func dupSocket(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errors.New("roost: bench: connection has no file descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, os.NewSyscallError("fcntl", dupErr)
	}
	nc.Close()
	return fd, nil
}

// writeAllFD writes b to a non-blocking descriptor, waiting up to wait in
// poll(2) for room whenever the socket's send buffer is full. The clock is
// read only once the buffer is full.
func writeAllFD(fd int, b []byte, wait time.Duration) error {
	var deadline time.Time
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if n > 0 {
			b = b[n:]
		}
		switch {
		case err == nil || err == unix.EINTR:
		case err == unix.EAGAIN:
			if deadline.IsZero() {
				deadline = time.Now().Add(wait)
			}
			left := time.Until(deadline)
			if left <= 0 {
				return os.NewSyscallError("write", unix.EAGAIN)
			}
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			unix.Poll(fds, int(left/time.Millisecond)+1)
		default:
			return os.NewSyscallError("write", err)
		}
	}
	return nil
}
