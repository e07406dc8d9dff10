package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/gobwas/ws"
)

// tb is the part of testing.TB the helpers use; *rapid.T has it too.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

var _ tb = (testing.TB)(nil)

// got is one delivered message, copied out of the callback.
type got struct {
	Kind    Kind
	Payload string
	Code    uint16
}

func (g got) String() string { return fmt.Sprintf("%v(%q,%d)", g.Kind, g.Payload, g.Code) }

// outcome is everything a stream produced: the messages and the close code
// of the protocol error that ended it (0 if none).
type outcome struct {
	Msgs []got
	Code uint16
}

// feedPieces feeds copies of the pieces of a stream to a fresh Parser.
func feedPieces(tb tb, maxMessage int, pieces ...[]byte) (outcome, *Parser) {
	tb.Helper()
	var p Parser
	var out outcome
	fn := func(m Message) error {
		out.Msgs = append(out.Msgs, got{m.Kind, string(m.Payload), m.CloseCode})
		return nil
	}
	for _, piece := range pieces {
		err := p.Feed(bytes.Clone(piece), maxMessage, fn)
		if err != nil {
			var ce *CloseError
			if !errors.As(err, &ce) {
				tb.Fatalf("Feed returned %T %v, want *CloseError", err, err)
			}
			out.Code = ce.Code
			break
		}
	}
	return out, &p
}

// cut splits b at the given sorted offsets.
func cut(b []byte, at ...int) [][]byte {
	var pieces [][]byte
	prev := 0
	for _, a := range at {
		pieces = append(pieces, b[prev:a])
		prev = a
	}
	return append(pieces, b[prev:])
}

// clientFrame encodes a masked client frame with gobwas/ws, an independent
// implementation.
func clientFrame(tb tb, op ws.OpCode, fin bool, payload []byte) []byte {
	tb.Helper()
	f := ws.MaskFrameInPlace(ws.NewFrame(op, fin, bytes.Clone(payload)))
	var buf bytes.Buffer
	if err := ws.WriteFrame(&buf, f); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

var testMask = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// rawFrame builds a frame by hand, for headers gobwas/ws refuses to write.
// lenEnc forces the length encoding (126 or 127), 0 picks the shortest.
func rawFrame(b0 byte, masked bool, lenEnc int, payload []byte) []byte {
	n := len(payload)
	b1 := byte(0)
	if masked {
		b1 = 0x80
	}
	out := []byte{b0}
	switch {
	case lenEnc == 127 || (lenEnc == 0 && n > 0xFFFF):
		out = binary.BigEndian.AppendUint64(append(out, b1|127), uint64(n))
	case lenEnc == 126 || (lenEnc == 0 && n > 125):
		out = binary.BigEndian.AppendUint16(append(out, b1|126), uint16(n))
	default:
		out = append(out, b1|byte(n))
	}
	if !masked {
		return append(out, payload...)
	}
	out = append(out, testMask[:]...)
	start := len(out)
	out = append(out, payload...)
	for i := start; i < len(out); i++ {
		out[i] ^= testMask[(i-start)%4]
	}
	return out
}

func closeBody(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
