//go:build !linux

package hub

import (
	"net"
	"syscall"
)

// ownSocket keeps sockets with the Go runtime: systems other than Linux have
// no epoll poller to hand a raw descriptor to.
func ownSocket(nc net.Conn, rc syscall.RawConn) int { return -1 }

// writeBufs writes s.bufs one write(2) at a time, stopping at the first
// short write; systems other than Linux are for development, not density.
func (s *ioScratch) writeBufs(fd int) (int, error) {
	total := 0
	for _, b := range s.bufs {
		n, err := syscall.Write(fd, b)
		if n > 0 {
			total += n
		}
		if err != nil {
			if total > 0 {
				return total, nil
			}
			return total, err
		}
		if n < len(b) {
			break
		}
	}
	return total, nil
}
