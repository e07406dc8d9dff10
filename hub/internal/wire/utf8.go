package wire

import "unicode/utf8"

// utf8Prefix checks p, the not yet checked tail of a text message that may
// end in the middle of a character. It returns how many leading bytes are
// complete valid characters and false if p cannot be the prefix of valid
// UTF-8. The check is exact, so a message fails at the same byte however its
// frames are split across reads.
func utf8Prefix(p []byte) (int, bool) {
	start := len(p)
	for i := len(p) - 1; i >= 0 && i >= len(p)-3; i-- {
		if p[i]&0xC0 != 0x80 {
			start = i
			break
		}
	}
	if start < len(p) && !utf8.FullRune(p[start:]) {
		return start, validPartial(p[start:]) && utf8.Valid(p[:start])
	}
	return len(p), utf8.Valid(p)
}

// validPartial reports whether p, shorter than the character its first byte
// announces, can still become a valid character (Unicode table 3-7).
func validPartial(p []byte) bool {
	lo, hi := byte(0x80), byte(0xBF)
	var n int
	switch c := p[0]; {
	case c >= 0xC2 && c <= 0xDF:
		n = 2
	case c == 0xE0:
		n, lo = 3, 0xA0
	case c >= 0xE1 && c <= 0xEF:
		n = 3
		if c == 0xED {
			hi = 0x9F
		}
	case c == 0xF0:
		n, lo = 4, 0x90
	case c >= 0xF1 && c <= 0xF3:
		n = 4
	case c == 0xF4:
		n, hi = 4, 0x8F
	default:
		return false
	}
	if len(p) >= n {
		return false
	}
	if len(p) >= 2 && (p[1] < lo || p[1] > hi) {
		return false
	}
	return len(p) < 3 || (p[2] >= 0x80 && p[2] <= 0xBF)
}
