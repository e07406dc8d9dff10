//go:build !linux

package bench

// newPollReader falls back to a goroutine per connection where epoll is
// not available.
func newPollReader(n, _ int, sink frameSink) (connReader, error) {
	return newGoroutineReader(n, sink), nil
}
