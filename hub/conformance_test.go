package hub_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roost-rt/roost/hub"
)

// rawClient speaks frames directly (gobwas/ws), so tests can send what a
// conforming client library never would.
type rawClient struct {
	tb   testing.TB
	conn net.Conn
	br   io.Reader
}

func dialRaw(tb testing.TB, url string) *rawClient {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, br, _, err := ws.Dial(ctx, url)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = conn.Close() })
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	return &rawClient{tb: tb, conn: conn, br: bufio.NewReader(r)}
}

func (c *rawClient) write(f ws.Frame) {
	c.tb.Helper()
	require.NoError(c.tb, ws.WriteFrame(c.conn, f))
}

// writeMasked masks f with a fresh key and sends it.
func (c *rawClient) writeMasked(f ws.Frame) {
	c.tb.Helper()
	c.write(ws.MaskFrameInPlace(f))
}

func (c *rawClient) writeBytes(b []byte) {
	c.tb.Helper()
	_, err := c.conn.Write(b)
	require.NoError(c.tb, err)
}

func (c *rawClient) read() ws.Frame {
	c.tb.Helper()
	require.NoError(c.tb, c.conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	f, err := ws.ReadFrame(c.br)
	require.NoError(c.tb, err)
	return f
}

// expectClose reads frames until a close frame and returns its code.
func (c *rawClient) expectClose() uint16 {
	c.tb.Helper()
	for {
		f := c.read()
		if f.Header.OpCode == ws.OpClose {
			if len(f.Payload) < 2 {
				return 1005
			}
			return binary.BigEndian.Uint16(f.Payload)
		}
	}
}

func closePayload(code uint16, reason string) []byte {
	b := binary.BigEndian.AppendUint16(nil, code)
	return append(b, reason...)
}

func TestRFC6455Violations(t *testing.T) {
	_, url := startHub(t, hub.Config{MaxMessageBytes: 1024})
	text := func(p string, fin bool) ws.Frame {
		f := ws.NewFrame(ws.OpText, fin, []byte(p))
		return f
	}
	cases := []struct {
		name string
		send func(c *rawClient)
		code uint16
	}{
		{"unmasked frame", func(c *rawClient) { c.write(text(`{"op":"ping"}`, true)) }, 1002},
		{"reserved bit", func(c *rawClient) {
			f := text(`{"op":"ping"}`, true)
			f.Header.Rsv = ws.Rsv(true, false, false)
			c.writeMasked(f)
		}, 1002},
		{"reserved opcode", func(c *rawClient) { c.writeMasked(ws.NewFrame(ws.OpCode(0x3), true, nil)) }, 1002},
		{"control frame over 125 bytes", func(c *rawClient) {
			c.writeMasked(ws.NewFrame(ws.OpPing, true, make([]byte, 126)))
		}, 1002},
		{"fragmented control frame", func(c *rawClient) { c.writeMasked(ws.NewFrame(ws.OpPing, false, []byte("x"))) }, 1002},
		{"continuation without start", func(c *rawClient) {
			c.writeMasked(ws.NewFrame(ws.OpContinuation, true, []byte("x")))
		}, 1002},
		{"invalid utf-8 text", func(c *rawClient) { c.writeMasked(ws.NewFrame(ws.OpText, true, []byte{0xff, 0xfe})) }, 1007},
		{"invalid close code", func(c *rawClient) { c.writeMasked(ws.NewFrame(ws.OpClose, true, closePayload(1005, ""))) }, 1002},
		{"close code below 1000", func(c *rawClient) { c.writeMasked(ws.NewFrame(ws.OpClose, true, closePayload(999, ""))) }, 1002},
		{"close reason not utf-8", func(c *rawClient) {
			c.writeMasked(ws.NewFrame(ws.OpClose, true, closePayload(1000, "\xff")))
		}, 1007},
		{"one-byte close body", func(c *rawClient) { c.writeMasked(ws.NewFrame(ws.OpClose, true, []byte{3})) }, 1002},
		{"message over the limit", func(c *rawClient) {
			c.writeMasked(ws.NewFrame(ws.OpText, true, make([]byte, 2048)))
		}, 1009},
		{"fragments over the limit", func(c *rawClient) {
			c.writeMasked(ws.NewFrame(ws.OpText, false, make([]byte, 700)))
			c.writeMasked(ws.NewFrame(ws.OpContinuation, true, make([]byte, 700)))
		}, 1009},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, url)
			tc.send(c)
			assert.Equal(t, tc.code, c.expectClose())
		})
	}
}

func TestFragmentedMessageWithInterleavedPing(t *testing.T) {
	_, url := startHub(t, hub.Config{})
	c := dialRaw(t, url)
	msg := `{"id":7,"op":"subscribe","channel":"frag"}`
	c.writeMasked(ws.NewFrame(ws.OpText, false, []byte(msg[:10])))
	c.writeMasked(ws.NewFrame(ws.OpPing, true, []byte("mid")))
	pong := c.read()
	assert.Equal(t, ws.OpPong, pong.Header.OpCode)
	assert.Equal(t, "mid", string(pong.Payload))
	c.writeMasked(ws.NewFrame(ws.OpContinuation, false, []byte(msg[10:20])))
	c.writeMasked(ws.NewFrame(ws.OpContinuation, true, []byte(msg[20:])))
	reply := c.read()
	assert.Equal(t, ws.OpText, reply.Header.OpCode)
	assert.Equal(t, `{"id":7,"ok":true}`, string(reply.Payload))
}

func TestFrameSplitAcrossWrites(t *testing.T) {
	_, url := startHub(t, hub.Config{})
	c := dialRaw(t, url)
	f := ws.MaskFrameInPlace(ws.NewFrame(ws.OpText, true, []byte(`{"id":1,"op":"ping"}`)))
	b, err := ws.CompileFrame(f)
	require.NoError(t, err)
	for i := range b { // one byte per write: the server must reassemble
		c.writeBytes(b[i : i+1])
	}
	assert.Equal(t, `{"id":1,"ok":true}`, string(c.read().Payload))
}

func TestPingPongAndCloseHandshake(t *testing.T) {
	_, url := startHub(t, hub.Config{})
	c := dialRaw(t, url)
	c.writeMasked(ws.NewFrame(ws.OpPing, true, []byte("hello")))
	f := c.read()
	assert.Equal(t, ws.OpPong, f.Header.OpCode)
	assert.Equal(t, "hello", string(f.Payload))

	c.writeMasked(ws.NewFrame(ws.OpClose, true, closePayload(1000, "bye")))
	assert.EqualValues(t, 1000, c.expectClose())
	// The server closes the TCP connection after answering.
	require.NoError(t, c.conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err := c.br.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF)
}

func TestBinaryMessageGetsError(t *testing.T) {
	_, url := startHub(t, hub.Config{})
	c := dialRaw(t, url)
	c.writeMasked(ws.NewFrame(ws.OpBinary, true, []byte(`{"id":1,"op":"ping"}`)))
	f := c.read()
	assert.Contains(t, string(f.Payload), `"code":400`)
	c.writeMasked(ws.NewFrame(ws.OpText, true, []byte(`{"id":2,"op":"ping"}`)))
	assert.Equal(t, `{"id":2,"ok":true}`, string(c.read().Payload))
}

func textFrame(s string) ws.Frame { return ws.NewFrame(ws.OpText, true, []byte(s)) }

// A close frame must never be written into the middle of a frame the
// kernel took only part of: when the client closes while a large push is
// half sent, every byte it can still read belongs to that push.
func TestCloseNeverSplitsAPartlySentFrame(t *testing.T) {
	h, url := startHub(t, hub.Config{SendBufferBytes: 4 << 10})
	c := dialRaw(t, url)
	require.NoError(t, c.conn.(*net.TCPConn).SetReadBuffer(4<<10))
	c.writeMasked(textFrame(`{"id":1,"op":"subscribe","channel":"big"}`))
	require.Equal(t, `{"id":1,"ok":true}`, string(c.read().Payload))

	data := `"` + strings.Repeat("x", 1<<20) + `"`
	require.NoError(t, h.Publish(context.Background(), "big", []byte(data)))
	// The kernel holds a few KB of the 1 MiB frame; the rest is queued.
	c.writeMasked(ws.NewFrame(ws.OpClose, true, closePayload(1000, "")))

	require.NoError(t, c.conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	got, _ := io.ReadAll(c.br) // until the server closes the socket
	require.Greater(t, len(got), 4, "part of the push arrived")
	h0, err := ws.ReadHeader(bytes.NewReader(got))
	require.NoError(t, err)
	require.Equal(t, ws.OpText, h0.OpCode)
	headerLen := 2 + 8 // 64-bit length form for a 1 MiB payload
	payload := got[headerLen:]
	prefix := `{"channel":"big","data":"`
	require.True(t, bytes.HasPrefix(payload, []byte(prefix)), "payload starts %q", payload[:min(len(payload), 40)])
	rest := payload[len(prefix):]
	if i := bytes.IndexFunc(rest, func(r rune) bool { return r != 'x' }); i >= 0 && int64(len(prefix)+i) < h0.Length {
		t.Fatalf("byte %q at payload offset %d inside the unfinished push: a close frame was written mid-frame", rest[i], len(prefix)+i)
	}
}
