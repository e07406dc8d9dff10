package shard

// Member storage constants. A channel with at most chunkSize members keeps
// them in one flat "head" slice that doubles from headMin; a larger channel
// keeps them in a two-level tree of fixed chunks (see channel).
const (
	chunkBits = 8
	chunkSize = 1 << chunkBits // members per chunk, the unit of copy-on-write
	chunkMask = chunkSize - 1
	midBits   = 6
	midSize   = 1 << midBits // chunks per mid node
	midMask   = midSize - 1
	headMin   = 4 // first capacity of a small channel's member slice
)

// leaf is one chunk of members; mid is one inner node of the member tree.
type (
	leaf[T any] [chunkSize]*Conn[T]
	mid[T any]  [midSize]*leaf[T]
)

// Snapshot is an immutable view of a channel's members at one instant,
// published by every join and leave. Loading it takes no lock and allocates
// nothing, and it stays valid (and unchanged) however long the reader keeps
// it, so a fan-out can iterate it while writers change the channel.
//
// Callers must not modify anything a Snapshot returns: the chunks share
// memory with the channel and with other snapshots.
type Snapshot[T any] struct {
	n    int
	head []*Conn[T] // the members, while top is nil (at most chunkSize)
	top  []*mid[T]  // the member tree, once the channel outgrew one chunk
}

// Len returns the number of members.
func (s *Snapshot[T]) Len() int { return s.n }

// NumChunks returns the number of chunks that partition the members: 0 for
// an empty snapshot, otherwise ceil(Len/256) (or 1 for a small channel).
func (s *Snapshot[T]) NumChunks() int {
	if s.top == nil {
		if s.n == 0 {
			return 0
		}
		return 1
	}
	return (s.n + chunkMask) >> chunkBits
}

// Chunk returns chunk i, 0 <= i < NumChunks. The chunks partition the
// members in no particular order; each holds at most 256 of them, so they
// are the natural unit of work for fan-out workers. The returned slice has no
// spare capacity and must not be modified.
func (s *Snapshot[T]) Chunk(i int) []*Conn[T] {
	if s.top == nil {
		return s.head[i<<chunkBits : s.n : s.n]
	}
	l := s.top[i>>midBits][i&midMask]
	if rem := s.n - i<<chunkBits; rem < chunkSize {
		return l[:rem:rem]
	}
	return l[:]
}

// All calls fn for each member until fn returns false.
func (s *Snapshot[T]) All(fn func(c *Conn[T]) bool) {
	for i, n := 0, s.NumChunks(); i < n; i++ {
		for _, c := range s.Chunk(i) {
			if !fn(c) {
				return
			}
		}
	}
}
