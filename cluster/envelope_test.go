package cluster

import (
	"bytes"
	"testing"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		e    envelope
	}{
		{"channel", envelope{kind: kindChannel, origin: "n1", target: "news", exclude: "bob", data: []byte(`{"a":1}`)}},
		{"user, empty data", envelope{kind: kindUser, origin: "n1", target: "ann"}},
		{"disconnect", envelope{kind: kindDisconnect, origin: "node", target: "u"}},
		{"long fields", envelope{kind: kindChannel, origin: string(bytes.Repeat([]byte("o"), 300)), target: "t", data: bytes.Repeat([]byte("x"), 70000)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeEnvelope(appendEnvelope(nil, &tt.e))
			if err != nil {
				t.Fatal(err)
			}
			if got.kind != tt.e.kind || got.origin != tt.e.origin || got.target != tt.e.target || got.exclude != tt.e.exclude || !bytes.Equal(got.data, tt.e.data) {
				t.Fatalf("got %+v, want %+v", got, tt.e)
			}
		})
	}
}

func TestDecodeEnvelopeRejects(t *testing.T) {
	for _, b := range [][]byte{nil, {1}, {2, 'c', 1, 'a', 1, 'b', 0}, {1, 'z', 1, 'a', 1, 'b', 0}, {1, 'c', 5, 'a'}, {1, 'c', 0, 1, 'b', 0}, {1, 'c', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		if _, err := decodeEnvelope(b); err == nil {
			t.Errorf("decodeEnvelope(%q) accepted", b)
		}
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(appendEnvelope(nil, &envelope{kind: kindChannel, origin: "n", target: "c", data: []byte("1")}))
	f.Add([]byte{1, 'u', 1, 'n', 1, 'u', 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEnvelope(b)
		if err != nil {
			return
		}
		again, err := decodeEnvelope(appendEnvelope(nil, &e))
		if err != nil || again.origin != e.origin || again.target != e.target || again.exclude != e.exclude || !bytes.Equal(again.data, e.data) {
			t.Fatalf("re-encoding %q changed it: %+v vs %+v (%v)", b, e, again, err)
		}
	})
}
