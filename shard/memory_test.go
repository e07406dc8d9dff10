package shard

import (
	"runtime"
	"strconv"
	"testing"
)

// subsPerConn and memChannels shape the memory measurement: every
// connection has its own user and joins subsPerConn of memChannels channels.
const (
	subsPerConn = 4
	memChannels = 10_000
)

func heapBytes() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// measureMemory registers n connections, then subscribes each to
// subsPerConn channels, and returns the heap growth per connection and per
// subscription. The caller's strings (user ids, addresses, channel names) are
// made before the baseline: they belong to the caller, as does Value.
func measureMemory(n int) (perConn, perSub float64) {
	users := make([]string, n)
	for i := range users {
		users[i] = "user-" + strconv.Itoa(i)
	}
	names := make([]string, memChannels)
	for i := range names {
		names[i] = "channel-" + strconv.Itoa(i)
	}
	const addr = "203.0.113.7:51234"
	conns := make([]*Conn[int], n)

	base := heapBytes()
	r := New[int]()
	for i := range conns {
		conns[i], _ = r.Add(users[i], addr, i)
	}
	added := heapBytes()
	for i, c := range conns {
		for k := range subsPerConn {
			if _, err := r.Subscribe(c, names[(i*subsPerConn+k)%memChannels]); err != nil {
				panic(err)
			}
		}
	}
	subscribed := heapBytes()
	runtime.KeepAlive(r)
	runtime.KeepAlive(users)
	runtime.KeepAlive(names)
	return float64(added-base) / float64(n), float64(subscribed-added) / float64(n*subsPerConn)
}

// TestMemoryPerEntry checks the memory targets (at most 300 bytes per
// connection, 150 per subscription) at a size that runs quickly;
// BenchmarkMemory reports the figures at a million connections.
func TestMemoryPerEntry(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("the race detector changes allocation sizes; -short skips the 200k fill")
	}
	perConn, perSub := measureMemory(200_000)
	t.Logf("%.0f B/conn, %.0f B/subscription", perConn, perSub)
	if perConn > 300 || perSub > 150 {
		t.Fatalf("%.0f B/conn (max 300), %.0f B/subscription (max 150)", perConn, perSub)
	}
}

// BenchmarkMemory reports bytes per connection and per subscription at
// 1,000,000 connections (4,000,000 subscriptions). Run with -benchtime=1x.
func BenchmarkMemory(b *testing.B) {
	var perConn, perSub float64
	for b.Loop() {
		perConn, perSub = measureMemory(1_000_000)
	}
	b.ReportMetric(perConn, "B/conn")
	b.ReportMetric(perSub, "B/sub")
}
