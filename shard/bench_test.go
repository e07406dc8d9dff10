package shard

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
)

// fill returns a registry with nchan channels "c<k>" of size members each;
// every member is its own connection (user "u<i>").
func fill(tb testing.TB, nchan, size int) (*Registry[int], [][]*Conn[int]) {
	tb.Helper()
	r := New[int]()
	members := make([][]*Conn[int], nchan)
	for k := range members {
		name := "c" + strconv.Itoa(k)
		for i := range size {
			c, _ := r.Add("u"+strconv.Itoa(k*size+i), "", i)
			if _, err := r.Subscribe(c, name); err != nil {
				tb.Fatal(err)
			}
			members[k] = append(members[k], c)
		}
	}
	return r, members
}

func BenchmarkMembers(b *testing.B) {
	r, _ := fill(b, 1, 1000)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n += r.Members("c0").Len()
	}
	if n == 0 {
		b.Fatal("no members")
	}
}

// BenchmarkJoin joins fresh connections. members=1000000: all into one
// channel that starts with a million members (and grows by b.N).
// members=10: round-robin into b.N/10 channels that start with 10 members
// each (and end with about 20).
func BenchmarkJoin(b *testing.B) {
	for _, size := range []int{10, 1_000_000} {
		b.Run("members="+strconv.Itoa(size), func(b *testing.B) {
			nchan := 1
			if size == 10 {
				nchan = b.N/10 + 1
			}
			r, _ := fill(b, nchan, size)
			names := make([]string, nchan)
			for k := range names {
				names[k] = "c" + strconv.Itoa(k)
			}
			fresh := make([]*Conn[int], b.N)
			for i := range fresh {
				fresh[i], _ = r.Add("v"+strconv.Itoa(i), "", i)
			}
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				r.Subscribe(fresh[i], names[i%nchan])
			}
		})
	}
}

// BenchmarkLeave removes random members. members=1000000: from one channel
// that starts with a million plus b.N members and ends with a million.
// members=10: from b.N/10 channels that start with 20 members and end with
// 10.
func BenchmarkLeave(b *testing.B) {
	for _, size := range []int{10, 1_000_000} {
		b.Run("members="+strconv.Itoa(size), func(b *testing.B) {
			nchan, start := 1, size+b.N
			if size == 10 {
				nchan, start = b.N/10+1, 20
			}
			r, members := fill(b, nchan, start)
			type leave struct {
				c    *Conn[int]
				name string
			}
			var todo []leave
			rng := rand.New(rand.NewPCG(1, 1))
			for k, ms := range members {
				rng.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
				for _, c := range ms[:start-size] {
					todo = append(todo, leave{c, "c" + strconv.Itoa(k)})
				}
			}
			rng.Shuffle(len(todo), func(i, j int) { todo[i], todo[j] = todo[j], todo[i] })
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				r.Unsubscribe(todo[i].c, todo[i].name)
			}
		})
	}
}

// BenchmarkParallelMixed runs joins, leaves and snapshot reads from every
// worker: 40% join, 40% leave, 20% Members. Each worker has its own 64
// connections and 1024 channels, so the work per operation does not depend
// on the number of workers, while all of them share the 256 shards (and
// their locks) and the allocator. Compare -cpu 1 with -cpu 2: with no global
// lock, ns/op should fall by close to half.
func BenchmarkParallelMixed(b *testing.B) {
	r := New[int]()
	var worker atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := worker.Add(1)
		rng := rand.New(rand.NewPCG(w, 7))
		prefix := "w" + strconv.FormatUint(w, 10) + "-"
		conns := make([]*Conn[int], 64)
		for i := range conns {
			conns[i], _ = r.Add(prefix+strconv.Itoa(i), "", i)
		}
		names := make([]string, 1024)
		for i := range names {
			names[i] = prefix + "room" + strconv.Itoa(i)
		}
		for pb.Next() {
			x := rng.Uint64()
			c := conns[x&63]
			name := names[(x>>6)&1023]
			switch (x >> 16) % 5 {
			case 0, 1:
				r.Subscribe(c, name)
			case 2, 3:
				r.Unsubscribe(c, name)
			default:
				if r.Members(name).Len() < 0 {
					panic("negative length")
				}
			}
		}
	})
}
