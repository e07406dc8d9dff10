//go:build !unix

package netpoll

// pollReady reports no condition on systems without poll(2): the fallback
// then always waits for the runtime poller, which reports readiness edges, so
// a handler there must read until the socket would block.
func pollReady(fd uintptr, write bool) Event { return 0 }
