package wire

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Kind is the type of an inbound message or an outbound frame. Its values are
// the RFC 6455 section 5.2 opcodes.
type Kind uint8

// Message and frame kinds.
const (
	KindText   Kind = 0x1
	KindBinary Kind = 0x2
	KindClose  Kind = 0x8
	KindPing   Kind = 0x9
	KindPong   Kind = 0xA
)

// String returns the kind's lower-case name.
func (k Kind) String() string {
	switch k {
	case KindText:
		return "text"
	case KindBinary:
		return "binary"
	case KindClose:
		return "close"
	case KindPing:
		return "ping"
	case KindPong:
		return "pong"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// IsControl reports whether k is a control kind (close, ping, pong).
func (k Kind) IsControl() bool { return k&0x8 != 0 }

const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA

	maxHeader      = 14  // 2 + 8 bytes of extended length + 4 bytes of mask
	maxControl     = 125 // RFC 6455 section 5.5
	prefetchWindow = 32 << 10
)

// Message is one complete inbound message or control frame.
type Message struct {
	Kind Kind
	// Payload is the unmasked payload; for KindClose it is the reason (the
	// body after the code). It is valid only during the callback: it aliases
	// the fed buffer when the whole frame was in it (zero copy), otherwise a
	// pooled buffer that is reused after the callback returns.
	Payload []byte
	// CloseCode is, for KindClose, the code the client sent, or 0 if the
	// close frame had no body.
	CloseCode uint16
}

// CloseError is a protocol failure: the connection must be closed with Code
// (1002 protocol error, 1007 invalid UTF-8, 1009 message too big; RFC 6455
// section 7.4.1).
type CloseError struct {
	Code   uint16
	Reason string
}

func (e *CloseError) Error() string {
	return "roost: websocket close " + strconv.Itoa(int(e.Code)) + ": " + e.Reason
}

// Parser is an incremental RFC 6455 frame parser for the server side of one
// connection. The hub reads a connection's bytes only when epoll says they
// are there, in whatever pieces the kernel hands out, into a scratch buffer
// shared by every connection of a worker; Parser keeps what it needs of an
// incomplete frame between those reads and nothing else.
//
// The zero value is ready. While no frame or message is incomplete it holds
// no buffer: an idle connection costs the 64 bytes of the struct. A partial
// header lives in the struct itself; a partial payload or a fragmented
// message lives in a buffer from a size-class pool, returned as soon as the
// message completes. A Parser is not safe for concurrent use.
type Parser struct {
	buf     *[]byte     // pooled; nil when no payload is pending
	err     *CloseError // sticky protocol failure
	remain  int64       // payload bytes of the current frame not yet received
	msgLen  int         // bytes of the open message at the start of *buf
	checked int         // bytes of the open text message known to be valid UTF-8
	mask    [4]byte     // masking key of the current frame
	hdr     [maxHeader]byte
	nhdr    uint8 // bytes of a partial header held in hdr
	op      uint8 // opcode of the current frame
	msgOp   uint8 // opcode of the open message, 0 if none
	mpos    uint8 // position in mask of the next payload byte
	fin     bool  // FIN bit of the current frame
	inFrame bool  // the header of the current frame is parsed
}

// Feed parses b, which it may modify in place (unmasking), and calls fn for
// each complete message and each control frame, in stream order; control
// frames interleaved between the fragments of a message are delivered as
// soon as they are complete (RFC 6455 section 5.4).
//
// maxMessage <= 0 means unlimited; a data message (after reassembling its
// fragments) over maxMessage bytes yields a *CloseError with code 1009 as
// soon as a frame header announces it, before its payload is buffered.
// Control frames are bounded by the protocol (125 bytes) and not subject to
// maxMessage.
//
// Protocol failures are returned as *CloseError and are sticky: every later
// Feed returns the same error until Reset. If fn returns an error, Feed stops
// and returns it; the rest of b is dropped, and the caller is expected to
// close the connection and Reset the Parser.
//
// After a close frame Feed keeps parsing; it is the caller's job to stop.
func (p *Parser) Feed(b []byte, maxMessage int, fn func(m Message) error) error {
	if p.err != nil {
		return p.err
	}
	for {
		if !p.inFrame {
			if len(b) == 0 {
				return nil
			}
			n, done, err := p.header(b, maxMessage)
			if err != nil {
				return err
			}
			b = b[n:]
			if !done {
				return nil
			}
			// Zero copy: a control frame or an unfragmented data frame that
			// is wholly in b is delivered from b itself.
			if p.remain <= int64(len(b)) && (p.op >= opClose || (p.fin && p.op != opContinuation)) {
				n := int(p.remain)
				payload := b[:n:n]
				b = b[n:]
				p.inFrame = false
				p.remain = 0
				ws.Cipher(payload, p.mask, 0)
				if err := p.whole(payload, fn); err != nil {
					return err
				}
				continue
			}
		}
		if n := min(int64(len(b)), p.remain); n > 0 {
			if err := p.appendPayload(b[:n]); err != nil {
				return err
			}
			b = b[n:]
		}
		if p.remain > 0 {
			return nil // b is used up
		}
		p.inFrame = false
		if err := p.buffered(fn); err != nil {
			return err
		}
	}
}

// Pending reports whether a partial frame or message is held.
func (p *Parser) Pending() bool {
	return p.nhdr > 0 || p.inFrame || p.msgOp != 0
}

// Reset releases any pooled buffer and returns p to its zero value; call it
// when the connection is closed.
func (p *Parser) Reset() {
	p.release()
	*p = Parser{}
}

func (p *Parser) release() {
	if p.buf != nil {
		putBuf(p.buf)
		p.buf = nil
	}
}

// fail records a protocol failure and drops all partial state.
func (p *Parser) fail(code uint16, reason string) error {
	p.Reset()
	p.err = &CloseError{Code: code, Reason: reason}
	return p.err
}

// header consumes header bytes from b. It returns how many bytes it used and
// whether the header is complete, in which case the frame state is set.
func (p *Parser) header(b []byte, maxMessage int) (used int, done bool, err error) {
	var h []byte
	if p.nhdr == 0 && len(b) >= 2 {
		hl, err := p.check(b[0], b[1])
		if err != nil {
			return 0, false, err
		}
		if len(b) < hl {
			p.nhdr = uint8(copy(p.hdr[:], b))
			return len(b), false, nil
		}
		h, used = b[:hl], hl
	} else {
		if p.nhdr < 2 {
			k := copy(p.hdr[p.nhdr:2], b)
			p.nhdr += uint8(k)
			used = k
			if p.nhdr < 2 {
				return used, false, nil
			}
		}
		hl, err := p.check(p.hdr[0], p.hdr[1])
		if err != nil {
			return 0, false, err
		}
		k := copy(p.hdr[p.nhdr:hl], b[used:])
		p.nhdr += uint8(k)
		used += k
		if int(p.nhdr) < hl {
			return used, false, nil
		}
		h = p.hdr[:hl]
		p.nhdr = 0
	}

	op := h[0] & 0x0F
	var length int64
	switch l7 := h[1] & 0x7F; l7 {
	case 126:
		length = int64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		u := binary.BigEndian.Uint64(h[2:])
		if u>>63 != 0 { // RFC 6455 section 5.2: the most significant bit MUST be 0
			return 0, false, p.fail(1002, "64-bit payload length with the most significant bit set")
		}
		length = int64(u)
	default:
		length = int64(l7)
	}
	if op < opClose && maxMessage > 0 && length > int64(maxMessage-p.msgLen) {
		return 0, false, p.fail(1009, "message over "+strconv.Itoa(maxMessage)+" bytes")
	}
	copy(p.mask[:], h[len(h)-4:])
	p.op = op
	p.fin = h[0]&0x80 != 0
	p.remain = length
	p.mpos = 0
	p.inFrame = true
	if op == opText || op == opBinary {
		p.msgOp = op
	}
	return used, true, nil
}

// check validates the first two header bytes and returns the header length.
func (p *Parser) check(b0, b1 byte) (int, error) {
	if b0&0x70 != 0 { // RFC 6455 section 5.2: no extension was negotiated
		return 0, p.fail(1002, "reserved bits set")
	}
	switch op := b0 & 0x0F; op {
	case opContinuation: // section 5.4
		if p.msgOp == 0 {
			return 0, p.fail(1002, "continuation frame without a message to continue")
		}
	case opText, opBinary:
		if p.msgOp != 0 {
			return 0, p.fail(1002, "new data frame while a fragmented message is open")
		}
	case opClose, opPing, opPong:
		if b0&0x80 == 0 { // section 5.5
			return 0, p.fail(1002, "fragmented control frame")
		}
		if b1&0x7F > maxControl {
			return 0, p.fail(1002, "control frame payload over 125 bytes")
		}
	default:
		return 0, p.fail(1002, "reserved opcode "+strconv.Itoa(int(op)))
	}
	if b1&0x80 == 0 { // section 5.1: a server must close on an unmasked frame
		return 0, p.fail(1002, "unmasked client frame")
	}
	switch b1 & 0x7F {
	case 126:
		return 2 + 2 + 4, nil
	case 127:
		return 2 + 8 + 4, nil
	}
	return 2 + 4, nil
}

// appendPayload copies and unmasks a piece of the current frame's payload
// into the pooled buffer, checking text messages for UTF-8 as it goes.
func (p *Parser) appendPayload(c []byte) error {
	buf := p.grow(len(c))
	start := len(buf)
	buf = append(buf, c...)
	ws.Cipher(buf[start:], p.mask, int(p.mpos))
	*p.buf = buf
	p.mpos = uint8((int(p.mpos) + len(c)) & 3)
	p.remain -= int64(len(c))
	if p.op < opClose {
		p.msgLen = len(buf)
		if p.msgOp == opText {
			n, ok := utf8Prefix(buf[p.checked:])
			if !ok { // RFC 6455 section 8.1: fail fast on an invalid prefix
				return p.fail(1007, "invalid UTF-8 in text message")
			}
			p.checked += n
		}
	}
	return nil
}

// grow makes room for n more bytes. When the rest of the frame is close, it
// sizes the buffer for all of it to avoid copies; it never reserves more than
// prefetchWindow bytes ahead of what has arrived, so a header announcing a
// huge length does not by itself pin memory.
func (p *Parser) grow(n int) []byte {
	var l, c int
	if p.buf != nil {
		l, c = len(*p.buf), cap(*p.buf)
		if c-l >= n {
			return *p.buf
		}
	}
	want := l + n
	if p.remain-int64(n) <= prefetchWindow {
		want = l + int(p.remain)
	}
	nb := getBuf(max(want, 2*c))
	if p.buf != nil {
		*nb = append(*nb, *p.buf...)
		putBuf(p.buf)
	}
	p.buf = nb
	return *nb
}

// whole handles a frame delivered from the fed buffer.
func (p *Parser) whole(payload []byte, fn func(Message) error) error {
	if p.op >= opClose {
		return p.control(payload, fn)
	}
	if p.op == opText && !utf8.Valid(payload) {
		return p.fail(1007, "invalid UTF-8 in text message")
	}
	p.msgOp = 0
	return fn(Message{Kind: Kind(p.op), Payload: payload})
}

// buffered handles the end of a frame whose payload went to the pooled buffer.
func (p *Parser) buffered(fn func(Message) error) error {
	var buf []byte
	if p.buf != nil {
		buf = *p.buf
	}
	if p.op >= opClose {
		err := p.control(buf[p.msgLen:], fn)
		if p.buf != nil {
			*p.buf = (*p.buf)[:p.msgLen]
			if p.msgOp == 0 {
				p.release()
			}
		}
		return err
	}
	if !p.fin {
		return nil
	}
	if p.msgOp == opText && p.checked != p.msgLen {
		return p.fail(1007, "invalid UTF-8 in text message")
	}
	m := Message{Kind: Kind(p.msgOp), Payload: buf[:p.msgLen]}
	p.msgOp, p.msgLen, p.checked = 0, 0, 0
	err := fn(m)
	p.release()
	return err
}

// control delivers a complete control frame.
func (p *Parser) control(payload []byte, fn func(Message) error) error {
	switch p.op {
	case opPing:
		return fn(Message{Kind: KindPing, Payload: payload})
	case opPong:
		return fn(Message{Kind: KindPong, Payload: payload})
	}
	var code uint16
	switch len(payload) {
	case 0:
	case 1: // RFC 6455 section 5.5.1: a body starts with a 2-byte code
		return p.fail(1002, "close frame body of 1 byte")
	default:
		code = binary.BigEndian.Uint16(payload)
		if !ValidCloseCode(code) {
			return p.fail(1002, "invalid close code "+strconv.Itoa(int(code)))
		}
		payload = payload[2:]
		if !utf8.Valid(payload) {
			return p.fail(1007, "invalid UTF-8 in close reason")
		}
	}
	return fn(Message{Kind: KindClose, Payload: payload, CloseCode: code})
}

// ValidCloseCode reports whether a peer may send code in a close frame (RFC
// 6455 section 7.4): 1000-1003 and 1007-1014 (1012-1014 are registered with
// IANA), and 3000-4999 for libraries and applications. 1004-1006 and 1015 are
// reserved, the rest of 1000-2999 unassigned.
func ValidCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}
