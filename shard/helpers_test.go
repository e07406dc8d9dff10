package shard

import (
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/cespare/xxhash/v2"
)

// fataler is the part of testing.TB the checks need; *rapid.T has it too.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// model is the trivial map model the registry is compared with.
type model struct {
	conns map[uint64]*Conn[int]      // live connections
	chans map[string]map[uint64]bool // channel -> member ids
	subs  map[uint64]map[string]bool // conn id -> channels
	gone  map[uint64]*Conn[int]      // removed connections
	names map[string]bool            // every channel name ever used
}

func newModel() *model {
	return &model{
		conns: map[uint64]*Conn[int]{},
		chans: map[string]map[uint64]bool{},
		subs:  map[uint64]map[string]bool{},
		gone:  map[uint64]*Conn[int]{},
		names: map[string]bool{},
	}
}

func (m *model) userConns(user string) int {
	n := 0
	for _, c := range m.conns {
		if c.User() == user {
			n++
		}
	}
	return n
}

func (m *model) channelUsers(ch string) map[string]int {
	users := map[string]int{}
	for id := range m.chans[ch] {
		users[m.conns[id].User()]++
	}
	return users
}

func (m *model) add(c *Conn[int]) (first bool) {
	first = m.userConns(c.User()) == 0
	m.conns[c.ID()] = c
	m.subs[c.ID()] = map[string]bool{}
	return first
}

func (m *model) subscribe(c *Conn[int], ch string) JoinResult {
	m.names[ch] = true
	if _, live := m.conns[c.ID()]; !live || m.subs[c.ID()][ch] {
		return JoinResult{}
	}
	res := JoinResult{Added: true, FirstMember: len(m.chans[ch]) == 0, FirstOfUser: m.channelUsers(ch)[c.User()] == 0}
	if m.chans[ch] == nil {
		m.chans[ch] = map[uint64]bool{}
	}
	m.chans[ch][c.ID()] = true
	m.subs[c.ID()][ch] = true
	return res
}

func (m *model) unsubscribe(c *Conn[int], ch string) LeaveResult {
	if _, live := m.conns[c.ID()]; !live || !m.subs[c.ID()][ch] {
		return LeaveResult{}
	}
	delete(m.chans[ch], c.ID())
	delete(m.subs[c.ID()], ch)
	res := LeaveResult{Removed: true, LastMember: len(m.chans[ch]) == 0, LastOfUser: m.channelUsers(ch)[c.User()] == 0}
	if len(m.chans[ch]) == 0 {
		delete(m.chans, ch)
	}
	return res
}

type note struct {
	channel           string
	emptied, userLeft bool
}

func (m *model) remove(c *Conn[int]) (notes []note, lastOfUser, ok bool) {
	if _, live := m.conns[c.ID()]; !live {
		return nil, false, false
	}
	for ch := range m.subs[c.ID()] {
		r := m.unsubscribe(c, ch)
		notes = append(notes, note{ch, r.LastMember, r.LastOfUser})
	}
	delete(m.conns, c.ID())
	delete(m.subs, c.ID())
	m.gone[c.ID()] = c
	return sortNotes(notes), m.userConns(c.User()) == 0, true
}

func sortNotes(n []note) []note {
	sort.Slice(n, func(i, j int) bool { return n[i].channel < n[j].channel })
	return n
}

// ids returns the member ids of a snapshot, checking its chunk structure.
func ids(tb fataler, s *Snapshot[int]) map[uint64]bool {
	tb.Helper()
	got := make(map[uint64]bool, s.Len())
	total := 0
	for i := 0; i < s.NumChunks(); i++ {
		chunk := s.Chunk(i)
		if len(chunk) == 0 || len(chunk) > chunkSize || cap(chunk) != len(chunk) {
			tb.Fatalf("chunk %d/%d: len %d cap %d", i, s.NumChunks(), len(chunk), cap(chunk))
		}
		for _, c := range chunk {
			if c == nil {
				tb.Fatalf("nil member in chunk %d", i)
			}
			if got[c.ID()] {
				tb.Fatalf("member %d twice", c.ID())
			}
			got[c.ID()] = true
		}
		total += len(chunk)
	}
	if total != s.Len() {
		tb.Fatalf("chunks hold %d members, Len %d", total, s.Len())
	}
	return got
}

// check compares the registry with the model in every observable way.
func check(tb fataler, r *Registry[int], m *model) {
	tb.Helper()
	users := map[string]int{}
	subs := 0
	for _, c := range m.conns {
		users[c.User()]++
		subs += len(m.subs[c.ID()])
	}
	want := Counts{Conns: int64(len(m.conns)), Users: int64(len(users)), Channels: int64(len(m.chans)), Subscriptions: int64(subs)}
	if got := r.Counts(); got != want {
		tb.Fatalf("Counts = %+v, want %+v", got, want)
	}
	for name := range m.names {
		got := ids(tb, r.Members(name))
		if !maps.Equal(got, m.chans[name]) && !(len(got) == 0 && len(m.chans[name]) == 0) {
			tb.Fatalf("Members(%q) = %v, want %v", name, got, m.chans[name])
		}
		cu := r.ChannelUsers(name)
		slices.Sort(cu)
		wantUsers := slices.Sorted(maps.Keys(m.channelUsers(name)))
		if !slices.Equal(cu, wantUsers) {
			tb.Fatalf("ChannelUsers(%q) = %v, want %v", name, cu, wantUsers)
		}
	}
	for id, c := range m.conns {
		if r.Get(id) != c || c.Removed() {
			tb.Fatalf("Get(%d) = %p, want %p (removed %v)", id, r.Get(id), c, c.Removed())
		}
		chans := c.Channels()
		slices.Sort(chans)
		if wantCh := slices.Sorted(maps.Keys(m.subs[id])); !slices.Equal(chans, wantCh) || c.NumChannels() != len(wantCh) {
			tb.Fatalf("conn %d Channels = %v, want %v", id, chans, wantCh)
		}
	}
	for id, c := range m.gone {
		if r.Get(id) != nil || !c.Removed() || c.NumChannels() != 0 {
			tb.Fatalf("removed conn %d still visible", id)
		}
	}
	for u, n := range users {
		if got := r.UserConnCount(u); got != n || !r.IsOnline(u) {
			tb.Fatalf("UserConnCount(%q) = %d, want %d", u, got, n)
		}
		for _, c := range r.UserConns(u, nil) {
			if m.conns[c.ID()] != c {
				tb.Fatalf("UserConns(%q) has %d, which is not live", u, c.ID())
			}
		}
	}
	seen := 0
	r.RangeChannels(func(ch string, n int) bool {
		seen++
		if len(m.chans[ch]) != n {
			tb.Fatalf("RangeChannels %q: %d members, want %d", ch, n, len(m.chans[ch]))
		}
		return true
	})
	if seen != len(m.chans) {
		tb.Fatalf("RangeChannels saw %d channels, want %d", seen, len(m.chans))
	}
	seen = 0
	r.RangeUsers(func(u string, n int) bool {
		seen++
		if users[u] != n {
			tb.Fatalf("RangeUsers %q: %d conns, want %d", u, n, users[u])
		}
		return true
	})
	if seen != len(users) {
		tb.Fatalf("RangeUsers saw %d users, want %d", seen, len(users))
	}
}

// sameShardKeys returns n distinct keys that all hash to one shard, so tests
// can hammer a single shard's lock.
func sameShardKeys(prefix string, n int) []string {
	var keys []string
	for i := 0; len(keys) < n; i++ {
		k := fmt.Sprintf("%s%d", prefix, i)
		if xxhash.Sum64String(k)&shardMask == 7 {
			keys = append(keys, k)
		}
	}
	return keys
}
