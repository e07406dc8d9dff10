package wire

import (
	"strconv"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. It escapes '"', '\\' and control
// characters, replaces invalid UTF-8 with \ufffd (the output always is valid
// UTF-8, which text frames require), and escapes U+2028 and U+2029 as
// encoding/json does so the output is also safe inside JavaScript.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(append(dst, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(append(dst, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendPush appends a channel push: {"channel":"news","data":<data>}. data
// must be valid JSON (see ValidJSON); it is copied as is.
func AppendPush(dst []byte, channel string, data []byte) []byte {
	dst = append(dst, `{"channel":`...)
	dst = AppendString(dst, channel)
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	return append(dst, '}')
}

// AppendUserPush appends a push addressed to a user: {"data":<data>}.
func AppendUserPush(dst []byte, data []byte) []byte {
	dst = append(dst, `{"data":`...)
	dst = append(dst, data...)
	return append(dst, '}')
}

// AppendOK appends a success reply: {"id":N,"ok":true}.
func AppendOK(dst []byte, id int64) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, id, 10)
	return append(dst, `,"ok":true}`...)
}

// AppendResult appends a success reply with a result, which must be valid
// JSON: {"id":N,"ok":true,"result":<result>}.
func AppendResult(dst []byte, id int64, result []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, `,"ok":true,"result":`...)
	dst = append(dst, result...)
	return append(dst, '}')
}

// AppendError appends an error reply,
// {"id":N,"error":{"code":C,"message":"..."}}, leaving out "id" when the
// command had none (hasID false).
func AppendError(dst []byte, id int64, hasID bool, code int, msg string) []byte {
	if hasID {
		dst = append(dst, `{"id":`...)
		dst = strconv.AppendInt(dst, id, 10)
		dst = append(dst, `,"error":{"code":`...)
	} else {
		dst = append(dst, `{"error":{"code":`...)
	}
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, `,"message":`...)
	dst = AppendString(dst, msg)
	return append(dst, `}}`...)
}
