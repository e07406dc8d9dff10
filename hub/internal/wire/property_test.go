package wire

import (
	"reflect"
	"slices"
	"testing"

	"github.com/gobwas/ws"
	"pgregory.net/rapid"
)

// genStream draws a stream of valid client frames written by gobwas/ws:
// messages split into fragments at any byte (also inside a character), with
// control frames between them, and the messages the stream must produce.
func genStream(t *rapid.T) ([]byte, []got) {
	size := rapid.OneOf(rapid.IntRange(0, 140), rapid.SampledFrom([]int{125, 126, 127, 65535, 65536, 70000}))
	var stream []byte
	var want []got
	control := func() {
		switch rapid.IntRange(0, 2).Draw(t, "control") {
		case 0:
			p := rapid.SliceOfN(rapid.Byte(), 0, 125).Draw(t, "ping")
			stream = append(stream, clientFrame(t, ws.OpPing, true, p)...)
			want = append(want, got{KindPing, string(p), 0})
		case 1:
			p := rapid.SliceOfN(rapid.Byte(), 0, 125).Draw(t, "pong")
			stream = append(stream, clientFrame(t, ws.OpPong, true, p)...)
			want = append(want, got{KindPong, string(p), 0})
		default:
			code := rapid.SampledFrom([]uint16{1000, 1001, 1011, 3000, 4999}).Draw(t, "code")
			reason := rapid.StringN(0, 30, 120).Draw(t, "reason")
			stream = append(stream, clientFrame(t, ws.OpClose, true, closeBody(code, reason))...)
			want = append(want, got{KindClose, reason, code})
		}
	}
	units := rapid.IntRange(1, 12).Draw(t, "units")
	for range units {
		if rapid.IntRange(0, 3).Draw(t, "isControl") == 0 {
			control()
			continue
		}
		n := size.Draw(t, "size")
		var payload []byte
		op, kind := ws.OpBinary, KindBinary
		// A short drawn pattern repeated to the size keeps big payloads
		// cheap to generate and to shrink.
		if rapid.Bool().Draw(t, "text") {
			op, kind = ws.OpText, KindText
			pattern := rapid.StringN(1, 8, -1).Draw(t, "text")
			for len(payload) < n {
				payload = append(payload, pattern...)
			}
		} else {
			pattern := rapid.SliceOfN(rapid.Byte(), 1, 16).Draw(t, "binary")
			for len(payload) < n {
				payload = append(payload, pattern...)
			}
			payload = payload[:n]
		}
		cuts := rapid.SliceOfN(rapid.IntRange(0, len(payload)), 0, 3).Draw(t, "fragments")
		slices.Sort(cuts)
		frags := cut(payload, cuts...)
		for i, f := range frags {
			fop := op
			if i > 0 {
				fop = ws.OpContinuation
			}
			stream = append(stream, clientFrame(t, fop, i == len(frags)-1, f)...)
			if i < len(frags)-1 && rapid.IntRange(0, 2).Draw(t, "interleave") == 0 {
				control()
			}
		}
		want = append(want, got{kind, string(payload), 0})
	}
	return stream, want
}

// TestParserSplitProperty feeds random valid streams whole and in random
// pieces: both must produce exactly the messages that were written, and the
// parser must end holding no buffer.
func TestParserSplitProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		stream, want := genStream(t)
		wantOut := outcome{Msgs: want}
		whole, p := feedPieces(t, 0, stream)
		if !reflect.DeepEqual(whole, wantOut) {
			t.Fatalf("whole: got %v, want %v", whole, wantOut)
		}
		if p.Pending() || p.buf != nil {
			t.Fatal("parser holds state after a complete stream")
		}
		cuts := rapid.SliceOfN(rapid.IntRange(0, len(stream)), 0, 40).Draw(t, "cuts")
		slices.Sort(cuts)
		split, p := feedPieces(t, 0, cut(stream, cuts...)...)
		if !reflect.DeepEqual(split, wantOut) {
			t.Fatalf("cut at %v: got %v, want %v", cuts, split, wantOut)
		}
		if p.Pending() || p.buf != nil {
			t.Fatal("parser holds state after a complete split stream")
		}
	})
}

// TestParserSplitPropertyInvalid appends a random (mostly invalid) masked
// frame header and payload to a valid stream and a random maxMessage: whole
// and split feeding must agree on messages and on the error.
func TestParserSplitPropertyInvalid(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		stream, _ := genStream(t)
		b0 := rapid.Byte().Draw(t, "b0")
		tail := rawFrame(b0, rapid.IntRange(0, 9).Draw(t, "masked") > 0, 0, rapid.SliceOfN(rapid.Byte(), 0, 200).Draw(t, "payload"))
		stream = append(stream, tail...)
		stream = append(stream, rapid.SliceOfN(rapid.Byte(), 0, 20).Draw(t, "junk")...)
		maxMessage := rapid.IntRange(-1, 70000).Draw(t, "maxMessage")
		whole, _ := feedPieces(t, maxMessage, stream)
		cuts := rapid.SliceOfN(rapid.IntRange(0, len(stream)), 0, 40).Draw(t, "cuts")
		slices.Sort(cuts)
		if split, _ := feedPieces(t, maxMessage, cut(stream, cuts...)...); !reflect.DeepEqual(split, whole) {
			t.Fatalf("cut at %v: got %v, whole gave %v", cuts, split, whole)
		}
	})
}
