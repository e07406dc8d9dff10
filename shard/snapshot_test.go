package shard

import (
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
)

// frozen is a snapshot together with the member ids it had when taken.
type frozen struct {
	s   *Snapshot[int]
	ids []uint64
}

func freeze(s *Snapshot[int]) frozen {
	f := frozen{s: s}
	s.All(func(c *Conn[int]) bool { f.ids = append(f.ids, c.ID()); return true })
	return f
}

func (f frozen) unchanged() bool {
	var now []uint64
	f.s.All(func(c *Conn[int]) bool { now = append(now, c.ID()); return true })
	return slices.Equal(now, f.ids)
}

// TestSnapshotsImmutable drives one channel through small, head-to-tree and
// multi-mid sizes with random joins and leaves, comparing it with a model and
// checking that no snapshot ever taken changes afterwards: the property the
// high-water marks exist for.
func TestSnapshotsImmutable(t *testing.T) {
	sizes := []int{40, 600, 20000}
	for _, peak := range sizes {
		t.Run(strconv.Itoa(peak), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(peak), 1))
			r := New[int]()
			conns := make([]*Conn[int], peak)
			for i := range conns {
				conns[i], _ = r.Add("u"+strconv.Itoa(i%50), "", i)
			}
			in := map[uint64]bool{}
			var out []*Conn[int] // not members
			out = append(out, conns...)
			var members []*Conn[int]
			var kept []frozen
			ops := 6 * peak
			checkEvery := max(1, ops/100)
			for op := 0; op < ops; op++ {
				// Grow towards peak in the first half, shrink to zero in the
				// second, with a mix of both throughout.
				pJoin := 0.7
				if op > ops/2 {
					pJoin = 0.3
				}
				if len(out) > 0 && (len(members) == 0 || rng.Float64() < pJoin) {
					i := rng.IntN(len(out))
					c := out[i]
					out[i] = out[len(out)-1]
					out = out[:len(out)-1]
					if res, err := r.Subscribe(c, "ch"); err != nil || !res.Added {
						t.Fatalf("op %d: Subscribe = %+v, %v", op, res, err)
					}
					members = append(members, c)
					in[c.ID()] = true
				} else {
					i := rng.IntN(len(members))
					c := members[i]
					members[i] = members[len(members)-1]
					members = members[:len(members)-1]
					if res := r.Unsubscribe(c, "ch"); !res.Removed {
						t.Fatalf("op %d: Unsubscribe = %+v", op, res)
					}
					out = append(out, c)
					delete(in, c.ID())
				}
				s := r.Members("ch")
				if s.Len() != len(members) {
					t.Fatalf("op %d: Len %d, want %d", op, s.Len(), len(members))
				}
				if op%checkEvery == 0 {
					got := ids(t, s)
					for id := range in {
						if !got[id] {
							t.Fatalf("op %d: member %d missing", op, id)
						}
					}
					kept = append(kept, freeze(s))
					for k, f := range kept {
						if !f.unchanged() {
							t.Fatalf("op %d: snapshot %d changed after publication", op, k)
						}
					}
					if len(kept) > 8 {
						kept = slices.Delete(kept, 0, 1)
					}
				}
			}
			for len(members) > 0 {
				c := members[len(members)-1]
				members = members[:len(members)-1]
				r.Unsubscribe(c, "ch")
			}
			if r.Members("ch").Len() != 0 || r.Counts().Channels != 0 {
				t.Fatalf("channel not reclaimed: %+v", r.Counts())
			}
			for k, f := range kept {
				if !f.unchanged() {
					t.Fatalf("snapshot %d changed", k)
				}
			}
		})
	}
}

// TestMillionMembers fills one channel with a million members one join at a
// time and empties it one leave at a time in random order. It checks the
// complexity, not the speed: the number of member pointers copied must stay
// within the documented bounds (a few per join, about 400 per leave), where
// a flat copy-on-write list would copy n per operation (5e11 in total).
func TestMillionMembers(t *testing.T) {
	n := 1_000_000
	if raceEnabled {
		n = 100_000
	}
	var copies atomic.Int64
	copyCount = &copies
	// Each leave leaves a chunk's worth of garbage behind; with a million
	// live connections on the heap, fewer collections save most of the time.
	old := debug.SetGCPercent(400)
	t.Cleanup(func() { copyCount = nil; debug.SetGCPercent(old) })

	r := New[int]()
	conns := make([]*Conn[int], n)
	for i := range conns {
		conns[i], _ = r.Add("u"+strconv.Itoa(i%1000), "", i)
	}
	for _, c := range conns {
		if _, err := r.Subscribe(c, "big"); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.Members("big").Len(); got != n {
		t.Fatalf("Len = %d, want %d", got, n)
	}
	if fill := copies.Load(); fill > int64(n) {
		t.Fatalf("filling copied %d pointers, want at most %d (O(1) per join)", fill, n)
	} else {
		t.Logf("fill: %d joins copied %d pointers", n, fill)
	}
	copies.Store(0)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(conns), func(i, j int) { conns[i], conns[j] = conns[j], conns[i] })
	for i, c := range conns {
		if !r.Unsubscribe(c, "big").Removed {
			t.Fatalf("leave %d failed", i)
		}
	}
	perLeave := chunkSize + midSize + (n+chunkSize*midSize-1)/(chunkSize*midSize)
	if empty := copies.Load(); empty > int64(n*perLeave) {
		t.Fatalf("emptying copied %d pointers, want at most %d per leave", empty, perLeave)
	} else {
		t.Logf("empty: %d leaves copied %d pointers (%.0f per leave, bound %d)", n, empty, float64(empty)/float64(n), perLeave)
	}
	if r.Members("big").Len() != 0 || r.Counts().Subscriptions != 0 || r.Counts().Channels != 0 {
		t.Fatalf("not empty: %+v", r.Counts())
	}
}
