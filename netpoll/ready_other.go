//go:build !unix

package netpoll

import "time"

// pollReady reports no condition on systems without poll(2): the fallback
// then always waits for the runtime poller, which reports readiness edges, so
// a handler there must read until the socket would block.
func pollReady(fd uintptr, write bool) Event { return 0 }

// waitWritable sleeps d and reports the descriptor writable: without poll(2)
// the fallback cannot ask, and its owner's write finds out (and asks again
// when the socket is still full).
func waitWritable(fd uintptr, d time.Duration) bool {
	time.Sleep(d)
	return true
}
