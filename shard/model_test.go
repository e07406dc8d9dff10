package shard

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"

	"pgregory.net/rapid"
)

// TestModel applies random operation sequences to a registry and to the map
// model, comparing results after every step. Few users and channel names make
// the interesting cases (same user, shared channel, big channels crossing the
// index threshold) common.
func TestModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		r := New[int]()
		m := newModel()
		var all []*Conn[int]
		user := rapid.SampledFrom([]string{"ann", "bob", "cy", "dee"})
		channel := rapid.SampledFrom([]string{"a", "b", "c"})
		pick := func(rt *rapid.T) *Conn[int] {
			return all[rapid.IntRange(0, len(all)-1).Draw(rt, "conn")]
		}
		rt.Repeat(map[string]func(*rapid.T){
			"add": func(rt *rapid.T) {
				c, first := r.Add(user.Draw(rt, "user"), "", len(all))
				if want := m.add(c); first != want {
					rt.Fatalf("Add firstOfUser = %v, model %v", first, want)
				}
				all = append(all, c)
			},
			"subscribe": func(rt *rapid.T) {
				if len(all) == 0 {
					rt.Skip("no conns")
				}
				c, ch := pick(rt), channel.Draw(rt, "channel")
				got, err := r.Subscribe(c, ch)
				_, live := m.conns[c.ID()]
				if want := m.subscribe(c, ch); got != want || (err != nil) == live {
					rt.Fatalf("Subscribe = %+v, %v; model %+v (live %v)", got, err, want, live)
				}
			},
			"subscribeMany": func(rt *rapid.T) {
				// Grow one channel past the small-channel threshold.
				ch := channel.Draw(rt, "channel")
				for range rapid.IntRange(1, 2*smallChannel).Draw(rt, "n") {
					c, _ := r.Add(user.Draw(rt, "user"), "", len(all))
					m.add(c)
					all = append(all, c)
					got, _ := r.Subscribe(c, ch)
					if want := m.subscribe(c, ch); got != want {
						rt.Fatalf("Subscribe = %+v; model %+v", got, want)
					}
				}
			},
			"unsubscribe": func(rt *rapid.T) {
				if len(all) == 0 {
					rt.Skip("no conns")
				}
				c, ch := pick(rt), channel.Draw(rt, "channel")
				if got, want := r.Unsubscribe(c, ch), m.unsubscribe(c, ch); got != want {
					rt.Fatalf("Unsubscribe = %+v; model %+v", got, want)
				}
			},
			"remove": func(rt *rapid.T) {
				if len(all) == 0 {
					rt.Skip("no conns")
				}
				c := pick(rt)
				var notes []note
				last, ok := r.Remove(c, func(ch string, e, u bool) { notes = append(notes, note{ch, e, u}) })
				wantNotes, wantLast, wantOK := m.remove(c)
				if last != wantLast || ok != wantOK || !slices.Equal(sortNotes(notes), wantNotes) {
					rt.Fatalf("Remove = %v, %v, %v; model %v, %v, %v", last, ok, notes, wantLast, wantOK, wantNotes)
				}
			},
			"": func(rt *rapid.T) { check(rt, r, m) },
		})
	})
}

// TestModelConcurrent runs goroutines that each own disjoint connections and
// share channels, each keeping its own model; once all finish, the registry
// must equal the union of the models. Along the way each goroutine checks
// that its own joins and leaves are visible in the very next snapshot (no
// lost member, no ghost), while the others keep changing the same channels.
func TestModelConcurrent(t *testing.T) {
	const workers = 8
	ops := 4000
	if raceEnabled {
		ops = 1500
	}
	channels := append(sameShardKeys("hot", 3), "x", "y", "z")
	for _, seed := range []uint64{1, 2, 3} {
		t.Run("seed="+strconv.FormatUint(seed, 10), func(t *testing.T) {
			r := New[int]()
			models := make([]*model, workers)
			var wg sync.WaitGroup
			errs := make(chan string, workers)
			for w := range workers {
				m := newModel()
				models[w] = m
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(seed, uint64(w)))
					var mine []*Conn[int]
					for op := range ops {
						if len(mine) == 0 || rng.IntN(20) == 0 {
							c, _ := r.Add("w"+strconv.Itoa(w)+"u"+strconv.Itoa(rng.IntN(3)), "", op)
							m.add(c)
							mine = append(mine, c)
							continue
						}
						c := mine[rng.IntN(len(mine))]
						ch := channels[rng.IntN(len(channels))]
						switch rng.IntN(10) {
						case 0:
							r.Remove(c, nil)
							m.remove(c)
						case 1, 2, 3, 4, 5:
							_, err := r.Subscribe(c, ch)
							m.subscribe(c, ch)
							if _, live := m.conns[c.ID()]; live == (err != nil) {
								errs <- "Subscribe error disagrees with model"
								return
							}
						default:
							r.Unsubscribe(c, ch)
							m.unsubscribe(c, ch)
						}
						in := false
						r.Members(ch).All(func(o *Conn[int]) bool { in = o == c; return !in })
						if want := m.chans[ch][c.ID()]; in != want {
							errs <- "conn " + strconv.FormatUint(c.ID(), 10) + " in " + ch + ": snapshot says " + strconv.FormatBool(in)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Fatal(e)
			}
			union := newModel()
			for _, m := range models {
				maps.Copy(union.conns, m.conns)
				maps.Copy(union.subs, m.subs)
				maps.Copy(union.gone, m.gone)
				maps.Copy(union.names, m.names)
				for ch, members := range m.chans {
					if union.chans[ch] == nil {
						union.chans[ch] = map[uint64]bool{}
					}
					maps.Copy(union.chans[ch], members)
				}
			}
			check(t, r, union)
		})
	}
}
