package shard

import (
	"errors"
	"slices"
	"testing"
	"time"
	"unsafe"
)

func TestShardIsPadded(t *testing.T) {
	if got := unsafe.Sizeof(shard[int]{}); got != shardPad {
		t.Fatalf("sizeof(shard) = %d, want %d", got, shardPad)
	}
}

func TestAdd(t *testing.T) {
	tests := []struct {
		name      string
		users     []string
		wantFirst []bool
	}{
		{"one", []string{"a"}, []bool{true}},
		{"two users", []string{"a", "b"}, []bool{true, true}},
		{"same user twice", []string{"a", "a", "b", "a"}, []bool{true, false, true, false}},
		{"empty user id", []string{""}, []bool{true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New[int]()
			before := time.Now()
			seen := map[uint64]bool{}
			for i, u := range tt.users {
				c, first := r.Add(u, "1.2.3.4:5", i)
				if first != tt.wantFirst[i] {
					t.Errorf("Add #%d firstOfUser = %v, want %v", i, first, tt.wantFirst[i])
				}
				if seen[c.ID()] || c.ID() == 0 {
					t.Errorf("Add #%d: id %d reused or zero", i, c.ID())
				}
				seen[c.ID()] = true
				if c.User() != u || c.RemoteAddr() != "1.2.3.4:5" || c.Value != i || c.Removed() || r.Get(c.ID()) != c {
					t.Errorf("Add #%d: bad record %+v", i, c)
				}
				if c.ConnectedAt().Before(before.Add(-time.Second)) || c.LastActive() != c.ConnectedAt().UnixNano() {
					t.Errorf("Add #%d: ConnectedAt %v LastActive %d", i, c.ConnectedAt(), c.LastActive())
				}
			}
			if got := r.Counts().Conns; got != int64(len(tt.users)) {
				t.Errorf("Counts.Conns = %d", got)
			}
		})
	}
}

func TestTouch(t *testing.T) {
	r := New[int]()
	c, _ := r.Add("u", "", 0)
	c.Touch(42)
	if c.LastActive() != 42 {
		t.Fatalf("LastActive = %d, want 42", c.LastActive())
	}
}

func TestGetUnknown(t *testing.T) {
	r := New[int]()
	if r.Get(0) != nil || r.Get(12345) != nil {
		t.Fatal("Get of unknown id is not nil")
	}
}

func TestSubscribe(t *testing.T) {
	tests := []struct {
		name  string
		steps []struct{ user, channel string } // each step adds a conn of user (or reuses the last for "") and subscribes
		want  []JoinResult
	}{
		{"first member", []struct{ user, channel string }{{"a", "x"}}, []JoinResult{{true, true, true}}},
		{"second user", []struct{ user, channel string }{{"a", "x"}, {"b", "x"}}, []JoinResult{{true, true, true}, {true, false, true}}},
		{"same user other conn", []struct{ user, channel string }{{"a", "x"}, {"a", "x"}}, []JoinResult{{true, true, true}, {true, false, false}}},
		{"same conn twice", []struct{ user, channel string }{{"a", "x"}, {"", "x"}}, []JoinResult{{true, true, true}, {}}},
		{"other channel", []struct{ user, channel string }{{"a", "x"}, {"", "y"}}, []JoinResult{{true, true, true}, {true, true, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New[int]()
			m := newModel()
			var c *Conn[int]
			for i, st := range tt.steps {
				if st.user != "" {
					c, _ = r.Add(st.user, "", i)
					m.add(c)
				}
				got, err := r.Subscribe(c, st.channel)
				if err != nil || got != tt.want[i] {
					t.Fatalf("step %d: Subscribe = %+v, %v; want %+v", i, got, err, tt.want[i])
				}
				if mres := m.subscribe(c, st.channel); mres != got {
					t.Fatalf("step %d: model says %+v", i, mres)
				}
				check(t, r, m)
			}
		})
	}
}

func TestSubscribeRemoved(t *testing.T) {
	r := New[int]()
	c, _ := r.Add("a", "", 0)
	r.Remove(c, nil)
	if _, err := r.Subscribe(c, "x"); !errors.Is(err, ErrRemoved) {
		t.Fatalf("Subscribe after Remove: err = %v, want ErrRemoved", err)
	}
	if _, err := r.Subscribe(nil, "x"); !errors.Is(err, ErrRemoved) {
		t.Fatalf("Subscribe(nil): err = %v, want ErrRemoved", err)
	}
	if got := r.Members("x").Len(); got != 0 {
		t.Fatalf("members = %d", got)
	}
}

func TestUnsubscribe(t *testing.T) {
	tests := []struct {
		name  string
		conns []string // users; every conn joins "x"
		leave []int    // conn indices leaving "x", in order
		want  []LeaveResult
	}{
		{"only member", []string{"a"}, []int{0}, []LeaveResult{{true, true, true}}},
		{"twice", []string{"a"}, []int{0, 0}, []LeaveResult{{true, true, true}, {}}},
		{"two users", []string{"a", "b"}, []int{0, 1}, []LeaveResult{{true, false, true}, {true, true, true}}},
		{"user keeps a conn", []string{"a", "a"}, []int{0, 1}, []LeaveResult{{true, false, false}, {true, true, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New[int]()
			m := newModel()
			var cs []*Conn[int]
			for i, u := range tt.conns {
				c, _ := r.Add(u, "", i)
				m.add(c)
				r.Subscribe(c, "x")
				m.subscribe(c, "x")
				cs = append(cs, c)
			}
			for i, li := range tt.leave {
				got := r.Unsubscribe(cs[li], "x")
				if got != tt.want[i] || m.unsubscribe(cs[li], "x") != got {
					t.Fatalf("leave %d: got %+v, want %+v", i, got, tt.want[i])
				}
				check(t, r, m)
			}
		})
	}
	t.Run("not subscribed", func(t *testing.T) {
		r := New[int]()
		c, _ := r.Add("a", "", 0)
		if got := r.Unsubscribe(c, "nope"); got != (LeaveResult{}) {
			t.Fatalf("got %+v", got)
		}
		if got := r.Unsubscribe(nil, "nope"); got != (LeaveResult{}) {
			t.Fatalf("nil conn: got %+v", got)
		}
	})
}

func TestRemove(t *testing.T) {
	tests := []struct {
		name     string
		users    []string   // conns
		chans    [][]string // channels each conn joins
		remove   int
		wantLast bool
		want     []note
	}{
		{"no channels", []string{"a"}, [][]string{nil}, 0, true, nil},
		{"alone in two", []string{"a"}, [][]string{{"x", "y"}}, 0, true, []note{{"x", true, true}, {"y", true, true}}},
		{"shared channel", []string{"a", "b"}, [][]string{{"x"}, {"x"}}, 0, true, []note{{"x", false, true}}},
		{"user keeps a conn", []string{"a", "a"}, [][]string{{"x", "y"}, {"x"}}, 0, false, []note{{"x", false, false}, {"y", true, true}}},
		{"many channels", []string{"a"}, [][]string{{"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11", "c12", "c13", "c14", "c15", "c16", "c17", "c18"}}, 0, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New[int]()
			m := newModel()
			var cs []*Conn[int]
			for i, u := range tt.users {
				c, _ := r.Add(u, "", i)
				m.add(c)
				for _, ch := range tt.chans[i] {
					r.Subscribe(c, ch)
					m.subscribe(c, ch)
				}
				cs = append(cs, c)
			}
			var got []note
			last, ok := r.Remove(cs[tt.remove], func(ch string, emptied, userLeft bool) {
				got = append(got, note{ch, emptied, userLeft})
			})
			wantNotes, wantLast, _ := m.remove(cs[tt.remove])
			if tt.want != nil && !slices.Equal(sortNotes(got), tt.want) {
				t.Fatalf("notes = %v, want %v", got, tt.want)
			}
			if !ok || last != tt.wantLast || last != wantLast || !slices.Equal(sortNotes(got), wantNotes) {
				t.Fatalf("Remove = %v, %v, notes %v; model %v, %v", last, ok, got, wantLast, wantNotes)
			}
			check(t, r, m)
			calls := 0
			if last, ok := r.Remove(cs[tt.remove], func(string, bool, bool) { calls++ }); ok || last || calls != 0 {
				t.Fatalf("second Remove = %v, %v with %d calls", last, ok, calls)
			}
		})
	}
	t.Run("nil", func(t *testing.T) {
		if _, ok := New[int]().Remove(nil, nil); ok {
			t.Fatal("Remove(nil) ok")
		}
	})
	t.Run("callback may call back", func(t *testing.T) {
		r := New[int]()
		a, _ := r.Add("a", "", 0)
		b, _ := r.Add("b", "", 1)
		r.Subscribe(a, "x")
		r.Subscribe(b, "x")
		r.Remove(a, func(ch string, _, _ bool) {
			r.Unsubscribe(b, ch)
			r.Subscribe(b, "y")
		})
		if r.Members("x").Len() != 0 || r.Members("y").Len() != 1 {
			t.Fatal("callback's calls had no effect")
		}
	})
}

func TestMembersUnknown(t *testing.T) {
	r := New[int]()
	s := r.Members("nobody")
	if s == nil || s.Len() != 0 || s.NumChunks() != 0 || s != r.Members("other") {
		t.Fatal("unknown channel does not get the shared empty snapshot")
	}
	calls := 0
	s.All(func(*Conn[int]) bool { calls++; return true })
	if calls != 0 {
		t.Fatal("All on empty snapshot called fn")
	}
}

func TestMembersAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	r := New[int]()
	c, _ := r.Add("a", "", 0)
	r.Subscribe(c, "room")
	if n := testing.AllocsPerRun(100, func() {
		if r.Members("room").Len() != 1 || r.Members("none").Len() != 0 {
			panic("bad members")
		}
	}); n != 0 {
		t.Fatalf("Members allocates %v times", n)
	}
}

func TestUserConns(t *testing.T) {
	r := New[int]()
	a1, _ := r.Add("a", "", 1)
	a2, _ := r.Add("a", "", 2)
	r.Add("b", "", 3)
	dst := make([]*Conn[int], 1, 4) // appends after existing entries
	got := r.UserConns("a", dst)
	if len(got) != 3 || !slices.Contains(got, a1) || !slices.Contains(got, a2) {
		t.Fatalf("UserConns = %v", got)
	}
	r.Remove(a1, nil)
	if got := r.UserConns("a", nil); len(got) != 1 || got[0] != a2 || r.UserConnCount("a") != 1 {
		t.Fatalf("after Remove: %v", got)
	}
	r.Remove(a2, nil)
	if r.IsOnline("a") || !r.IsOnline("b") || r.IsOnline("zed") || len(r.UserConns("a", nil)) != 0 {
		t.Fatal("IsOnline wrong")
	}
}

func TestRangeShard(t *testing.T) {
	r := New[int]()
	const n = 2000
	for i := range n {
		r.Add(string(rune('a'+i%26))+string(rune('a'+i/26%26)), "", i)
	}
	seen := map[uint64]bool{}
	for i := range NumShards {
		r.RangeShard(i, func(c *Conn[int]) bool {
			if s, _ := r.shardOf(c.User()); s != &r.shards[i] {
				t.Errorf("conn of %q visited in shard %d", c.User(), i)
			}
			seen[c.ID()] = true
			r.Remove(c, nil) // a sweeper evicting as it goes
			return true
		})
	}
	if len(seen) != n || r.Counts() != (Counts{}) {
		t.Fatalf("visited %d of %d, counts after evicting all: %+v", len(seen), n, r.Counts())
	}
	r.RangeShard(-1, func(*Conn[int]) bool { t.Fatal("called"); return false })
	r.RangeShard(NumShards, func(*Conn[int]) bool { t.Fatal("called"); return false })

	r.Add("x", "", 0)
	r.Add("x", "", 1)
	calls := 0
	r.RangeShard(shardIndex(r, "x"), func(*Conn[int]) bool { calls++; return false })
	if calls != 1 {
		t.Fatalf("fn returning false: %d calls", calls)
	}
}

func shardIndex(r *Registry[int], key string) int {
	s, _ := r.shardOf(key)
	for i := range r.shards {
		if &r.shards[i] == s {
			return i
		}
	}
	return -1
}

func TestRangeStops(t *testing.T) {
	r := New[int]()
	for i := range 10 {
		c, _ := r.Add(string(rune('a'+i)), "", i)
		r.Subscribe(c, string(rune('A'+i)))
	}
	calls := 0
	r.RangeChannels(func(string, int) bool { calls++; return false })
	r.RangeUsers(func(string, int) bool { calls++; return false })
	if calls != 2 {
		t.Fatalf("%d calls, want 2", calls)
	}
}

func TestChannelsReclaimed(t *testing.T) {
	r := New[int]()
	cs := make([]*Conn[int], 100)
	for i := range cs {
		cs[i], _ = r.Add("u", "", i)
	}
	for round := range 3 {
		for i, c := range cs {
			for j := range 40 {
				r.Subscribe(c, string(rune('a'+i%7))+string(rune('a'+j)))
			}
		}
		if round == 2 {
			break
		}
		for _, c := range cs {
			for _, ch := range c.Channels() {
				r.Unsubscribe(c, ch)
			}
		}
		if got := r.Counts(); got.Channels != 0 || got.Subscriptions != 0 {
			t.Fatalf("round %d: %+v", round, got)
		}
		for i := range r.shards {
			if r.shards[i].chans.Load() != nil {
				t.Fatalf("shard %d keeps an empty channel table", i)
			}
		}
	}
	for _, c := range cs {
		r.Remove(c, nil)
	}
	if got := r.Counts(); got != (Counts{}) {
		t.Fatalf("after removing all: %+v", got)
	}
	for i := range r.shards {
		s := &r.shards[i]
		if len(s.users) != 0 || len(s.byID) != 0 || s.chans.Load() != nil {
			t.Fatalf("shard %d not empty", i)
		}
	}
}
