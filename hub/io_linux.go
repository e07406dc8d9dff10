package hub

import (
	"net"
	"syscall"
	"unsafe"
)

// ownSocket takes the socket behind nc away from the Go runtime: the
// descriptor is duplicated and nc closed, so the socket keeps exactly one
// descriptor, now roost's, and the runtime frees what it kept for nc (its
// poll descriptor outside the heap, the netFD, the address pair and the
// cleanup), about 0.6 KiB of a connection that only epoll drives. It
// returns -1, leaving nc as it was, when no duplicate can be made (the
// process is at its descriptor limit): that connection stays with the
// runtime and costs more, nothing else changes.
//
// Closing nc first removes the runtime's epoll registration of the old
// number (the runtime deletes it before closing), so the runtime never
// sees the socket's events again.
func ownSocket(nc net.Conn, rc syscall.RawConn) int {
	fd := -1
	err := rc.Control(func(s uintptr) {
		n, _, errno := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if errno == 0 {
			fd = int(n)
		}
	})
	if err != nil || fd < 0 {
		return -1
	}
	_ = nc.Close()
	return fd
}

// writeBufs writes s.bufs with one writev(2).
func (s *ioScratch) writeBufs(fd int) (int, error) {
	if len(s.bufs) == 1 {
		return syscall.Write(fd, s.bufs[0])
	}
	s.iov = s.iov[:0]
	for _, b := range s.bufs {
		if len(b) == 0 {
			continue
		}
		v := syscall.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		s.iov = append(s.iov, v)
	}
	if len(s.iov) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.Syscall(syscall.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&s.iov[0])), uintptr(len(s.iov)))
	clear(s.iov)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
