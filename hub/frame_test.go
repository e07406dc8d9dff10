package hub

import (
	"bytes"
	"strings"
	"testing"

	"github.com/roost-rt/roost/hub/internal/wire"
)

// framed must produce exactly what wire.AppendFrame does, for every header
// length (7-bit, 16-bit and 64-bit payload lengths).
func TestFramedMatchesAppendFrame(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 200000} {
		payload := []byte(strings.Repeat("p", n))
		got := framed(append(frameBuf(n), payload...))
		want := wire.AppendFrame(nil, wire.KindText, payload)
		if !bytes.Equal(got, want) {
			t.Fatalf("payload %d: framed differs from AppendFrame", n)
		}
	}
}
