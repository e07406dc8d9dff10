package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// serverFrame encodes one unmasked server frame.
func serverFrame(tb testing.TB, fin bool, op ws.OpCode, p []byte) []byte {
	tb.Helper()
	var b bytes.Buffer
	if err := ws.WriteFrame(&b, ws.Frame{Header: ws.Header{Fin: fin, OpCode: op, Length: int64(len(p))}, Payload: p}); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// recordingHandler is a frameHandler that keeps what it is given.
type recordingHandler struct {
	msgs  []string
	pings []string
}

func (h *recordingHandler) data(p []byte) { h.msgs = append(h.msgs, string(p)) }
func (h *recordingHandler) ping(p []byte) error {
	h.pings = append(h.pings, string(p))
	return nil
}

func TestFrameReader(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 70_000) // a 64-bit length header
	mid := bytes.Repeat([]byte("y"), 300)    // a 16-bit length header
	var stream []byte
	stream = append(stream, serverFrame(t, true, ws.OpText, []byte("one"))...)
	stream = append(stream, serverFrame(t, true, ws.OpPing, []byte("hb"))...)
	stream = append(stream, serverFrame(t, true, ws.OpText, mid)...)
	stream = append(stream, serverFrame(t, false, ws.OpText, []byte("fr"))...)
	stream = append(stream, serverFrame(t, true, ws.OpPong, nil)...)
	stream = append(stream, serverFrame(t, true, ws.OpContinuation, []byte("ag"))...)
	stream = append(stream, serverFrame(t, true, ws.OpBinary, big)...)
	want := []string{"one", string(mid), "frag", string(big)}

	// chunkings splits the stream into reads of various sizes, from one
	// byte at a time (every frame split across reads) to all at once (many
	// frames in one read).
	chunkings := []int{1, 2, 3, 7, 100, 4096, len(stream)}
	for _, size := range chunkings {
		t.Run(fmt.Sprintf("reads of %d", size), func(t *testing.T) {
			var f frameReader
			h := &recordingHandler{}
			for off := 0; off < len(stream); off += size {
				if err := f.feed(stream[off:min(off+size, len(stream))], h); err != nil {
					t.Fatalf("feed at %d: %v", off, err)
				}
			}
			if len(h.msgs) != len(want) {
				t.Fatalf("got %d messages, want %d", len(h.msgs), len(want))
			}
			for i := range want {
				if h.msgs[i] != want[i] {
					t.Fatalf("message %d = %.20q (len %d), want %.20q (len %d)", i, h.msgs[i], len(h.msgs[i]), want[i], len(want[i]))
				}
			}
			if len(h.pings) != 1 || h.pings[0] != "hb" {
				t.Fatalf("pings = %q", h.pings)
			}
			if f.pend != nil || f.frag != nil {
				t.Fatalf("state left after the last frame: pend %d bytes, frag %v", len(f.pend), f.frag != nil)
			}
		})
	}
}

func TestFrameReaderErrors(t *testing.T) {
	masked := appendClientFrame(nil, ws.OpText, []byte("hi"))
	huge := []byte{0x82, 127, 0, 0, 0, 0, 0x10, 0, 0, 0} // 256 MiB
	cases := []struct {
		name  string
		input []byte
		want  error
	}{
		{"masked frame", masked, errProtocol},
		{"reserved bits", []byte{0x80 | 0x40 | 0x1, 0}, errProtocol},
		{"unknown opcode", []byte{0x83, 0}, errProtocol},
		{"continuation without start", serverFrame(t, true, ws.OpContinuation, []byte("x")), errProtocol},
		{"frame over the limit", huge, errFrameLarge},
		{"close with code", serverFrame(t, true, ws.OpClose, []byte{0x0f, 0xa1}), &closeError{4001}},
		{"close without code", serverFrame(t, true, ws.OpClose, nil), &closeError{1005}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var f frameReader
			err := f.feed(c.input, &recordingHandler{})
			var ce, wantCE *closeError
			if errors.As(c.want, &wantCE) {
				if !errors.As(err, &ce) || ce.code != wantCE.code {
					t.Fatalf("err = %v, want close %d", err, wantCE.code)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

// sinkRecorder is a frameSink that keeps messages and ends per connection.
type sinkRecorder struct {
	mu   sync.Mutex
	msgs map[int][]string
	ends map[int]string // close key by connection
}

func newSinkRecorder() *sinkRecorder {
	return &sinkRecorder{msgs: map[int][]string{}, ends: map[int]string{}}
}

func (s *sinkRecorder) message(i int, p []byte, now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs[i] = append(s.msgs[i], string(p))
}

func (s *sinkRecorder) ended(i int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ends[i] = closeKey(err)
}

func (s *sinkRecorder) count(i int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs[i])
}

func (s *sinkRecorder) endedAs(i int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ends[i]
}

// connPair returns a harness wsConn and the server's end of its socket,
// both on loopback; the test plays the server with raw frames.
func connPair(tb testing.TB) (*wsConn, net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	srv, ok := <-accepted
	if !ok {
		tb.Fatal("accept failed")
	}
	tb.Cleanup(func() { srv.Close() })
	return &wsConn{nc: nc, buf: make([]byte, 512)}, srv
}

// readClientFrame reads one masked client frame from the server's end.
func readClientFrame(tb testing.TB, srv net.Conn) ws.Frame {
	tb.Helper()
	srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := ws.ReadFrame(srv)
	if err != nil {
		tb.Fatalf("reading the client's frame: %v", err)
	}
	if !f.Header.Masked {
		tb.Fatalf("client frame %v not masked", f.Header.OpCode)
	}
	return ws.UnmaskFrameInPlace(f)
}

func TestConnReaders(t *testing.T) {
	for _, kind := range []string{ReaderEpoll, ReaderGoroutine} {
		t.Run(kind, func(t *testing.T) {
			t.Run("frames split and batched", func(t *testing.T) { testReaderFrames(t, kind) })
			t.Run("ping answered", func(t *testing.T) { testReaderPing(t, kind) })
			t.Run("server ends connections", func(t *testing.T) { testReaderServerClose(t, kind) })
			t.Run("close closes what is left", func(t *testing.T) { testReaderClose(t, kind) })
		})
	}
}

func newTestReader(tb testing.TB, kind string, n int, sink frameSink) connReader {
	tb.Helper()
	r, err := newConnReader(kind, n, 2, sink)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.close)
	return r
}

func testReaderFrames(t *testing.T, kind string) {
	sink := newSinkRecorder()
	r := newTestReader(t, kind, 3, sink)
	var srvs []net.Conn
	for i := range 3 {
		c, srv := connPair(t)
		if i == 1 {
			// Bytes the handshake reader already took off the socket: a
			// whole frame and half of the next.
			pre := append(serverFrame(t, true, ws.OpText, []byte("early")), serverFrame(t, true, ws.OpText, []byte("split"))...)
			c.w = copy(c.buf, pre[:len(pre)-3])
			srv.Write(pre[len(pre)-3:])
		}
		if err := r.add(i, c); err != nil {
			t.Fatal(err)
		}
		srvs = append(srvs, srv)
	}
	// Connection 0: 200 frames in one write. Connection 2: frames dribbled
	// a few bytes per write.
	var batch, dribble []byte
	for k := range 200 {
		batch = append(batch, serverFrame(t, true, ws.OpText, []byte(fmt.Sprintf(`{"k":%d}`, k)))...)
	}
	for k := range 20 {
		dribble = append(dribble, serverFrame(t, true, ws.OpText, bytes.Repeat([]byte{'a' + byte(k)}, 100+k*50))...)
	}
	srvs[0].Write(batch)
	for off := 0; off < len(dribble); off += 5 {
		if _, err := srvs[2].Write(dribble[off:min(off+5, len(dribble))]); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "every frame delivered", func() bool {
		return sink.count(0) == 200 && sink.count(1) == 2 && sink.count(2) == 20
	})
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if got := sink.msgs[1]; got[0] != "early" || got[1] != "split" {
		t.Fatalf("connection 1 got %q", got)
	}
	for k, m := range sink.msgs[0] {
		if m != fmt.Sprintf(`{"k":%d}`, k) {
			t.Fatalf("connection 0 message %d = %q", k, m)
		}
	}
	for k, m := range sink.msgs[2] {
		if len(m) != 100+k*50 || m[0] != 'a'+byte(k) {
			t.Fatalf("connection 2 message %d: %d bytes of %q", k, len(m), m[0])
		}
	}
}

func testReaderPing(t *testing.T, kind string) {
	sink := newSinkRecorder()
	r := newTestReader(t, kind, 1, sink)
	c, srv := connPair(t)
	if err := r.add(0, c); err != nil {
		t.Fatal(err)
	}
	srv.Write(append(serverFrame(t, true, ws.OpPing, []byte("are you there")), serverFrame(t, true, ws.OpText, []byte("after"))...))
	f := readClientFrame(t, srv)
	if f.Header.OpCode != ws.OpPong || string(f.Payload) != "are you there" {
		t.Fatalf("answer %v %q, want a pong echoing the ping", f.Header.OpCode, f.Payload)
	}
	eventually(t, 10*time.Second, "message after the ping", func() bool { return sink.count(0) == 1 })
}

func testReaderServerClose(t *testing.T, kind string) {
	sink := newSinkRecorder()
	r := newTestReader(t, kind, 3, sink)
	var srvs []net.Conn
	for i := range 3 {
		c, srv := connPair(t)
		if err := r.add(i, c); err != nil {
			t.Fatal(err)
		}
		srvs = append(srvs, srv)
	}
	// 0: a close frame with a code; 1: the socket just closes; 2 stays.
	srvs[0].Write(append(serverFrame(t, true, ws.OpText, []byte("last")), serverFrame(t, true, ws.OpClose, []byte{0x0f, 0xa1, 'b', 'y', 'e'})...))
	f := readClientFrame(t, srvs[0])
	if f.Header.OpCode != ws.OpClose || !bytes.Equal(f.Payload, []byte{0x0f, 0xa1}) {
		t.Fatalf("answer %v %v, want close 4001", f.Header.OpCode, f.Payload)
	}
	srvs[1].Close()
	eventually(t, 10*time.Second, "both ends reported", func() bool { return sink.endedAs(0) != "" && sink.endedAs(1) != "" })
	if sink.endedAs(0) != "4001" || sink.endedAs(1) != "eof" || sink.count(0) != 1 {
		t.Fatalf("ended %q, %q, messages %d; want 4001, eof and 1", sink.endedAs(0), sink.endedAs(1), sink.count(0))
	}
	// The first socket is closed after the close answer.
	srvs[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := srvs[0].Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("server read after close answer: %v, want EOF", err)
	}
	// The third still works.
	srvs[2].Write(serverFrame(t, true, ws.OpText, []byte("still here")))
	eventually(t, 10*time.Second, "connection 2 alive", func() bool { return sink.count(2) == 1 })
	if sink.endedAs(2) != "" {
		t.Fatalf("connection 2 reported ended: %q", sink.endedAs(2))
	}
}

func testReaderClose(t *testing.T, kind string) {
	sink := newSinkRecorder()
	r, err := newConnReader(kind, 2, 2, sink)
	if err != nil {
		t.Fatal(err)
	}
	var srvs []net.Conn
	for i := range 2 {
		c, srv := connPair(t)
		if err := r.add(i, c); err != nil {
			t.Fatal(err)
		}
		srvs = append(srvs, srv)
	}
	r.close()
	for i, srv := range srvs {
		f := readClientFrame(t, srv)
		if f.Header.OpCode != ws.OpClose || !bytes.Equal(f.Payload, []byte{0x03, 0xe8}) {
			t.Fatalf("connection %d: %v %v, want close 1000", i, f.Header.OpCode, f.Payload)
		}
		if _, err := srv.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("connection %d: read after close: %v, want EOF", i, err)
		}
	}
	if sink.endedAs(0) != "" || sink.endedAs(1) != "" {
		t.Fatalf("close reported its own connections as ended: %v", sink.ends)
	}
	c, srv := connPair(t)
	if err := r.add(0, c); !errors.Is(err, errReaderClosed) {
		t.Fatalf("add after close: %v, want errReaderClosed", err)
	}
	srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(srv); err != nil {
		t.Fatalf("connection added after close not closed: %v", err)
	}
}

func TestNewConnReaderRejectsUnknownKind(t *testing.T) {
	if _, err := newConnReader("threads", 1, 0, newSinkRecorder()); !errors.Is(err, errReader) {
		t.Fatalf("err = %v, want errReader", err)
	}
}

// FuzzFrameReader checks that any byte stream, fed whole or split at any
// point, neither panics nor parses differently.
func FuzzFrameReader(f *testing.F) {
	f.Add([]byte{0x81, 0x03, 'a', 'b', 'c', 0x89, 0x00}, 2)
	f.Add([]byte{0x01, 0x01, 'a', 0x80, 0x01, 'b'}, 3)
	f.Add([]byte{0x82, 126, 0x00, 0x02, 'x', 'y'}, 1)
	f.Fuzz(func(t *testing.T, stream []byte, split int) {
		whole, parts := &recordingHandler{}, &recordingHandler{}
		var fw, fp frameReader
		errWhole := fw.feed(stream, whole)
		split = min(max(split, 0), len(stream))
		errParts := fp.feed(stream[:split], parts)
		if errParts == nil {
			errParts = fp.feed(stream[split:], parts)
		}
		if (errWhole == nil) != (errParts == nil) {
			t.Fatalf("whole: %v, split at %d: %v", errWhole, split, errParts)
		}
		if errWhole == nil && (fmt.Sprint(whole.msgs) != fmt.Sprint(parts.msgs) || fmt.Sprint(whole.pings) != fmt.Sprint(parts.pings)) {
			t.Fatalf("whole and split at %d differ", split)
		}
	})
}

// TestWSConnNextSharesTheFrameRules reads, through the blocking client
// codec, a ping, a message fragmented around a ping, a message with a
// 16-bit length, and a close: next answers both pings with pongs, returns
// the two messages whole, answers the close and reports its code. A data
// frame inside a fragmented message is a protocol error, as in the epoll
// reader.
func TestWSConnNextSharesTheFrameRules(t *testing.T) {
	cli, srv := net.Pipe()
	defer cli.Close()
	defer srv.Close()
	c := &wsConn{nc: cli, buf: make([]byte, 8)} // small: frames span refills
	big := bytes.Repeat([]byte("b"), 300)
	var stream []byte
	stream = append(stream, serverFrame(t, true, ws.OpPing, []byte("p1"))...)
	stream = append(stream, serverFrame(t, false, ws.OpText, []byte("hel"))...)
	stream = append(stream, serverFrame(t, true, ws.OpPing, []byte("p2"))...)
	stream = append(stream, serverFrame(t, true, ws.OpContinuation, []byte("lo"))...)
	stream = append(stream, serverFrame(t, true, ws.OpText, big)...)
	stream = append(stream, serverFrame(t, true, ws.OpClose, []byte{0x0f, 0xa1})...)
	stream = append(stream, serverFrame(t, false, ws.OpText, []byte("a"))...)
	stream = append(stream, serverFrame(t, true, ws.OpText, []byte("b"))...)
	go func() { _, _ = srv.Write(stream) }()
	replies := make(chan ws.OpCode, 8)
	go func() {
		for {
			h, err := ws.ReadHeader(srv)
			if err != nil {
				close(replies)
				return
			}
			if _, err := io.CopyN(io.Discard, srv, h.Length); err != nil {
				close(replies)
				return
			}
			replies <- h.OpCode
		}
	}()
	for _, want := range []string{"hello", string(big)} {
		got, err := c.next()
		if err != nil || string(got) != want {
			t.Fatalf("next: %.20q, %v; want %.20q", got, err, want)
		}
	}
	var ce *closeError
	if _, err := c.next(); !errors.As(err, &ce) || ce.code != 4001 {
		t.Fatalf("next at the close frame: %v, want close 4001", err)
	}
	for _, want := range []ws.OpCode{ws.OpPong, ws.OpPong, ws.OpClose} {
		if got := <-replies; got != want {
			t.Fatalf("client answered %v, want %v", got, want)
		}
	}
	if _, err := c.next(); !errors.Is(err, errProtocol) {
		t.Fatalf("a data frame inside a fragmented message: %v, want errProtocol", err)
	}
}
