package wire

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/gobwas/ws"
)

func TestParserConformance(t *testing.T) {
	text := func(s string) []byte { return rawFrame(0x81, true, 0, []byte(s)) }
	long := func(n int) []byte { return bytes.Repeat([]byte("a"), n) }
	hiBit := cat([]byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1}, testMask[:])
	tests := []struct {
		name       string
		in         []byte
		maxMessage int
		want       []got
		code       uint16
	}{
		{name: "text", in: text("hello"), want: []got{{KindText, "hello", 0}}},
		{name: "empty text", in: text(""), want: []got{{KindText, "", 0}}},
		{name: "binary not utf8", in: rawFrame(0x82, true, 0, []byte{0xff, 0}), want: []got{{KindBinary, "\xff\x00", 0}}},
		{name: "unmasked", in: rawFrame(0x81, false, 0, []byte("hi")), code: 1002},
		{name: "rsv1", in: rawFrame(0xC1, true, 0, []byte("hi")), code: 1002},
		{name: "rsv2", in: rawFrame(0xA1, true, 0, []byte("hi")), code: 1002},
		{name: "rsv3", in: rawFrame(0x91, true, 0, []byte("hi")), code: 1002},
		{name: "opcode 3", in: rawFrame(0x83, true, 0, nil), code: 1002},
		{name: "opcode 7", in: rawFrame(0x87, true, 0, nil), code: 1002},
		{name: "opcode 0xB", in: rawFrame(0x8B, true, 0, nil), code: 1002},
		{name: "opcode 0xF", in: rawFrame(0x8F, true, 0, nil), code: 1002},
		{name: "ping 125", in: rawFrame(0x89, true, 0, long(125)), want: []got{{KindPing, string(long(125)), 0}}},
		{name: "ping 126", in: rawFrame(0x89, true, 0, long(126)), code: 1002},
		{name: "ping not fin", in: rawFrame(0x09, true, 0, nil), code: 1002},
		{name: "close not fin", in: rawFrame(0x08, true, 0, nil), code: 1002},
		{name: "pong", in: rawFrame(0x8A, true, 0, []byte("p")), want: []got{{KindPong, "p", 0}}},
		{name: "continuation without start", in: rawFrame(0x80, true, 0, []byte("x")), code: 1002},
		{name: "text inside fragmented", in: cat(rawFrame(0x01, true, 0, []byte("a")), text("b")), code: 1002},
		{name: "binary inside fragmented", in: cat(rawFrame(0x01, true, 0, []byte("a")), rawFrame(0x82, true, 0, nil)), code: 1002},
		{name: "fragmented with ping", in: cat(rawFrame(0x01, true, 0, []byte("he")), rawFrame(0x89, true, 0, []byte("p")),
			rawFrame(0x00, true, 0, []byte("l")), rawFrame(0x80, true, 0, []byte("lo"))),
			want: []got{{KindPing, "p", 0}, {KindText, "hello", 0}}},
		{name: "empty fragments", in: cat(rawFrame(0x02, true, 0, nil), rawFrame(0x00, true, 0, nil), rawFrame(0x80, true, 0, nil)),
			want: []got{{KindBinary, "", 0}}},
		{name: "invalid utf8", in: text("a\xffb"), code: 1007},
		{name: "surrogate utf8", in: text("\xed\xa0\x80"), code: 1007},
		{name: "truncated rune at end", in: text("a\xc3"), code: 1007},
		{name: "rune split over fragments", in: cat(rawFrame(0x01, true, 0, []byte("caf\xc3")), rawFrame(0x80, true, 0, []byte("\xa9"))),
			want: []got{{KindText, "café", 0}}},
		{name: "rune left open", in: cat(rawFrame(0x01, true, 0, []byte("caf\xc3")), rawFrame(0x80, true, 0, []byte("x"))), code: 1007},
		{name: "fail fast on invalid prefix", in: cat(rawFrame(0x01, true, 0, []byte("\xe0\x80")), rawFrame(0x89, true, 0, nil)), code: 1007},
		{name: "close empty", in: rawFrame(0x88, true, 0, nil), want: []got{{KindClose, "", 0}}},
		{name: "close 1 byte", in: rawFrame(0x88, true, 0, []byte{3}), code: 1002},
		{name: "close 1000 reason", in: rawFrame(0x88, true, 0, closeBody(1000, "bye")), want: []got{{KindClose, "bye", 1000}}},
		{name: "close reason not utf8", in: rawFrame(0x88, true, 0, closeBody(1000, "\xff")), code: 1007},
		{name: "64-bit length high bit", in: hiBit, code: 1002},
		{name: "non-minimal 16-bit length", in: rawFrame(0x81, true, 126, []byte("hi")), want: []got{{KindText, "hi", 0}}},
		{name: "non-minimal 64-bit length", in: rawFrame(0x81, true, 127, []byte("hi")), want: []got{{KindText, "hi", 0}}},
		{name: "16-bit length", in: rawFrame(0x82, true, 0, long(300)), want: []got{{KindBinary, string(long(300)), 0}}},
		{name: "64-bit length", in: rawFrame(0x82, true, 0, long(70000)), want: []got{{KindBinary, string(long(70000)), 0}}},
		{name: "at limit", in: text("0123456789"), maxMessage: 10, want: []got{{KindText, "0123456789", 0}}},
		{name: "frame over limit", in: text("0123456789a"), maxMessage: 10, code: 1009},
		{name: "message over limit", in: cat(rawFrame(0x01, true, 0, long(6)), rawFrame(0x80, true, 0, long(5))), maxMessage: 10, code: 1009},
		{name: "ping not counted in limit", in: cat(rawFrame(0x01, true, 0, long(6)), rawFrame(0x89, true, 0, long(20)), rawFrame(0x80, true, 0, long(4))),
			maxMessage: 10, want: []got{{KindPing, string(long(20)), 0}, {KindText, string(long(10)), 0}}},
		{name: "messages before error", in: cat(text("a"), text("b"), rawFrame(0x81, false, 0, nil)),
			want: []got{{KindText, "a", 0}, {KindText, "b", 0}}, code: 1002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := outcome{Msgs: tt.want, Code: tt.code}
			out, p := feedPieces(t, tt.maxMessage, tt.in)
			if !reflect.DeepEqual(out, want) {
				t.Fatalf("whole: got %v, want %v", out, want)
			}
			if p.buf != nil {
				t.Error("parser holds a buffer after the stream")
			}
			if len(tt.in) > 1000 {
				return
			}
			for i := 0; i <= len(tt.in); i++ {
				if out, _ := feedPieces(t, tt.maxMessage, cut(tt.in, i)...); !reflect.DeepEqual(out, want) {
					t.Fatalf("cut at %d: got %v, want %v", i, out, want)
				}
			}
			if out, _ := feedPieces(t, tt.maxMessage, bytes.SplitAfter(tt.in, nil)...); !reflect.DeepEqual(out, want) {
				t.Fatalf("byte by byte: got %v, want %v", out, want)
			}
		})
	}
}

func TestCloseCodes(t *testing.T) {
	valid := []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999}
	invalid := []uint16{0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}
	for _, c := range valid {
		out, _ := feedPieces(t, 0, rawFrame(0x88, true, 0, closeBody(c, "")))
		if out.Code != 0 || len(out.Msgs) != 1 || out.Msgs[0].Code != c {
			t.Errorf("code %d: got %v, want it accepted", c, out)
		}
	}
	for _, c := range invalid {
		if out, _ := feedPieces(t, 0, rawFrame(0x88, true, 0, closeBody(c, ""))); out.Code != 1002 {
			t.Errorf("code %d: got %v, want 1002", c, out)
		}
	}
}

func TestParserStickyErrorAndReset(t *testing.T) {
	var p Parser
	nop := func(Message) error { return nil }
	err := p.Feed(rawFrame(0x81, false, 0, nil), 0, nop)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 1002 || !strings.Contains(err.Error(), "1002") {
		t.Fatalf("got %v, want close 1002", err)
	}
	if err2 := p.Feed(rawFrame(0x81, true, 0, nil), 0, nop); err2 != err {
		t.Fatalf("after failure got %v, want the same error", err2)
	}
	p.Reset()
	if err := p.Feed(rawFrame(0x81, true, 0, nil), 0, nop); err != nil {
		t.Fatalf("after Reset: %v", err)
	}
}

func TestParserCallbackError(t *testing.T) {
	stop := errors.New("stop")
	var p Parser
	var n int
	err := p.Feed(cat(rawFrame(0x81, true, 0, []byte("a")), rawFrame(0x81, true, 0, []byte("b"))), 0, func(Message) error {
		n++
		return stop
	})
	if err != stop || n != 1 {
		t.Fatalf("got %v after %d calls, want stop after 1", err, n)
	}
}

// TestParserHoldsNothingIdle checks the pooled buffer exists only while a
// payload is incomplete.
func TestParserHoldsNothingIdle(t *testing.T) {
	var p Parser
	nop := func(Message) error { return nil }
	frame := rawFrame(0x81, true, 0, []byte("hello, world"))
	steps := []struct {
		in      []byte
		pending bool
		buffer  bool
	}{
		{frame[:1], true, false}, // partial header lives in the struct
		{frame[1:6], true, false},
		{frame[6:9], true, true},
		{frame[9:], false, false},
		{rawFrame(0x01, true, 0, []byte("frag")), true, true},
		{rawFrame(0x80, true, 0, nil), false, false},
	}
	for i, s := range steps {
		if err := p.Feed(bytes.Clone(s.in), 0, nop); err != nil {
			t.Fatal(err)
		}
		if p.Pending() != s.pending || (p.buf != nil) != s.buffer {
			t.Fatalf("step %d: Pending %v buffer %v, want %v %v", i, p.Pending(), p.buf != nil, s.pending, s.buffer)
		}
	}
	if err := p.Feed(rawFrame(0x02, true, 0, []byte("x")), 0, nop); err != nil {
		t.Fatal(err)
	}
	p.Reset()
	if p.Pending() || p.buf != nil {
		t.Fatal("Reset kept state")
	}
}

// TestParserAgainstGobwas feeds gobwas/ws-written client frames of every
// length encoding, whole and cut in the middle of header and payload.
func TestParserAgainstGobwas(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 1000, 65535, 65536, 200000} {
		payload := bytes.Repeat([]byte("xyzé"), n/5+1)[:n]
		for _, op := range []ws.OpCode{ws.OpBinary, ws.OpPing} {
			if op == ws.OpPing && n > 125 {
				continue
			}
			frame := clientFrame(t, op, true, payload)
			want := outcome{Msgs: []got{{Kind(op), string(payload), 0}}}
			for _, at := range []int{0, 1, 2, 5, len(frame) / 2, len(frame) - 1} {
				if at > len(frame) {
					continue
				}
				if out, _ := feedPieces(t, 0, cut(frame, at)...); !reflect.DeepEqual(out, want) {
					t.Fatalf("len %d op %v cut %d: got %d messages, code %d", n, op, at, len(out.Msgs), out.Code)
				}
			}
		}
	}
}

func TestAppendFrameReadByGobwas(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		payload := bytes.Repeat([]byte{'q'}, n)
		b := AppendFrame([]byte("prefix"), KindText, payload)[len("prefix"):]
		f, err := ws.ReadFrame(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if !f.Header.Fin || f.Header.Masked || f.Header.OpCode != ws.OpText || !bytes.Equal(f.Payload, payload) {
			t.Fatalf("len %d: got header %+v", n, f.Header)
		}
		if want := ws.HeaderSize(f.Header); len(b)-n != want {
			t.Fatalf("len %d: header %d bytes, want minimal %d", n, len(b)-n, want)
		}
	}
	long := strings.Repeat("é", 100)
	for _, tc := range []struct {
		code   uint16
		reason string
	}{{1000, ""}, {4008, "too slow"}, {1001, long}, {0, ""}} {
		f, err := ws.ReadFrame(bytes.NewReader(AppendClose(nil, tc.code, tc.reason)))
		if err != nil {
			t.Fatal(err)
		}
		if f.Header.OpCode != ws.OpClose || len(f.Payload) > 125 {
			t.Fatalf("close %d: bad frame %+v", tc.code, f.Header)
		}
		if tc.code == 0 {
			if len(f.Payload) != 0 {
				t.Fatal("code 0 must send an empty body")
			}
			continue
		}
		code, reason := ws.ParseCloseFrameData(f.Payload)
		if uint16(code) != tc.code || !strings.HasPrefix(tc.reason, reason) || !utf8Valid(reason) {
			t.Fatalf("close %d %q: got %d %q", tc.code, tc.reason, code, reason)
		}
	}
}

func utf8Valid(s string) bool {
	_, ok := utf8Prefix([]byte(s))
	return ok && !strings.HasSuffix(s, "\xc3")
}

func TestAppendFrameHeaderPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"bad kind":     func() { AppendFrameHeader(nil, Kind(3), 0) },
		"negative":     func() { AppendFrameHeader(nil, KindText, -1) },
		"long control": func() { AppendFrameHeader(nil, KindPing, 126) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}

func TestUTF8Prefix(t *testing.T) {
	tests := []struct {
		in string
		n  int
		ok bool
	}{
		{"", 0, true}, {"abc", 3, true}, {"a\xc3", 1, true}, {"a\xc3\xa9", 3, true},
		{"\xe2\x82", 0, true}, {"\xe0\x80", 0, false}, {"\xed\xa0", 0, false}, {"\xf4\x90", 0, false},
		{"\xf0\x9f\x98", 0, true}, {"\xf0\x9f\x98\x80", 4, true}, {"\xc0", 0, false}, {"\xff", 0, false},
		{"\x80", 0, false}, {"a\x80\x80\x80", 0, false},
	}
	for _, tt := range tests {
		n, ok := utf8Prefix([]byte(tt.in))
		if ok != tt.ok || (ok && n != tt.n) {
			t.Errorf("%q: got %d %v, want %d %v", tt.in, n, ok, tt.n, tt.ok)
		}
	}
}

// TestParserSize keeps the per-connection cost of an idle parser in view.
func TestParserSize(t *testing.T) {
	if n := unsafe.Sizeof(Parser{}); n > 64 {
		t.Fatalf("Parser is %d bytes, want at most 64", n)
	}
}
