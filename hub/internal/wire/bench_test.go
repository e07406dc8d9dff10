package wire

import (
	"bytes"
	"testing"
)

var (
	frame100   = rawFrame(0x81, true, 0, bytes.Repeat([]byte("abcdefghij"), 10))
	frame16K   = rawFrame(0x82, true, 0, bytes.Repeat([]byte("0123456789abcdef"), 1024))
	publishCmd = []byte(`{"id":123,"op":"publish","channel":"chat.room.42","data":{"user":"u1","text":"hello there, how are you?"}}`)
	pingCmd    = []byte(`{"id":124,"op":"ping"}`)
	data100    = []byte(`{"user":"u123","text":"hello there, how are you doing today? fine thanks","ts":1732560000123,"n":7}`)
)

func nopMessage(Message) error { return nil }

func benchFeed(b *testing.B, frame []byte, at int) {
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	scratch := make([]byte, len(frame))
	var p Parser
	for b.Loop() {
		copy(scratch, frame) // Feed unmasks in place, as a read into the worker buffer would be refilled
		if at > 0 {
			if err := p.Feed(scratch[:at], 0, nopMessage); err != nil {
				b.Fatal(err)
			}
		}
		if err := p.Feed(scratch[at:], 0, nopMessage); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFeed100(b *testing.B)      { benchFeed(b, frame100, 0) }
func BenchmarkFeed100Split(b *testing.B) { benchFeed(b, frame100, 50) }
func BenchmarkFeed16K(b *testing.B)      { benchFeed(b, frame16K, 0) }
func BenchmarkFeed16KSplit(b *testing.B) { benchFeed(b, frame16K, 8000) }

func BenchmarkDecodeCommandPublish(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(publishCmd)))
	var c Command
	for b.Loop() {
		if err := DecodeCommand(publishCmd, &c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeCommandPing(b *testing.B) {
	b.ReportAllocs()
	var c Command
	for b.Loop() {
		if err := DecodeCommand(pingCmd, &c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendPush(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 256)
	for b.Loop() {
		buf = AppendPush(buf[:0], "chat.room.42", data100)
	}
}

func BenchmarkValidJSON100(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(data100)))
	for b.Loop() {
		if !ValidJSON(data100) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkValidChannel(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if !ValidChannel("chat.room.42") {
			b.Fatal("invalid")
		}
	}
}

// TestAllocs pins the allocation counts of the hot paths (net/http
// TestHeaderWriteSubsetAllocs style); -race adds its own, so it skips there.
func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	scratch := make([]byte, len(frame16K))
	var p Parser
	var c Command
	buf := make([]byte, 0, 256)
	junk := []byte(`{"id":1,`)
	tests := []struct {
		name string
		max  float64
		f    func()
	}{
		{"Feed whole", 0, func() { copy(scratch, frame100); p.Feed(scratch[:len(frame100)], 0, nopMessage) }},
		{"Feed split (pooled)", 0, func() {
			copy(scratch, frame16K)
			p.Feed(scratch[:8000], 0, nopMessage)
			p.Feed(scratch[8000:], 0, nopMessage)
		}},
		{"DecodeCommand publish", 1, func() { DecodeCommand(publishCmd, &c) }},
		{"DecodeCommand ping", 0, func() { DecodeCommand(pingCmd, &c) }},
		{"DecodeCommand junk", 0, func() { DecodeCommand(junk, &c) }},
		{"AppendPush", 0, func() { buf = AppendPush(buf[:0], "chat", data100) }},
		{"AppendError", 0, func() { buf = AppendError(buf[:0], 1, true, 400, "bad request") }},
		{"AppendFrame", 0, func() { buf = AppendFrame(buf[:0], KindText, data100) }},
		{"ValidJSON", 0, func() { ValidJSON(data100) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tt.f); n > tt.max {
				t.Fatalf("%v allocations per run, want at most %v", n, tt.max)
			}
		})
	}
}
