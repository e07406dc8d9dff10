package wire

import (
	"unicode"
	"unicode/utf8"
)

// MaxChannelLen is the longest channel name, in bytes.
const MaxChannelLen = 255

// ValidChannel reports whether s is a usable channel name: 1 to 255 bytes of
// valid UTF-8, every character printable (unicode.IsPrint) and none of them
// whitespace (unicode.IsSpace). Names end up in logs, metrics labels and
// other clients' pushes, so invisible or ambiguous characters are refused.
func ValidChannel(s string) bool {
	if len(s) == 0 || len(s) > MaxChannelLen {
		return false
	}
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c <= ' ' || c == 0x7F {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return false
		}
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
		i += size
	}
	return true
}
