package shard

import "sync/atomic"

// table is one shard's channel index: an open-addressing hash table of
// atomic pointers, so that Members finds a channel without a lock and
// without allocating. Writers (holding the shard's mu) replace the whole
// table to grow or shrink it, and mark deleted slots with a tombstone so a
// reader probing past them still finds what lies beyond.
type table[T any] struct {
	slots []atomic.Pointer[channel[T]] // len is a power of two
	tomb  *channel[T]                  // the registry's deleted-slot marker

	// Guarded by the shard's mu.
	live int // channels in the table
	used int // live + tombstones; kept below 3/4 of len(slots)
}

// lookup returns the channel called name (hash h), or nil. It is safe
// without the shard's mu: it sees the table as some writer left it.
func (t *table[T]) lookup(name string, h uint64) *channel[T] {
	mask := uint64(len(t.slots) - 1)
	for i := (h >> 8) & mask; ; i = (i + 1) & mask {
		ch := t.slots[i].Load()
		if ch == nil {
			return nil
		}
		if ch.hash == h && ch != t.tomb && ch.name == name {
			return ch
		}
	}
}

// insertLocked adds ch, which must not be in the table, and returns the
// table to use from now on (t itself or a rehashed copy).
func (t *table[T]) insertLocked(ch *channel[T]) *table[T] {
	if (t.used+1)*4 > len(t.slots)*3 {
		t = t.resizedLocked(max(8, (t.live+1)*4))
	}
	mask := uint64(len(t.slots) - 1)
	for i := (ch.hash >> 8) & mask; ; i = (i + 1) & mask {
		cur := t.slots[i].Load()
		if cur == nil || cur == t.tomb {
			if cur == nil {
				t.used++
			}
			t.live++
			t.slots[i].Store(ch)
			return t
		}
	}
}

// deleteLocked removes ch, which must be in the table, and returns the table
// to use from now on: t, a smaller copy, or nil once it is empty.
func (t *table[T]) deleteLocked(ch *channel[T]) *table[T] {
	mask := uint64(len(t.slots) - 1)
	for i := (ch.hash >> 8) & mask; ; i = (i + 1) & mask {
		if t.slots[i].Load() == ch {
			t.slots[i].Store(t.tomb)
			break
		}
	}
	t.live--
	switch {
	case t.live == 0:
		return nil
	case len(t.slots) > 8 && t.live*8 < len(t.slots):
		return t.resizedLocked(t.live * 4)
	}
	return t
}

// resizedLocked returns a copy of t with at least size slots (rounded up to
// a power of two) and no tombstones.
func (t *table[T]) resizedLocked(size int) *table[T] {
	n := 8
	for n < size {
		n <<= 1
	}
	nt := &table[T]{slots: make([]atomic.Pointer[channel[T]], n), tomb: t.tomb}
	mask := uint64(n - 1)
	for i := range t.slots {
		ch := t.slots[i].Load()
		if ch == nil || ch == t.tomb {
			continue
		}
		j := (ch.hash >> 8) & mask
		for nt.slots[j].Load() != nil {
			j = (j + 1) & mask
		}
		nt.slots[j].Store(ch)
		nt.live++
		nt.used++
	}
	return nt
}
