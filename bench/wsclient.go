package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// Errors of the harness's client codec.
var (
	errProtocol   = errors.New("roost: bench: protocol error from server")
	errFrameLarge = errors.New("roost: bench: server frame over 16 MiB")
	errRefused    = errors.New("roost: bench: command refused")
)

// closeError reports the close frame a server sent.
type closeError struct{ code uint16 }

func (e *closeError) Error() string {
	return "roost: bench: server closed with " + strconv.Itoa(int(e.code))
}

// maxServerFrame bounds a server frame the client accepts.
const maxServerFrame = 16 << 20

// wsConn is one harness connection: a TCP socket after a gobwas/ws client
// handshake, with a small growable read buffer and a frame parser written for
// the client side (server frames are unmasked, RFC 6455 section 5.1). It
// holds no goroutine of its own. next may be called by one goroutine at a
// time; writes are serialized by wmu.
type wsConn struct {
	nc   net.Conn
	wmu  sync.Mutex
	buf  []byte // read buffer; buf[r:w] is unread
	r, w int
	fr   frameReader // its frag holds a fragmented message in progress; pend is unused
	msg  []byte      // what next returns, set by data
	got  bool
}

// dialWS opens a WebSocket to url from source address src (nil: any).
func dialWS(ctx context.Context, url string, src net.IP) (*wsConn, error) {
	d := ws.Dialer{
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nd := net.Dialer{}
			if src != nil {
				nd.LocalAddr = &net.TCPAddr{IP: src}
			}
			return nd.DialContext(ctx, network, addr)
		},
	}
	nc, br, _, err := d.Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	c := &wsConn{nc: nc, buf: make([]byte, 512)}
	if br != nil {
		// The server may have sent frames right behind its handshake answer.
		n := br.Buffered()
		if n > len(c.buf) {
			c.buf = make([]byte, n)
		}
		c.w, _ = io.ReadFull(br, c.buf[:n])
		ws.PutReader(br)
	}
	return c, nil
}

// writeFrame writes one masked frame.
func (c *wsConn) writeFrame(op ws.OpCode, p []byte) error {
	frame := appendClientFrame(nil, op, p)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(frame)
	return err
}

// appendClientFrame appends one final frame of opcode op carrying p, masked
// with a random key as clients must (RFC 6455 section 5.3).
func appendClientFrame(dst []byte, op ws.OpCode, p []byte) []byte {
	var hdr [14]byte
	hdr[0] = 0x80 | byte(op)
	n := 2
	switch l := len(p); {
	case l < 126:
		hdr[1] = 0x80 | byte(l)
	case l <= 0xffff:
		hdr[1] = 0x80 | 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(l))
		n = 4
	default:
		hdr[1] = 0x80 | 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(l))
		n = 10
	}
	binary.BigEndian.PutUint32(hdr[n:], rand.Uint32())
	mask := hdr[n : n+4]
	n += 4
	dst = append(dst, hdr[:n]...)
	for i, b := range p {
		dst = append(dst, b^mask[i&3])
	}
	return dst
}

// fill makes at least n unread bytes available in buf.
func (c *wsConn) fill(n int) error {
	if c.w-c.r >= n {
		return nil
	}
	if n > len(c.buf) {
		nb := make([]byte, max(n, 2*len(c.buf)))
		c.w = copy(nb, c.buf[c.r:c.w])
		c.r, c.buf = 0, nb
	} else if c.r > 0 {
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
	}
	for c.w-c.r < n {
		m, err := c.nc.Read(c.buf[c.w:])
		c.w += m
		if err != nil && c.w-c.r < n {
			return err
		}
	}
	return nil
}

// next returns the next data message. Pings are answered, pongs skipped,
// and a close frame is answered and returned as *closeError. The returned
// slice is valid until the next call. Frames are parsed by frameHeader and
// frameReader.frame, as the epoll reader parses them.
func (c *wsConn) next() ([]byte, error) {
	c.msg, c.got = nil, false
	for !c.got {
		if err := c.fill(2); err != nil {
			return nil, err
		}
		fin, op, hl, n, err := frameHeader(c.buf[c.r:c.w])
		for err == nil && n == 0 { // the header is longer than what is buffered
			if err = c.fill(c.w - c.r + 1); err == nil {
				fin, op, hl, n, err = frameHeader(c.buf[c.r:c.w])
			}
		}
		if err == nil {
			err = c.fill(n)
		}
		if err != nil {
			return nil, err
		}
		p := c.buf[c.r+hl : c.r+n]
		c.r += n
		if err := c.fr.frame(fin, op, p, c); err != nil {
			var ce *closeError
			if errors.As(err, &ce) {
				c.writeFrame(ws.OpClose, p[:min(len(p), 2)])
			}
			return nil, err
		}
	}
	return c.msg, nil
}

// data and ping make wsConn the frameHandler of its own frames.
func (c *wsConn) data(p []byte)       { c.msg, c.got = p, true }
func (c *wsConn) ping(p []byte) error { return c.writeFrame(ws.OpPong, p) }

// command sends {"id":id,"op":op,"channel":channel} and waits for its reply,
// skipping pushes. It is used during setup, before the read loop starts.
func (c *wsConn) command(id int, op, channel string, deadline time.Time) error {
	c.nc.SetReadDeadline(deadline)
	defer c.nc.SetReadDeadline(time.Time{})
	q, _ := json.Marshal(channel)
	msg := fmt.Appendf(nil, `{"id":%d,"op":%q,"channel":%s}`, id, op, q)
	if err := c.writeFrame(ws.OpText, msg); err != nil {
		return err
	}
	for {
		p, err := c.next()
		if err != nil {
			return err
		}
		if !bytes.Contains(p, []byte(`"id":`)) {
			continue
		}
		var r struct {
			ID    int             `json:"id"`
			OK    bool            `json:"ok"`
			Error json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(p, &r); err != nil {
			return fmt.Errorf("%w: %q", errProtocol, p)
		}
		if r.ID != id {
			continue
		}
		if !r.OK {
			return fmt.Errorf("%w: %s", errRefused, r.Error)
		}
		return nil
	}
}

// close sends a normal close frame and closes the socket without waiting
// for the server's answer.
func (c *wsConn) close() {
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.writeFrame(ws.OpClose, []byte{0x03, 0xe8})
	c.nc.Close()
}

// benchPush is the harness's payload read back from a push.
type benchPush struct {
	sent    int64 // unix nanoseconds at publish
	seq     int64 // sequence within the channel, from 0
	channel int64 // channel index in the run
}

// parsePush extracts the harness fields from a push without a JSON decoder
// (the load generator shares the cores with the server, so the hot path
// stays cheap). ok is false for replies and for pushes the harness did not
// publish.
func parsePush(p []byte) (bp benchPush, ok bool) {
	if bytes.HasPrefix(p, []byte(`{"id":`)) { // a reply: roost and the baseline write the id first
		return bp, false
	}
	var ok1, ok2, ok3 bool
	bp.sent, ok1 = intField(p, `"t":`)
	bp.seq, ok2 = intField(p, `"s":`)
	bp.channel, ok3 = intField(p, `"c":`)
	return bp, ok1 && ok2 && ok3
}

// intField returns the non-negative integer after key in p.
func intField(p []byte, key string) (int64, bool) {
	i := bytes.Index(p, []byte(key))
	if i < 0 {
		return 0, false
	}
	i += len(key)
	for i < len(p) && p[i] == ' ' {
		i++
	}
	var v int64
	j := i
	for ; j < len(p) && p[j] >= '0' && p[j] <= '9'; j++ {
		v = v*10 + int64(p[j]-'0')
	}
	return v, j > i
}

// appendPayload appends the harness's message data: send time, sequence,
// channel index, padded with "p" to about size bytes.
func appendPayload(dst []byte, sent, seq, channel int64, size int) []byte {
	start := len(dst)
	dst = fmt.Appendf(dst, `{"t":%d,"s":%d,"c":%d,"p":"`, sent, seq, channel)
	for len(dst)-start < size-2 {
		dst = append(dst, 'x')
	}
	return append(dst, `"}`...)
}
