package hub_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/gobwas/ws"
	"github.com/stretchr/testify/require"

	"github.com/roost-rt/roost/hub"
)

// fanoutMembers is how many members the fan-out benchmarks write to. Each
// member costs this process two descriptors, and the floor below as many
// again: 4,500 keeps the whole benchmark under the 20,000-file limit.
const fanoutMembers = 4500

// cpuNanos returns the CPU time (user and system) this process used.
func cpuNanos() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// drain reads and discards everything c receives, as a client would.
func drain(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

// BenchmarkFanout publishes a 100-byte message to a channel of
// fanoutMembers connections (roost), and writes the same frame to as many
// plain accepted sockets with one write(2) each (floor): the cost a
// fan-out cannot go below on this kernel. Clients on the same machine read
// everything in both cases. Compare ns/delivery of the two.
func BenchmarkFanout(b *testing.B) {
	data := []byte(fmt.Sprintf(`{"ts":0,"pad":"%s"}`, strings.Repeat("x", 100-16)))
	frame := append([]byte{0x81, byte(len(`{"channel":"bench","data":`) + len(data) + 1)}, `{"channel":"bench","data":`...)
	frame = append(append(frame, data...), '}')

	b.Run("roost", func(b *testing.B) {
		h, url := startHub(b, hub.Config{})
		sub := ws.MaskFrameInPlace(ws.NewFrame(ws.OpText, true, []byte(`{"op":"subscribe","channel":"bench"}`)))
		for i := 0; i < fanoutMembers; i++ {
			c, _, _, err := ws.Dial(context.Background(), url)
			require.NoError(b, err)
			b.Cleanup(func() { _ = c.Close() })
			require.NoError(b, ws.WriteFrame(c, sub))
			go drain(c)
		}
		eventually(b, 30e9, func() bool { return h.Stats().Subscriptions == fanoutMembers }, "members joined")
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuNanos()
		for b.Loop() {
			if err := h.Publish(context.Background(), "bench", data); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*fanoutMembers), "ns/delivery")
		b.ReportMetric(float64(cpuNanos()-cpu0)/float64(b.N*fanoutMembers), "cpu-ns/delivery")
		st := h.Stats()
		b.ReportMetric(float64(st.Deliveries)/float64(st.WriteCalls), "deliveries/write")
	})

	b.Run("floor", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(b, err)
		defer ln.Close()
		fds := make([]int, 0, fanoutMembers)
		for i := 0; i < fanoutMembers; i++ {
			c, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(b, err)
			b.Cleanup(func() { _ = c.Close() })
			go drain(c)
			s, err := ln.Accept()
			require.NoError(b, err)
			// Owned outright, as roost owns its sockets: the descriptor
			// duplicated and the net.Conn closed, so the runtime's poller
			// no longer hears of the socket (its EPOLLOUT edge on every
			// ACK is a cost of runtime sockets, not of the write).
			raw, err := s.(*net.TCPConn).SyscallConn()
			require.NoError(b, err)
			var fd int
			var dupErr error
			require.NoError(b, raw.Control(func(s uintptr) { fd, dupErr = syscall.Dup(int(s)) }))
			require.NoError(b, dupErr)
			_ = s.Close()
			b.Cleanup(func() { _ = syscall.Close(fd) })
			fds = append(fds, fd)
		}
		b.ResetTimer()
		cpu0 := cpuNanos()
		for b.Loop() {
			for _, fd := range fds {
				if _, err := syscall.Write(fd, frame); err != nil && err != syscall.EAGAIN {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*fanoutMembers), "ns/delivery")
		b.ReportMetric(float64(cpuNanos()-cpu0)/float64(b.N*fanoutMembers), "cpu-ns/delivery")
	})
}

// BenchmarkBurst publishes bursts of 64 1-KiB messages to 100 members
// through sockets whose kernel buffers are capped at 4 KiB (send) and 4 KiB
// (receive): a burst outruns the kernel, frames queue, and each writable
// event flushes several queued frames with one writev(2).
// deliveries/write above 1 is that batching.
func BenchmarkBurst(b *testing.B) {
	// The publisher only appends to queues, far faster than readers on the
	// same cores drain them: each burst is let drain before the next, and
	// the queues are sized for one burst.
	h, url := startHub(b, hub.Config{SendBufferBytes: 4 << 10, OutboundQueueBytes: 1 << 20, OutboundQueueFrames: 1024})
	sub := ws.MaskFrameInPlace(ws.NewFrame(ws.OpText, true, []byte(`{"op":"subscribe","channel":"burst"}`)))
	const members = 100
	for i := 0; i < members; i++ {
		c, _, _, err := ws.Dial(context.Background(), url)
		require.NoError(b, err)
		b.Cleanup(func() { _ = c.Close() })
		require.NoError(b, c.(*net.TCPConn).SetReadBuffer(4<<10))
		require.NoError(b, ws.WriteFrame(c, sub))
		go drain(c)
	}
	eventually(b, 30e9, func() bool { return h.Stats().Subscriptions == members }, "members joined")
	data := []byte(`"` + strings.Repeat("y", 1022) + `"`)
	// A push frame: 4-byte header (16-bit length), envelope, data.
	frameLen := uint64(4 + len(`{"channel":"burst","data":`) + len(data) + 1)
	st0 := h.Stats()
	b.ResetTimer()
	for i := uint64(1); b.Loop(); i++ {
		for range 64 {
			if err := h.Publish(context.Background(), "burst", data); err != nil {
				b.Fatal(err)
			}
		}
		// Let each burst drain before the next, so that however many
		// bursts the benchmark runs, queues hold one burst at most.
		want := st0.BytesOut + i*64*members*frameLen
		eventually(b, 30e9, func() bool { return h.Stats().BytesOut >= want }, "burst drained")
	}
	b.StopTimer()
	st := h.Stats()
	b.ReportMetric(float64(st.Deliveries-st0.Deliveries)/float64(st.WriteCalls-st0.WriteCalls), "deliveries/write")
	if ev := st.Evictions - st0.Evictions; ev != 0 {
		b.Fatalf("%d members evicted: the burst must fit in the queues", ev)
	}
}
