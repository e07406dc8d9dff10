//go:build !linux

package hub

import "syscall"

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
