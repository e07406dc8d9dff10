package hub

// Stats is a point-in-time view of a Hub's counters. Counters only grow;
// gauges (Connections, Users, Channels, Subscriptions) are current values.
type Stats struct {
	Connections   int64 `json:"connections"`
	Users         int64 `json:"users"`
	Channels      int64 `json:"channels"`
	Subscriptions int64 `json:"subscriptions"`

	MessagesIn  uint64 `json:"messages_in"`  // client commands received
	MessagesOut uint64 `json:"messages_out"` // frames handed to the kernel (replies and pushes)
	BytesIn     uint64 `json:"bytes_in"`
	BytesOut    uint64 `json:"bytes_out"`
	Published   uint64 `json:"published"`   // messages published (API, client, broker)
	Deliveries  uint64 `json:"deliveries"`  // pushes queued to a recipient
	WriteCalls  uint64 `json:"write_calls"` // write/writev system calls made

	// Disconnects counts ended connections by CloseReason.String().
	Disconnects map[string]uint64 `json:"disconnects"`
	// Evictions counts connections the server ended because they failed
	// (slow_consumer, write_error, write_timeout, no_heartbeat, ...).
	Evictions       uint64            `json:"evictions"`
	WriteErrors     uint64            `json:"write_errors"`
	QueueOverflows  uint64            `json:"queue_overflows"`
	RateLimited     uint64            `json:"rate_limited"` // commands answered 429
	BrokerErrors    uint64            `json:"broker_errors"`
	HandshakeFailed map[string]uint64 `json:"handshake_failures"`
}
