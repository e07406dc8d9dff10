package wire

import "strconv"

// Op is the operation of a client command.
type Op uint8

// Operations of the client protocol (docs/protocol.md).
const (
	OpUnknown Op = iota
	OpSubscribe
	OpUnsubscribe
	OpPublish
	OpPresence
	OpPing
	OpRefresh
)

var opNames = [...]string{
	OpUnknown:     "unknown",
	OpSubscribe:   "subscribe",
	OpUnsubscribe: "unsubscribe",
	OpPublish:     "publish",
	OpPresence:    "presence",
	OpPing:        "ping",
	OpRefresh:     "refresh",
}

// String returns the op's name as the client spells it.
func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// lookupOp maps an op name to its Op without allocating.
func lookupOp(name []byte) Op {
	switch string(name) {
	case "subscribe":
		return OpSubscribe
	case "unsubscribe":
		return OpUnsubscribe
	case "publish":
		return OpPublish
	case "presence":
		return OpPresence
	case "ping":
		return OpPing
	case "refresh":
		return OpRefresh
	}
	return OpUnknown
}

// Command is one decoded client command, such as
// {"id":3,"op":"publish","channel":"chat","data":{"text":"hi"}}.
type Command struct {
	ID     int64 // the integer the client sent as "id"; 0 when absent
	HasID  bool  // "id" was present (and not null)
	Op     Op
	OpName string // the "op" string as sent; a constant for known ops
	// Channel is the decoded "channel". It is a copy (the one allocation of
	// DecodeCommand on the common path), so the hub may keep it in its
	// registry after the read buffer is reused.
	Channel string
	// Data is the raw JSON value of "data"; it aliases the input and is only
	// valid as long as the input is. nil when absent; "null" when null.
	Data        []byte
	Token       string // the decoded "token" (a copy), for refresh
	ExcludeSelf bool   // "exclude_self": do not deliver a publish back to its sender
}

// DecodeError is why a command could not be decoded; the hub answers it with
// a 400 error reply that carries the command's id when one was found.
type DecodeError struct {
	Msg string
}

func (e *DecodeError) Error() string { return "roost: bad command: " + e.Msg }

// Decode errors with fixed messages are shared, so a hostile client sending
// junk costs no allocation; callers must not modify them.
var (
	errNotObject   = &DecodeError{Msg: "command is not a JSON object"}
	errSyntax      = &DecodeError{Msg: "invalid JSON"}
	errTrailing    = &DecodeError{Msg: "data after the command object"}
	errIDType      = &DecodeError{Msg: `"id" must be an integer`}
	errIDRange     = &DecodeError{Msg: `"id" out of range`}
	errOpType      = &DecodeError{Msg: `"op" must be a string`}
	errNoOp        = &DecodeError{Msg: `missing "op"`}
	errChanType    = &DecodeError{Msg: `"channel" must be a string`}
	errChanInvalid = &DecodeError{Msg: "invalid channel name"}
	errTokenType   = &DecodeError{Msg: `"token" must be a string`}
	errExclType    = &DecodeError{Msg: `"exclude_self" must be a boolean`}
)

// DecodeCommand parses one client command object into c, which it resets
// first. It checks the whole input is one JSON object (nothing but
// whitespace after it, valid UTF-8 in strings), that known fields have their
// types and that "op" is known; when "channel" is present it must pass
// ValidChannel. Which fields an op requires is the hub's business. Unknown
// fields are skipped, whatever they hold. Escapes in strings, surrogate pairs
// included, are decoded; a repeated field keeps its last value, as with
// encoding/json.
//
// Errors are *DecodeError. Even then c.ID and c.HasID are set when the id
// could be found, also after a syntax error elsewhere (best effort), so the
// error reply can carry it; an unknown op leaves Op = OpUnknown and OpName set.
//
// On the common path (no escapes) the only allocation is Channel; Data
// aliases b.
func DecodeCommand(b []byte, c *Command) error {
	*c = Command{}
	err := decodeObject(b, c)
	if err == errSyntax || err == errNotObject || err == errTrailing {
		if !c.HasID {
			c.ID, c.HasID = findID(b)
		}
		return err
	}
	if err != nil {
		return err
	}
	if c.OpName == "" {
		return errNoOp
	}
	if c.Op == OpUnknown {
		name := c.OpName
		if len(name) > 64 {
			name = name[:64] + "..."
		}
		return &DecodeError{Msg: "unknown op " + strconv.Quote(name)}
	}
	return nil
}

// decodeObject returns a syntax error at once and otherwise the first field
// error, after reading the whole object.
func decodeObject(b []byte, c *Command) error {
	var fieldErr *DecodeError
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		if ValidJSON(b) {
			return errNotObject
		}
		return errSyntax
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		var scratch [32]byte
		for {
			if i >= len(b) || b[i] != '"' {
				return errSyntax
			}
			kEnd, kEsc := scanString(b, i)
			if kEnd < 0 {
				return errSyntax
			}
			key := b[i+1 : kEnd-1]
			if kEsc {
				key = unescape(scratch[:0], key)
			}
			if i = skipWS(b, kEnd); i >= len(b) || b[i] != ':' {
				return errSyntax
			}
			i = skipWS(b, i+1)
			vEnd := scanValue(b, i, 1)
			if vEnd < 0 {
				return errSyntax
			}
			if err := c.field(key, b[i:vEnd]); err != nil && fieldErr == nil {
				fieldErr = err
			}
			if i = skipWS(b, vEnd); i >= len(b) {
				return errSyntax
			}
			if b[i] == '}' {
				i++
				break
			}
			if b[i] != ',' {
				return errSyntax
			}
			i = skipWS(b, i+1)
		}
	}
	if skipWS(b, i) != len(b) {
		if ValidJSON(b[i:]) {
			return errTrailing
		}
		return errSyntax
	}
	if fieldErr != nil {
		return fieldErr
	}
	return nil
}

// field stores one member of the command; v is a valid JSON value.
func (c *Command) field(key, v []byte) *DecodeError {
	null := v[0] == 'n'
	switch string(key) {
	case "id":
		c.ID, c.HasID = 0, false
		if null {
			return nil
		}
		if v[0] != '-' && !isDigit(v[0]) {
			return errIDType
		}
		id, err := parseID(v)
		if err != nil {
			return err
		}
		c.ID, c.HasID = id, true
	case "op":
		c.Op, c.OpName = OpUnknown, ""
		if null {
			return nil
		}
		if v[0] != '"' {
			return errOpType
		}
		var scratch [32]byte
		name := stringValue(scratch[:0], v)
		if c.Op = lookupOp(name); c.Op != OpUnknown {
			c.OpName = opNames[c.Op]
		} else {
			c.OpName = string(name)
		}
	case "channel":
		c.Channel = ""
		if null {
			return nil
		}
		if v[0] != '"' {
			return errChanType
		}
		var scratch [256]byte
		c.Channel = string(stringValue(scratch[:0], v))
		if !ValidChannel(c.Channel) {
			return errChanInvalid
		}
	case "data":
		c.Data = v
	case "token":
		c.Token = ""
		if null {
			return nil
		}
		if v[0] != '"' {
			return errTokenType
		}
		c.Token = string(stringValue(nil, v))
	case "exclude_self":
		switch v[0] {
		case 't':
			c.ExcludeSelf = true
		case 'f', 'n':
			c.ExcludeSelf = false
		default:
			return errExclType
		}
	}
	return nil
}

// stringValue returns the content of the JSON string v, aliasing v when it
// has no escapes and decoding into scratch otherwise.
func stringValue(scratch, v []byte) []byte {
	s := v[1 : len(v)-1]
	for _, c := range s {
		if c == '\\' {
			return unescape(scratch, s)
		}
	}
	return s
}

// parseID parses a JSON number that must be an integer within int64.
func parseID(v []byte) (int64, *DecodeError) {
	neg := v[0] == '-'
	digits := v
	if neg {
		digits = v[1:]
	}
	var u uint64
	for _, c := range digits {
		if !isDigit(c) {
			return 0, errIDType // fraction or exponent
		}
		d := uint64(c - '0')
		if u > (1<<63-d)/10 { // keep u <= 2^63, the magnitude of MinInt64
			return 0, errIDRange
		}
		u = u*10 + d
	}
	switch {
	case neg && u <= 1<<63:
		return -int64(u), nil
	case !neg && u <= 1<<63-1:
		return int64(u), nil
	}
	return 0, errIDRange
}

// findID looks, after a syntax error, for an integer "id" member of the
// top-level object, skipping strings and nested values. It is a heuristic
// for the error reply only.
func findID(b []byte) (int64, bool) {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case '"':
			end, _ := scanString(b, i)
			if end < 0 {
				return 0, false
			}
			if depth == 1 && end-i == 4 && b[i+1] == 'i' && b[i+2] == 'd' {
				j := skipWS(b, end)
				if j < len(b) && b[j] == ':' {
					j = skipWS(b, j+1)
					if k := scanNumber2(b, j); k > j {
						if id, err := parseID(b[j:k]); err == nil {
							return id, true
						}
					}
				}
			}
			i = end - 1
		}
	}
	return 0, false
}

// scanNumber2 is scanNumber for a position that may be out of range or hold
// something else; it returns j itself when there is no number at j.
func scanNumber2(b []byte, j int) int {
	if j >= len(b) || (b[j] != '-' && !isDigit(b[j])) {
		return j
	}
	if k := scanNumber(b, j); k > j {
		return k
	}
	return j
}
