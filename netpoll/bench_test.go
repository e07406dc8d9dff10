package netpoll_test

import (
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/roost-rt/roost/netpoll"
)

const pingSize = 64

// echoNetpoll serves conns with a Poller whose handler echoes what it reads.
func echoNetpoll(tb testing.TB, srvs []*net.TCPConn) {
	tb.Helper()
	type echoConn struct {
		c   net.Conn
		buf [pingSize]byte // one handler call at a time per Desc: no lock
	}
	p := newPoller(tb, netpoll.Config{Handler: func(d *netpoll.Desc, ev netpoll.Event) {
		e := d.Value().(*echoConn)
		n, _ := e.c.Read(e.buf[:])
		if n > 0 {
			e.c.Write(e.buf[:n])
		}
	}})
	for _, s := range srvs {
		d, err := p.Add(s, &echoConn{c: s})
		if err != nil {
			tb.Fatalf("Add: %v", err)
		}
		tb.Cleanup(func() { d.Remove() })
	}
}

// echoGoroutines serves conns with one goroutine each, as net/http does: the
// baseline netpoll replaces.
func echoGoroutines(tb testing.TB, srvs []*net.TCPConn) {
	var wg sync.WaitGroup
	for _, s := range srvs {
		wg.Go(func() { io.Copy(s, s) })
	}
	tb.Cleanup(func() {
		for _, s := range srvs {
			s.Close()
		}
		wg.Wait()
	})
}

// BenchmarkPingPong measures one round trip of a 64-byte message through the
// server, with conns clients taking turns so that conns round trips are in
// flight: conns=1 is dispatch latency, larger counts throughput.
func BenchmarkPingPong(b *testing.B) {
	servers := []struct {
		name  string
		serve func(testing.TB, []*net.TCPConn)
	}{
		{"netpoll", echoNetpoll},
		{"goroutine", echoGoroutines},
	}
	for _, srv := range servers {
		for _, conns := range []int{1, 16, 256} {
			b.Run(srv.name+"/conns="+strconv.Itoa(conns), func(b *testing.B) {
				ln := listen(b)
				var srvs []*net.TCPConn
				var clis []*net.TCPConn
				for range conns {
					s, c := pair(b, ln)
					srvs = append(srvs, s)
					clis = append(clis, c)
				}
				srv.serve(b, srvs)
				var left atomic.Int64
				left.Store(int64(b.N))
				b.ReportAllocs()
				b.ResetTimer()
				var wg sync.WaitGroup
				for _, c := range clis {
					wg.Go(func() {
						var msg, reply [pingSize]byte
						for left.Add(-1) >= 0 {
							if _, err := c.Write(msg[:]); err != nil {
								b.Errorf("write: %v", err)
								return
							}
							if _, err := io.ReadFull(c, reply[:]); err != nil {
								b.Errorf("read: %v", err)
								return
							}
						}
					})
				}
				wg.Wait()
			})
		}
	}
}

// BenchmarkAddRemove measures registering and deregistering one connection.
func BenchmarkAddRemove(b *testing.B) {
	ln := listen(b)
	s, _ := pair(b, ln)
	p := newPoller(b, netpoll.Config{Handler: func(*netpoll.Desc, netpoll.Event) {}})
	b.ReportAllocs()
	for b.Loop() {
		d, err := p.Add(s, nil)
		if err != nil {
			b.Fatalf("Add: %v", err)
		}
		if err := d.Remove(); err != nil {
			b.Fatalf("Remove: %v", err)
		}
	}
}

// BenchmarkIdleDesc registers 2,000 idle connections per iteration and
// reports the Go heap and goroutines each one adds (B/desc, goroutines/desc).
func BenchmarkIdleDesc(b *testing.B) {
	const conns = 2000
	ln := listen(b)
	srvs := make([]*net.TCPConn, 0, conns)
	for range conns {
		s, _ := pair(b, ln)
		srvs = append(srvs, s)
	}
	p := newPoller(b, netpoll.Config{Handler: func(*netpoll.Desc, netpoll.Event) {}})
	descs := make([]*netpoll.Desc, conns)
	var bytes, goroutines float64
	var ms runtime.MemStats
	b.ReportAllocs()
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		heap, g := ms.HeapAlloc, runtime.NumGoroutine()
		for i, s := range srvs {
			d, err := p.Add(s, nil)
			if err != nil {
				b.Fatalf("Add: %v", err)
			}
			descs[i] = d
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		bytes += float64(ms.HeapAlloc-heap) / conns
		goroutines += float64(runtime.NumGoroutine()-g) / conns
		for _, d := range descs {
			if err := d.Remove(); err != nil {
				b.Fatalf("Remove: %v", err)
			}
		}
		clear(descs) // so the next iteration's baseline holds no Desc
	}
	b.ReportMetric(bytes/float64(b.N), "B/desc")
	b.ReportMetric(goroutines/float64(b.N), "goroutines/desc")
}
