package shard

import "sync/atomic"

// smallChannel is the member count up to which a channel keeps no member
// index and answers "where is c" and "is user u here" by a linear scan.
// Above it, the channel builds its index maps; it drops them again below
// smallChannel/2, so a channel hovering at the threshold does not thrash.
const smallChannel = 16

// channel is one channel's members, living in the shard its name hashes to.
//
// Members are stored in a copy-on-write array readers see through snap.
// While small (n <= chunkSize) it is one flat slice, head; then it is a
// two-level tree: top -> mid (64 chunks) -> leaf (256 members). Every slot
// a published snapshot can see is immutable. A join writes slot n, which no
// snapshot can see, in place when the array has room and that slot was never
// visible before (the *HW "high-water marks" record how far each array on the
// rightmost path has ever been published), and then publishes a new
// Snapshot header: O(1) amortised. A leave moves the last member into the
// leaver's slot, which readers can see, so it copies that chunk, its mid and
// the top: O(chunkSize + midSize + n/(chunkSize*midSize)) element copies,
// about 320 for n <= 16384 and 380 for n = 1,000,000.
type channel[T any] struct {
	name string
	hash uint64
	snap atomic.Pointer[Snapshot[T]] // never nil

	// The fields below are guarded by the mu of the channel's shard.

	n    int
	head []*Conn[T] // members while top == nil; len == cap, slots >= n are garbage
	top  []*mid[T]  // len == cap; entries past the last mid are garbage

	// High-water marks: slots [0, hw) of the current head / last leaf / last
	// mid / top have been visible in some published snapshot and must not be
	// written in place. An array made during the current operation has 0.
	headHW, tailHW, midHW, topHW int

	index map[*Conn[T]]int32 // member -> position; nil while small
	users map[string]int32   // user -> members of that user; nil while small
}

// copyCount, when set by a test, counts member pointers copied by
// copy-on-write; it lets the complexity test assert on work, not time.
var copyCount *atomic.Int64

// copyConns copies src into dst, counting the copy when a test asks to.
func copyConns[T any](dst, src []*Conn[T]) {
	copy(dst, src)
	if copyCount != nil {
		copyCount.Add(int64(len(src)))
	}
}

// at returns the member at position p < n.
func (ch *channel[T]) at(p int) *Conn[T] {
	if ch.top == nil {
		return ch.head[p]
	}
	return ch.top[p>>(chunkBits+midBits)][(p>>chunkBits)&midMask][p&chunkMask]
}

// numLeaves returns the number of chunks in use in tree mode.
func (ch *channel[T]) numLeaves() int { return (ch.n + chunkMask) >> chunkBits }

// numMids returns the number of mid nodes in use in tree mode.
func (ch *channel[T]) numMids() int { return (ch.numLeaves() + midMask) >> midBits }

// pushLocked appends c at position n. It costs O(1) amortised: a small
// channel's slice doubles; a tree writes an unpublished slot in place. After
// a leave the tail slot may have been visible, which costs one chunk copy.
func (ch *channel[T]) pushLocked(c *Conn[T]) {
	p := ch.n
	switch {
	case ch.top == nil && p < chunkSize:
		if p < len(ch.head) && p >= ch.headHW {
			ch.head[p] = c
			break
		}
		size := len(ch.head)
		if p >= size {
			size = max(headMin, 2*size)
		}
		nh := make([]*Conn[T], size)
		copyConns(nh, ch.head[:p])
		nh[p] = c
		ch.head, ch.headHW = nh, 0
	case ch.top == nil:
		// The head is full (len == chunkSize) and becomes chunk 0 as is: it
		// is never written in place again, as it is no longer the tail.
		m := new(mid[T])
		m[0] = (*leaf[T])(ch.head)
		l := new(leaf[T])
		l[0] = c
		m[1] = l
		ch.top = []*mid[T]{m}
		ch.head = nil
		ch.tailHW, ch.midHW, ch.topHW = 0, 0, 0
	default:
		li, o := p>>chunkBits, p&chunkMask
		if o == 0 {
			l := new(leaf[T])
			l[0] = c
			ch.tailHW = 0
			ch.setLeafLocked(li, l)
			break
		}
		tail := ch.top[li>>midBits][li&midMask]
		if o >= ch.tailHW {
			tail[o] = c
			break
		}
		l := new(leaf[T])
		copyConns(l[:o], tail[:o])
		l[o] = c
		ch.tailHW = 0
		ch.setLeafLocked(li, l)
	}
	ch.n++
}

// setLeafLocked makes l chunk li, which is either an existing chunk or the
// next one (li == numLeaves). It copies the mid node and the top unless the
// entry it writes was never visible.
func (ch *channel[T]) setLeafLocked(li int, l *leaf[T]) {
	mi, j := li>>midBits, li&midMask
	nmids := ch.numMids()
	if mi == nmids { // a new mid node; only the push of a new chunk gets here
		m := new(mid[T])
		m[0] = l
		ch.midHW = 0
		ch.setMidLocked(mi, m)
		return
	}
	m := ch.top[mi]
	last := mi == nmids-1
	if last && j >= ch.midHW {
		m[j] = l
		return
	}
	vis := min(midSize, ch.numLeaves()-mi<<midBits)
	nm := new(mid[T])
	copy(nm[:vis], m[:vis])
	if copyCount != nil {
		copyCount.Add(int64(vis))
	}
	nm[j] = l
	if last {
		ch.midHW = 0
	}
	ch.setMidLocked(mi, nm)
}

// setMidLocked makes m mid node mi, which is either an existing one or the
// next one (mi == numMids), copying the top unless that entry was never
// visible.
func (ch *channel[T]) setMidLocked(mi int, m *mid[T]) {
	if mi < len(ch.top) && mi >= ch.topHW {
		ch.top[mi] = m
		return
	}
	size := len(ch.top)
	if mi >= size {
		size *= 2
	}
	nmids := min(ch.numMids(), size)
	nt := make([]*mid[T], size)
	copy(nt[:nmids], ch.top[:nmids])
	if copyCount != nil {
		copyCount.Add(int64(nmids))
	}
	nt[mi] = m
	ch.top, ch.topHW = nt, 0
}

// removeAtLocked removes the member at position p < n by moving the last
// member into its place, and returns the member moved (nil if p was last).
// It copies at most one chunk, one mid node and the top.
func (ch *channel[T]) removeAtLocked(p int) (moved *Conn[T]) {
	last := ch.n - 1
	if p != last {
		moved = ch.at(last)
		if ch.top == nil {
			nh := make([]*Conn[T], len(ch.head))
			copyConns(nh[:last], ch.head[:last])
			nh[p] = moved
			ch.head, ch.headHW = nh, 0
		} else {
			li, o := p>>chunkBits, p&chunkMask
			old := ch.top[li>>midBits][li&midMask]
			vis := min(chunkSize, last-li<<chunkBits) // what stays visible in chunk li
			l := new(leaf[T])
			copyConns(l[:vis], old[:vis])
			l[o] = moved
			if li == ch.numLeaves()-1 {
				ch.tailHW = 0
			}
			ch.setLeafLocked(li, l)
		}
	}
	ch.n--
	if ch.top != nil && ch.n > 0 && ch.n&chunkMask == 0 {
		// The tail chunk emptied; the new tail (and, if the last mid node
		// emptied too, the new last mid) was fully visible.
		ch.tailHW = chunkSize
		if ch.numLeaves()&midMask == 0 {
			ch.midHW = midSize
		}
	}
	return moved
}

// publishLocked stores a snapshot of the current members and raises the
// high-water marks to what it makes visible.
func (ch *channel[T]) publishLocked() {
	s := &Snapshot[T]{n: ch.n, head: ch.head, top: ch.top}
	if ch.top == nil {
		ch.headHW = max(ch.headHW, ch.n)
	} else if ch.n > 0 {
		li := (ch.n - 1) >> chunkBits
		mi := li >> midBits
		ch.tailHW = max(ch.tailHW, ch.n-li<<chunkBits)
		ch.midHW = max(ch.midHW, li+1-mi<<midBits)
		ch.topHW = max(ch.topHW, mi+1)
	}
	ch.snap.Store(s)
}

// addLocked makes c a member (it must not be one) and publishes. It reports
// whether c is the first member of its user.
func (ch *channel[T]) addLocked(c *Conn[T]) (firstOfUser bool) {
	if ch.index != nil {
		ch.index[c] = int32(ch.n)
		k := ch.users[c.user]
		ch.users[c.user] = k + 1
		firstOfUser = k == 0
	} else {
		firstOfUser = ch.countUserLocked(c.user) == 0
	}
	ch.pushLocked(c)
	if ch.index == nil && ch.n > smallChannel {
		ch.index = make(map[*Conn[T]]int32, ch.n)
		ch.users = make(map[string]int32, ch.n)
		for p := 0; p < ch.n; p++ {
			m := ch.at(p)
			ch.index[m] = int32(p)
			ch.users[m.user]++
		}
	}
	ch.publishLocked()
	return firstOfUser
}

// delLocked removes member c and, unless the channel emptied, publishes. It
// reports whether c's user has no member left. It returns ok=false if c was
// not a member.
func (ch *channel[T]) delLocked(c *Conn[T]) (userLeft, ok bool) {
	p := -1
	if ch.index != nil {
		if i, found := ch.index[c]; found {
			p = int(i)
		}
	} else {
		for i := 0; i < ch.n; i++ {
			if ch.at(i) == c {
				p = i
				break
			}
		}
	}
	if p < 0 {
		return false, false
	}
	moved := ch.removeAtLocked(p)
	if ch.index != nil {
		delete(ch.index, c)
		if moved != nil {
			ch.index[moved] = int32(p)
		}
		k := ch.users[c.user] - 1
		if k == 0 {
			delete(ch.users, c.user)
		} else {
			ch.users[c.user] = k
		}
		userLeft = k == 0
		if ch.n <= smallChannel/2 {
			ch.index, ch.users = nil, nil
		}
	} else {
		userLeft = ch.countUserLocked(c.user) == 0
	}
	if ch.n > 0 {
		ch.publishLocked()
	}
	return userLeft, true
}

// countUserLocked counts the members of user by a scan; only for small
// channels.
func (ch *channel[T]) countUserLocked(user string) int {
	k := 0
	for p := 0; p < ch.n; p++ {
		if ch.at(p).user == user {
			k++
		}
	}
	return k
}

// usersLocked appends the distinct users of the channel to dst.
func (ch *channel[T]) usersLocked(dst []string) []string {
	if ch.users != nil {
		for u := range ch.users {
			dst = append(dst, u)
		}
		return dst
	}
	start := len(dst)
outer:
	for p := 0; p < ch.n; p++ {
		u := ch.at(p).user
		for _, seen := range dst[start:] {
			if seen == u {
				continue outer
			}
		}
		dst = append(dst, u)
	}
	return dst
}
