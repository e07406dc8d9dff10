package hub

import (
	"testing"
	"unsafe"
)

// TestConnFitsSizeClass keeps the per-connection struct in the 208-byte
// allocation class: a field added carelessly costs 32 bytes a connection,
// 32 MB at a million.
func TestConnFitsSizeClass(t *testing.T) {
	if got := unsafe.Sizeof(conn{}); got > 208 {
		t.Fatalf("conn is %d bytes; keep it within 208 (pack new fields or move rare ones out)", got)
	}
}
