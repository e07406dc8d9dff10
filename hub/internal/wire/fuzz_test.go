package wire

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// FuzzParser feeds arbitrary bytes whole and in pieces (lengths taken from
// cuts): it must never panic and both ways must give the same outcome.
func FuzzParser(f *testing.F) {
	f.Add(rawFrame(0x81, true, 0, []byte("hello")), []byte{1, 3}, uint16(0))
	f.Add(cat(rawFrame(0x01, true, 0, []byte("caf\xc3")), rawFrame(0x89, true, 0, []byte("p")), rawFrame(0x80, true, 0, []byte("\xa9"))), []byte{4, 0, 7, 2}, uint16(0))
	f.Add(rawFrame(0x82, true, 127, bytes.Repeat([]byte{7}, 300)), []byte{9, 200}, uint16(100))
	f.Add(rawFrame(0x88, true, 0, closeBody(1000, "bye")), []byte{2}, uint16(0))
	f.Add(rawFrame(0x81, false, 0, []byte("x")), []byte{}, uint16(0))
	f.Add([]byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}, []byte{5}, uint16(0))
	f.Fuzz(func(t *testing.T, data, cuts []byte, maxMessage uint16) {
		whole, _ := feedPieces(t, int(maxMessage), data)
		var pieces [][]byte
		rest := data
		for _, c := range cuts {
			n := min(int(c), len(rest))
			pieces = append(pieces, rest[:n])
			rest = rest[n:]
		}
		pieces = append(pieces, rest)
		split, p := feedPieces(t, int(maxMessage), pieces...)
		if !reflect.DeepEqual(split, whole) {
			t.Fatalf("pieces gave %v, whole gave %v", split, whole)
		}
		if !p.Pending() && p.buf != nil {
			t.Fatal("buffer held with nothing pending")
		}
	})
}

// FuzzDecodeCommand checks DecodeCommand never panics, fails on invalid
// JSON, returns data that is valid JSON, and agrees with encoding/json on
// id, op and channel.
func FuzzDecodeCommand(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"op":"subscribe","channel":"news"}`,
		`{"id":3,"op":"publish","channel":"chat","data":{"a":[1,"x",null,true]}}`,
		`{"id":-5,"op":"ping","x":[{"y":"\u00e9\ud83d\ude00"}]}`,
		`{"\u0069d":2,"op":"unsub\u0073cribe","channel":"\ud800x"}`,
		`{"op":"refresh","token":"abc","exclude_self":false}`,
		`{"id":1.5}`, `[]`, `{"op":"x"`, `{"id":99999999999999999999}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Command
		err := DecodeCommand(b, &c)
		if err != nil {
			return
		}
		if !json.Valid(b) || !utf8.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		if c.Data != nil && !ValidJSON(c.Data) {
			t.Fatalf("data %q is not valid JSON", c.Data)
		}
		if c.Op == OpUnknown || (c.Channel != "" && !ValidChannel(c.Channel)) {
			t.Fatalf("accepted %+v", c)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		var id int64
		hasID := m["id"] != nil && string(m["id"]) != "null"
		if hasID {
			if err := json.Unmarshal(m["id"], &id); err != nil {
				t.Fatalf("encoding/json rejects id %s: %v", m["id"], err)
			}
		}
		var op, channel string
		if m["op"] != nil {
			json.Unmarshal(m["op"], &op)
		}
		if m["channel"] != nil {
			json.Unmarshal(m["channel"], &channel)
		}
		if c.HasID != hasID || c.ID != id || c.OpName != op || c.Channel != channel {
			t.Fatalf("got id %d/%v op %q channel %q, encoding/json says %d/%v %q %q", c.ID, c.HasID, c.OpName, c.Channel, id, hasID, op, channel)
		}
	})
}

// FuzzValidChannel compares ValidChannel with its definition.
func FuzzValidChannel(f *testing.F) {
	for _, s := range []string{"news", "a b", "café", "\xff", "\u00a0", "😀", "", "a\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := len(s) >= 1 && len(s) <= 255 && utf8.ValidString(s)
		for _, r := range s {
			want = want && unicode.IsPrint(r) && !unicode.IsSpace(r)
		}
		if got := ValidChannel(s); got != want {
			t.Fatalf("ValidChannel(%q) = %v, want %v", s, got, want)
		}
		if push := AppendPush(nil, s, []byte("1")); !ValidJSON(push) {
			t.Fatalf("push for %q is not valid JSON: %s", s, push)
		}
	})
}

// FuzzValidJSON compares ValidJSON with encoding/json plus UTF-8 validity.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5e3,"x\n",true,null]}`, `[`, `"\ud800"`, "\"\xff\"", ` 0 `, `-01`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := ValidJSON(b), json.Valid(b) && utf8.Valid(b); got != want {
			t.Fatalf("ValidJSON(%q) = %v, want %v", b, got, want)
		}
	})
}

// FuzzAppendFrame checks outbound frames read back with gobwas/ws.
func FuzzAppendFrame(f *testing.F) {
	f.Add([]byte("hi"), uint16(1000), "bye")
	f.Fuzz(func(t *testing.T, payload []byte, code uint16, reason string) {
		fr, err := ws.ReadFrame(bytes.NewReader(AppendFrame(nil, KindBinary, payload)))
		if err != nil || !bytes.Equal(fr.Payload, payload) {
			t.Fatalf("frame read back as %v, %v", fr.Header, err)
		}
		fr, err = ws.ReadFrame(bytes.NewReader(AppendClose(nil, code, reason)))
		if err != nil || len(fr.Payload) > 125 {
			t.Fatalf("close read back as %v, %v", fr.Header, err)
		}
	})
}
