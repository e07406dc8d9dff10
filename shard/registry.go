package shard

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// NumShards is the number of shards. A user id or channel name picks its
// shard by xxhash.Sum64String(key) & (NumShards-1); a connection id picks the
// shard of its id index by id & (NumShards-1) (ids are sequential).
const NumShards = 256

const shardMask = NumShards - 1

// ErrRemoved is returned by an operation on a connection Remove has started
// on.
var ErrRemoved = errors.New("roost: connection removed")

// shardPad pads a shard to two cache lines, so that neighbouring shards'
// locks and counters never share a line, even with adjacent-line prefetch.
const shardPad = 128

// shard holds one 256th of the users, the channels and the id index.
type shard[T any] struct {
	// mu guards users, byID, the writer side of chans, every channel in
	// chans, and the userPos of the connections of these users.
	mu    sync.Mutex
	users map[string][]*Conn[T] // user -> live connections
	byID  map[uint64]*Conn[T]   // connections whose id & shardMask is this shard
	chans atomic.Pointer[table[T]]

	// Counters, written under mu and read with atomic loads by Counts.
	conns, nusers, channels, subs atomic.Int64

	_ [shardPad - 64]byte
}

// Registry is the sharded connection registry: which connections a user
// holds and which connections each channel has. It is concurrency-safe as a
// whole and holds no global lock: each of the NumShards shards has its own,
// and channel members are read without any (see Members).
//
// A connection lives in its user's shard; a channel in its name's shard.
// The zero value is not usable; call New.
type Registry[T any] struct {
	shards [NumShards]shard[T]
	nextID atomic.Uint64
	empty  *Snapshot[T] // the one snapshot of every unknown or empty channel
	tomb   *channel[T]
	bufs   sync.Pool // of *[]*Conn[T], scratch for RangeShard
}

// New returns an empty registry.
func New[T any]() *Registry[T] {
	r := &Registry[T]{empty: &Snapshot[T]{}, tomb: &channel[T]{}}
	for i := range r.shards {
		r.shards[i].users = make(map[string][]*Conn[T])
		r.shards[i].byID = make(map[uint64]*Conn[T])
	}
	return r
}

func (r *Registry[T]) shardOf(key string) (*shard[T], uint64) {
	h := xxhash.Sum64String(key)
	return &r.shards[h&shardMask], h
}

func (r *Registry[T]) idShard(id uint64) *shard[T] { return &r.shards[id&shardMask] }

// Add registers a connection of user from remoteAddr carrying v, and reports
// whether it is the user's only connection.
func (r *Registry[T]) Add(user, remoteAddr string, v T) (c *Conn[T], firstOfUser bool) {
	now := time.Now().UnixNano()
	c = &Conn[T]{Value: v, id: r.nextID.Add(1), user: user, remoteAddr: remoteAddr, connectedAt: now}
	c.lastActive.Store(now)

	s, _ := r.shardOf(user)
	s.mu.Lock()
	list := s.users[user]
	c.userPos = int32(len(list))
	s.users[user] = append(list, c)
	firstOfUser = len(list) == 0
	if firstOfUser {
		s.nusers.Add(1)
	}
	s.mu.Unlock()

	s = r.idShard(c.id)
	s.mu.Lock()
	s.byID[c.id] = c
	s.conns.Add(1)
	s.mu.Unlock()
	return c, firstOfUser
}

// Get returns the live connection with the given id, or nil.
func (r *Registry[T]) Get(id uint64) *Conn[T] {
	s := r.idShard(id)
	s.mu.Lock()
	c := s.byID[id]
	s.mu.Unlock()
	return c
}

// leaveNote records one channel a removed connection left, for Remove's
// callback.
type leaveNote struct {
	channel           string
	emptied, userLeft bool
}

// Remove removes c from its user and from every channel it joined, and
// reports whether c was its user's last connection. fn, if not nil, is
// called once per channel c was in, after every lock is released (so it may
// call back into the registry), with emptied = the channel has no member
// left and userLeft = no other connection of c's user remains in it.
//
// Remove is idempotent: once a Remove has started, another returns ok=false
// and calls nothing. When Remove returns, no snapshot published afterwards
// contains c, and Subscribe(c, ...) fails with ErrRemoved.
func (r *Registry[T]) Remove(c *Conn[T], fn func(channel string, emptied, userLeft bool)) (lastOfUser, ok bool) {
	if c == nil {
		return false, false
	}
	var buf [8]leaveNote
	notes := buf[:0]

	c.mu.Lock()
	if c.removed.Load() {
		c.mu.Unlock()
		return false, false
	}
	c.removed.Store(true)

	s := r.idShard(c.id)
	s.mu.Lock()
	delete(s.byID, c.id)
	s.conns.Add(-1)
	s.mu.Unlock()

	for i, ch := range c.subs {
		emptied, userLeft := r.leaveLocked(ch, c)
		if fn != nil {
			notes = append(notes, leaveNote{ch.name, emptied, userLeft})
		}
		c.subs[i] = nil
	}
	c.subs, c.subIdx = nil, nil

	s, _ = r.shardOf(c.user)
	s.mu.Lock()
	list := s.users[c.user]
	last := len(list) - 1
	if p := int(c.userPos); p != last {
		list[p] = list[last]
		list[p].userPos = int32(p)
	}
	list[last] = nil
	if last == 0 {
		delete(s.users, c.user)
		s.nusers.Add(-1)
		lastOfUser = true
	} else {
		s.users[c.user] = list[:last]
	}
	s.mu.Unlock()
	c.mu.Unlock()

	for _, n := range notes {
		fn(n.channel, n.emptied, n.userLeft)
	}
	return lastOfUser, true
}

// leaveLocked removes member c from ch under ch's shard lock, deleting the
// channel if it empties. The caller holds c.mu.
func (r *Registry[T]) leaveLocked(ch *channel[T], c *Conn[T]) (emptied, userLeft bool) {
	s := &r.shards[ch.hash&shardMask]
	s.mu.Lock()
	userLeft, ok := ch.delLocked(c)
	if ok {
		s.subs.Add(-1)
	}
	if ch.n == 0 {
		emptied = true
		ch.snap.Store(r.empty)
		s.chans.Store(s.chans.Load().deleteLocked(ch))
		s.channels.Add(-1)
	}
	s.mu.Unlock()
	return emptied, userLeft
}

// JoinResult is the outcome of Subscribe.
type JoinResult struct {
	Added       bool // false: c already was a member, nothing changed
	FirstMember bool // the channel had no member before
	FirstOfUser bool // no other connection of c's user was a member before
}

// Subscribe makes c a member of channel. It costs O(1) amortised, with one
// small allocation (the new snapshot header); see channel for the bound.
// It fails with ErrRemoved once Remove(c) has started.
func (r *Registry[T]) Subscribe(c *Conn[T], channelName string) (JoinResult, error) {
	if c == nil {
		return JoinResult{}, ErrRemoved
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed.Load() {
		return JoinResult{}, ErrRemoved
	}
	if c.findSubLocked(channelName) >= 0 {
		return JoinResult{}, nil
	}
	res := JoinResult{Added: true}
	s, h := r.shardOf(channelName)
	s.mu.Lock()
	t := s.chans.Load()
	var ch *channel[T]
	if t != nil {
		ch = t.lookup(channelName, h)
	} else {
		t = &table[T]{slots: make([]atomic.Pointer[channel[T]], 8), tomb: r.tomb}
	}
	if ch == nil {
		ch = &channel[T]{name: channelName, hash: h}
		ch.snap.Store(r.empty)
		s.chans.Store(t.insertLocked(ch))
		s.channels.Add(1)
		res.FirstMember = true
	}
	res.FirstOfUser = ch.addLocked(c)
	s.subs.Add(1)
	s.mu.Unlock()
	c.addSubLocked(ch)
	return res, nil
}

// LeaveResult is the outcome of Unsubscribe.
type LeaveResult struct {
	Removed    bool // false: c was not a member, nothing changed
	LastMember bool // the channel has no member left (and was reclaimed)
	LastOfUser bool // no other connection of c's user remains a member
}

// Unsubscribe removes c from channel. It costs O(chunk) element copies (see
// channel). On a removed connection it does nothing: Remove has taken or is
// taking c out of every channel.
func (r *Registry[T]) Unsubscribe(c *Conn[T], channelName string) LeaveResult {
	if c == nil {
		return LeaveResult{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed.Load() {
		return LeaveResult{}
	}
	i := c.findSubLocked(channelName)
	if i < 0 {
		return LeaveResult{}
	}
	emptied, userLeft := r.leaveLocked(c.subs[i], c)
	c.delSubLocked(i)
	return LeaveResult{Removed: true, LastMember: emptied, LastOfUser: userLeft}
}

// Members returns the current member snapshot of channel, never nil: an
// unknown channel gets one shared empty snapshot. It takes no lock and does
// not allocate; the snapshot stays valid and unchanged after later joins and
// leaves. Callers must not modify it.
func (r *Registry[T]) Members(channelName string) *Snapshot[T] {
	s, h := r.shardOf(channelName)
	if t := s.chans.Load(); t != nil {
		if ch := t.lookup(channelName, h); ch != nil {
			return ch.snap.Load()
		}
	}
	return r.empty
}

// ChannelUsers returns the distinct users with a connection in channel, in
// no order.
func (r *Registry[T]) ChannelUsers(channelName string) []string {
	s, h := r.shardOf(channelName)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.chans.Load()
	if t == nil {
		return nil
	}
	ch := t.lookup(channelName, h)
	if ch == nil {
		return nil
	}
	return ch.usersLocked(make([]string, 0, min(ch.n, 64)))
}

// UserConns appends the live connections of user to dst and returns it.
func (r *Registry[T]) UserConns(user string, dst []*Conn[T]) []*Conn[T] {
	s, _ := r.shardOf(user)
	s.mu.Lock()
	dst = append(dst, s.users[user]...)
	s.mu.Unlock()
	return dst
}

// UserConnCount returns the number of live connections of user.
func (r *Registry[T]) UserConnCount(user string) int {
	s, _ := r.shardOf(user)
	s.mu.Lock()
	n := len(s.users[user])
	s.mu.Unlock()
	return n
}

// IsOnline reports whether user has at least one live connection.
func (r *Registry[T]) IsOnline(user string) bool { return r.UserConnCount(user) > 0 }

// Counts is a point-in-time summary of a Registry. Under concurrent writes
// the four figures are each exact for some instant but not one common one.
type Counts struct {
	Conns, Users, Channels, Subscriptions int64
}

// Counts returns the registry's counts by summing per-shard atomic counters
// (NumShards*4 loads, no lock, no scan of entries).
func (r *Registry[T]) Counts() Counts {
	var c Counts
	for i := range r.shards {
		s := &r.shards[i]
		c.Conns += s.conns.Load()
		c.Users += s.nusers.Load()
		c.Channels += s.channels.Load()
		c.Subscriptions += s.subs.Load()
	}
	return c
}

// RangeShard calls fn for each live connection whose user hashes to shard i
// (0 <= i < NumShards) until fn returns false. It copies the shard's
// connections under the shard lock and calls fn with no lock held, so fn may
// call anything, Remove included; a connection removed after the copy is
// skipped if Removed already reports it, and one added after it is not
// visited. A sweeper visiting shards 0..NumShards-1 in turn covers every
// connection while blocking each shard only for the copy.
func (r *Registry[T]) RangeShard(i int, fn func(c *Conn[T]) bool) {
	if i < 0 || i >= NumShards {
		return
	}
	bp, _ := r.bufs.Get().(*[]*Conn[T])
	if bp == nil {
		bp = new([]*Conn[T])
	}
	buf := (*bp)[:0]
	s := &r.shards[i]
	s.mu.Lock()
	for _, list := range s.users {
		buf = append(buf, list...)
	}
	s.mu.Unlock()
	for _, c := range buf {
		if !c.Removed() && !fn(c) {
			break
		}
	}
	clear(buf)
	*bp = buf[:0]
	r.bufs.Put(bp)
}

// RangeChannels calls fn with each channel and its member count until fn
// returns false. Each shard is copied under its lock and fn runs with no lock
// held; channels changed meanwhile may be seen in either state.
func (r *Registry[T]) RangeChannels(fn func(channel string, members int) bool) {
	r.rangeCounts(func(s *shard[T], buf []nameCount) []nameCount {
		if t := s.chans.Load(); t != nil {
			for j := range t.slots {
				if ch := t.slots[j].Load(); ch != nil && ch != r.tomb {
					buf = append(buf, nameCount{ch.name, ch.n})
				}
			}
		}
		return buf
	}, fn)
}

// RangeUsers calls fn with each online user and its connection count until
// fn returns false, with the same consistency as RangeChannels.
func (r *Registry[T]) RangeUsers(fn func(user string, conns int) bool) {
	r.rangeCounts(func(s *shard[T], buf []nameCount) []nameCount {
		for u, list := range s.users {
			buf = append(buf, nameCount{u, len(list)})
		}
		return buf
	}, fn)
}

// nameCount is one entry RangeChannels or RangeUsers reports.
type nameCount struct {
	name string
	n    int
}

// rangeCounts copies each shard's entries with collect while holding that
// shard's lock, then calls fn on them with no lock held.
func (r *Registry[T]) rangeCounts(collect func(s *shard[T], buf []nameCount) []nameCount, fn func(string, int) bool) {
	var buf []nameCount
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		buf = collect(s, buf[:0])
		s.mu.Unlock()
		for _, e := range buf {
			if !fn(e.name, e.n) {
				return
			}
		}
	}
}
