package shard

import (
	"sync"
	"sync/atomic"
	"time"
)

// smallSet is the number of channels a Conn tracks with a linear scan; a Conn
// in more channels also keeps a name index so that Unsubscribe stays O(1).
const smallSet = 16

// Conn is the registry's record of one connection, allocated by Add. Value
// is the caller's object (the hub stores its own connection there); the
// registry never reads it. A Conn is concurrency-safe: its metadata is
// immutable after Add, LastActive and Removed are atomic, and the channel
// set is guarded by the Conn's own mu.
type Conn[T any] struct {
	// Value is the caller's object, set by Add and never touched again by the
	// registry. The caller may read it without synchronisation; writes after
	// Add are the caller's business.
	Value T

	id          uint64
	user        string
	remoteAddr  string
	connectedAt int64 // unix nanoseconds
	lastActive  atomic.Int64
	removed     atomic.Bool

	// userPos is the index of this Conn in its user's connection list,
	// guarded by the mu of the user's shard; it makes removal O(1).
	userPos int32

	// mu guards subs and subIdx, and serialises Subscribe, Unsubscribe and
	// Remove of this Conn, so that a Remove never races a join into a ghost.
	// Lock order: a Conn's mu before any shard's mu (docs/locking.md).
	mu     sync.Mutex
	subs   []*channel[T]    // the channels joined, in no order
	subIdx map[string]int32 // channel name -> index in subs; nil while len(subs) <= smallSet
}

// ID returns the connection's identifier: unique within the process, taken
// from an atomic counter by Add and never reused.
func (c *Conn[T]) ID() uint64 { return c.id }

// User returns the user the connection belongs to.
func (c *Conn[T]) User() string { return c.user }

// RemoteAddr returns the remote address given to Add.
func (c *Conn[T]) RemoteAddr() string { return c.remoteAddr }

// ConnectedAt returns the time Add registered the connection.
func (c *Conn[T]) ConnectedAt() time.Time { return time.Unix(0, c.connectedAt) }

// LastActive returns the last activity time in unix nanoseconds, as stored by
// Touch (initially the time of Add). It is an atomic load, cheap enough for a
// liveness sweep over every connection.
func (c *Conn[T]) LastActive() int64 { return c.lastActive.Load() }

// Touch records activity at nowNanos (unix nanoseconds). It takes no lock,
// so the read path may call it for every frame.
func (c *Conn[T]) Touch(nowNanos int64) { c.lastActive.Store(nowNanos) }

// Removed reports whether Remove has started on the connection. Once true,
// Subscribe fails with ErrRemoved and the connection leaves every channel
// before Remove returns.
func (c *Conn[T]) Removed() bool { return c.removed.Load() }

// Channels returns a copy of the names of the channels the connection is in.
func (c *Conn[T]) Channels() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, len(c.subs))
	for i, ch := range c.subs {
		names[i] = ch.name
	}
	return names
}

// NumChannels returns the number of channels the connection is in.
func (c *Conn[T]) NumChannels() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.subs)
}

// findSubLocked returns the index of channel name in c.subs, or -1.
func (c *Conn[T]) findSubLocked(name string) int {
	if c.subIdx != nil {
		if i, ok := c.subIdx[name]; ok {
			return int(i)
		}
		return -1
	}
	for i, ch := range c.subs {
		if ch.name == name {
			return i
		}
	}
	return -1
}

// addSubLocked records that c joined ch.
func (c *Conn[T]) addSubLocked(ch *channel[T]) {
	c.subs = append(c.subs, ch)
	switch {
	case c.subIdx != nil:
		c.subIdx[ch.name] = int32(len(c.subs) - 1)
	case len(c.subs) > smallSet:
		c.subIdx = make(map[string]int32, len(c.subs))
		for i, s := range c.subs {
			c.subIdx[s.name] = int32(i)
		}
	}
}

// delSubLocked forgets subs[i] by moving the last entry into its place.
func (c *Conn[T]) delSubLocked(i int) {
	last := len(c.subs) - 1
	name := c.subs[i].name
	if i != last {
		c.subs[i] = c.subs[last]
		if c.subIdx != nil {
			c.subIdx[c.subs[i].name] = int32(i)
		}
	}
	c.subs[last] = nil
	c.subs = c.subs[:last]
	if c.subIdx != nil {
		delete(c.subIdx, name)
		if len(c.subs) <= smallSet/2 {
			c.subIdx = nil
		}
	}
	if len(c.subs) == 0 {
		c.subs = nil
	}
}
