package wire

import (
	"encoding/binary"
	"unicode/utf8"
)

// AppendFrameHeader appends the header of an unmasked, final server frame
// (RFC 6455 section 5.2) of kind k carrying payloadLen bytes, using the
// shortest length encoding. The hub builds one header per publish and shares
// it with every recipient.
//
// k must be one of the Kind constants, payloadLen must not be negative and,
// for control kinds, at most 125 (section 5.5); anything else is a programming
// error and panics.
func AppendFrameHeader(dst []byte, k Kind, payloadLen int) []byte {
	switch k {
	case KindText, KindBinary:
	case KindClose, KindPing, KindPong:
		if payloadLen > maxControl {
			panic("wire: control frame payload over 125 bytes")
		}
	default:
		panic("wire: invalid frame kind " + k.String())
	}
	if payloadLen < 0 {
		panic("wire: negative payload length")
	}
	b0 := 0x80 | byte(k)
	switch {
	case payloadLen <= 125:
		return append(dst, b0, byte(payloadLen))
	case payloadLen <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(dst, b0, 126), uint16(payloadLen))
	}
	return binary.BigEndian.AppendUint64(append(dst, b0, 127), uint64(payloadLen))
}

// AppendFrame appends a whole unmasked, final server frame: header and payload.
func AppendFrame(dst []byte, k Kind, payload []byte) []byte {
	return append(AppendFrameHeader(dst, k, len(payload)), payload...)
}

// AppendClose appends a whole close frame (RFC 6455 section 5.5.1). A code of
// 0 sends an empty body (no code, no reason). The reason is cut at a
// character boundary to fit the 125-byte limit of control frames.
func AppendClose(dst []byte, code uint16, reason string) []byte {
	if code == 0 {
		return AppendFrameHeader(dst, KindClose, 0)
	}
	if len(reason) > maxControl-2 {
		n := maxControl - 2
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n--
		}
		reason = reason[:n]
	}
	dst = AppendFrameHeader(dst, KindClose, 2+len(reason))
	dst = binary.BigEndian.AppendUint16(dst, code)
	return append(dst, reason...)
}
