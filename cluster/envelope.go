package cluster

import (
	"encoding/binary"
	"errors"
)

// envelopeVersion is the first byte of every message roost puts on Redis. A
// node drops messages of another version instead of misreading them, so a
// rolling upgrade that changes the format loses cross-node messages between
// old and new nodes rather than delivering garbage.
const envelopeVersion = 1

// Envelope kinds.
const (
	kindChannel    byte = 'c' // a channel publication; target is the channel
	kindUser       byte = 'u' // a send to a user; target is the user
	kindDisconnect byte = 'd' // close a user's connections; target is the user
)

// maxEnvelopeString bounds the origin, target and exclude fields so a
// corrupt length cannot make the decoder slice past the message.
const maxEnvelopeString = 1 << 16

var errBadEnvelope = errors.New("roost: malformed cluster message")

// envelope is what travels through Redis: who published (so the publishing
// node can drop its own message, which the hub already delivered locally),
// what kind of message it is, its target, the user to skip and the payload.
type envelope struct {
	kind    byte
	origin  string
	target  string
	exclude string
	data    []byte
}

// appendEnvelope encodes e after buf: version, kind, three uvarint-prefixed
// strings, then the payload to the end.
func appendEnvelope(buf []byte, e *envelope) []byte {
	buf = append(buf, envelopeVersion, e.kind)
	for _, s := range [3]string{e.origin, e.target, e.exclude} {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	return append(buf, e.data...)
}

// decodeEnvelope parses b. The strings and data alias b; callers that keep
// them must own b.
func decodeEnvelope(b []byte) (envelope, error) {
	var e envelope
	if len(b) < 2 || b[0] != envelopeVersion {
		return e, errBadEnvelope
	}
	e.kind = b[1]
	switch e.kind {
	case kindChannel, kindUser, kindDisconnect:
	default:
		return e, errBadEnvelope
	}
	b = b[2:]
	var fields [3]string
	for i := range fields {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > maxEnvelopeString || n > uint64(len(b)-k) {
			return e, errBadEnvelope
		}
		fields[i] = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	e.origin, e.target, e.exclude = fields[0], fields[1], fields[2]
	if e.origin == "" || e.target == "" {
		return e, errBadEnvelope
	}
	e.data = b
	return e, nil
}
