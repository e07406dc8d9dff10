package shard

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// TestHammerOneShard has many goroutines add, join, leave and remove
// connections whose users and channels all live in one shard, while readers
// walk snapshots of those channels. Every snapshot must be well formed, and
// once everything is removed the shard must be empty again.
func TestHammerOneShard(t *testing.T) {
	users := sameShardKeys("user", 4)
	chans := sameShardKeys("chan", 4)
	r := New[int]()
	rounds := 400
	if raceEnabled {
		rounds = 150
	}
	var stop atomic.Bool
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for i := 0; !stop.Load(); i++ {
				ids(errorOnly{t}, r.Members(chans[i%len(chans)]))
			}
		})
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			var mine []*Conn[int]
			for range rounds {
				c, _ := r.Add(users[rng.IntN(len(users))], "", w)
				mine = append(mine, c)
				for range 3 {
					r.Subscribe(mine[rng.IntN(len(mine))], chans[rng.IntN(len(chans))])
				}
				r.Unsubscribe(mine[rng.IntN(len(mine))], chans[rng.IntN(len(chans))])
				if rng.IntN(3) == 0 {
					i := rng.IntN(len(mine))
					r.Remove(mine[i], nil)
					mine = append(mine[:i], mine[i+1:]...)
				}
			}
			for _, c := range mine {
				r.Remove(c, nil)
			}
		})
	}
	wg.Wait()
	stop.Store(true)
	readers.Wait()
	if got := r.Counts(); got != (Counts{}) {
		t.Fatalf("after removing everything: %+v", got)
	}
	s := &r.shards[7]
	if len(s.users) != 0 || s.chans.Load() != nil {
		t.Fatalf("shard 7 keeps %d users, table %v", len(s.users), s.chans.Load())
	}
}

// TestHammerSameConn races Subscribe, Unsubscribe and Remove of the same
// connection and channels. After Remove returns no snapshot may hold the
// connection (no ghost), and the other members must all still be there (no
// lost member).
func TestHammerSameConn(t *testing.T) {
	chans := sameShardKeys("room", 3)
	r := New[int]()
	var stay []*Conn[int]
	for i := range 40 { // keep the channels big enough to use their index
		c, _ := r.Add("stay"+strconv.Itoa(i), "", i)
		for _, ch := range chans {
			r.Subscribe(c, ch)
		}
		stay = append(stay, c)
	}
	rounds := 300
	if raceEnabled {
		rounds = 100
	}
	for round := range rounds {
		c, _ := r.Add("victim", "", round)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 20 {
					ch := chans[(g+i)%len(chans)]
					if g%2 == 0 {
						r.Subscribe(c, ch)
					} else {
						r.Unsubscribe(c, ch)
					}
				}
			})
		}
		wg.Go(func() {
			r.Remove(c, nil)
			for _, ch := range chans {
				r.Members(ch).All(func(o *Conn[int]) bool {
					if o == c {
						t.Errorf("round %d: removed conn still in %s", round, ch)
					}
					return true
				})
			}
		})
		wg.Wait()
		if _, err := r.Subscribe(c, chans[0]); err == nil {
			t.Fatalf("round %d: Subscribe after Remove succeeded", round)
		}
		for _, ch := range chans {
			got := ids(t, r.Members(ch))
			if len(got) != len(stay) {
				t.Fatalf("round %d: %s has %d members, want %d", round, ch, len(got), len(stay))
			}
			for _, s := range stay {
				if !got[s.ID()] {
					t.Fatalf("round %d: lost member %d", round, s.ID())
				}
			}
		}
	}
	if got := r.Counts(); got != (Counts{Conns: 40, Users: 40, Channels: 3, Subscriptions: 120}) {
		t.Fatalf("Counts = %+v", got)
	}
}

// errorOnly turns Fatalf into Errorf, for checks run off the test goroutine.
type errorOnly struct{ t *testing.T }

func (e errorOnly) Helper()                      { e.t.Helper() }
func (e errorOnly) Fatalf(f string, args ...any) { e.t.Errorf(f, args...) }
