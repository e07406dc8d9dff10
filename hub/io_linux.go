package hub

import (
	"syscall"
	"unsafe"
)

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
