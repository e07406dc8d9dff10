package wire

import (
	"math/bits"
	"sync"
)

// Buffers for partial frames come from power-of-two size classes between
// 512 B and 1 MiB, one sync.Pool each, so that a connection holds memory only
// while a frame or message is actually incomplete (nats nbPoolGet follows the
// same idea). Larger buffers are allocated directly and left to the GC: they
// are rare and pooling them would pin big blocks.
const (
	minClassShift = 9  // 512 B
	maxClassShift = 20 // 1 MiB
	numClasses    = maxClassShift - minClassShift + 1
)

var pools [numClasses]sync.Pool

// classOf returns the size class whose buffers hold n bytes; numClasses or
// more means n is beyond the largest class.
func classOf(n int) int {
	if n <= 1<<minClassShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minClassShift
}

// getBuf returns an empty buffer with a capacity of at least n bytes. The
// pointer is what travels through the pool, so putting it back allocates
// nothing.
func getBuf(n int) *[]byte {
	c := classOf(n)
	if c >= numClasses {
		b := make([]byte, 0, n)
		return &b
	}
	if v := pools[c].Get(); v != nil {
		bp := v.(*[]byte)
		*bp = (*bp)[:0]
		return bp
	}
	b := make([]byte, 0, 1<<(c+minClassShift))
	return &b
}

// putBuf returns a buffer obtained from getBuf to its class; buffers of any
// other capacity are dropped.
func putBuf(bp *[]byte) {
	c := cap(*bp)
	if c < 1<<minClassShift || c > 1<<maxClassShift || c&(c-1) != 0 {
		return
	}
	pools[bits.Len(uint(c))-1-minClassShift].Put(bp)
}
