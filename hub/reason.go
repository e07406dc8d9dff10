package hub

// CloseReason says why a connection ended. It picks the WebSocket close code
// sent to the client, labels the eviction counters in Stats, and is passed to
// OnDisconnect and ErrorHandler.
//
// Codes 4000-4499 tell a client that reconnecting is fine; 4500-4999 that it
// must not reconnect as it is (new token, other permissions). RFC 6455
// section 7.4.1 defines the 1xxx codes.
type CloseReason uint8

// Close reasons. The zero value is ReasonClientClosed.
const (
	ReasonClientClosed  CloseReason = iota // the client sent a close frame or closed the socket
	ReasonProtocolError                    // 1002: RFC 6455 violation
	ReasonInvalidData                      // 1007: invalid UTF-8 in a text message or close reason
	ReasonPolicy                           // 1008: inbound message rate exceeded persistently
	ReasonTooBig                           // 1009: message over Config.MaxMessageBytes
	ReasonInternal                         // 1011: unexpected server error
	ReasonShutdown                         // 4001: server shutting down, reconnect elsewhere
	ReasonSlow                             // 4008: outbound queue over its bound
	ReasonNoHeartbeat                      // 4012: silent past Config.IdleTimeout
	ReasonWriteError                       // write failed; usually no close frame can be sent
	ReasonWriteTimeout                     // 4008: a write missed Config.WriteTimeout
	ReasonTokenExpired                     // 4501: token expired and was not refreshed
	ReasonDisconnected                     // 4502: Hub.Disconnect by the backend
	ReasonForbidden                        // 4503: permissions revoked
	ReasonConnLimit                        // 4504: connection limit reached
	numReasons
)

var reasonInfo = [numReasons]struct {
	name string
	code uint16
}{
	ReasonClientClosed:  {"client_closed", 1000},
	ReasonProtocolError: {"protocol_error", 1002},
	ReasonInvalidData:   {"invalid_data", 1007},
	ReasonPolicy:        {"policy_violation", 1008},
	ReasonTooBig:        {"message_too_big", 1009},
	ReasonInternal:      {"internal_error", 1011},
	ReasonShutdown:      {"shutdown", 4001},
	ReasonSlow:          {"slow_consumer", 4008},
	ReasonNoHeartbeat:   {"no_heartbeat", 4012},
	ReasonWriteError:    {"write_error", 1011},
	ReasonWriteTimeout:  {"write_timeout", 4008},
	ReasonTokenExpired:  {"token_expired", 4501},
	ReasonDisconnected:  {"disconnected", 4502},
	ReasonForbidden:     {"forbidden", 4503},
	ReasonConnLimit:     {"connection_limit", 4504},
}

// String returns the reason's snake_case name, used as a metrics label.
func (r CloseReason) String() string {
	if r >= numReasons {
		return "unknown"
	}
	return reasonInfo[r].name
}

// Code returns the WebSocket close code sent for r.
func (r CloseReason) Code() uint16 {
	if r >= numReasons {
		return 1011
	}
	return reasonInfo[r].code
}

// Reasons lists every CloseReason, in order, for exporters that want to
// publish a zero for each label.
func Reasons() []CloseReason {
	rs := make([]CloseReason, numReasons)
	for i := range rs {
		rs[i] = CloseReason(i)
	}
	return rs
}
