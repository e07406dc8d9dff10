package hub

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// Identity is who a connection belongs to, as decided by Config.Authenticate
// or Config.Refresh.
type Identity struct {
	// User is the user id; several connections may share it. Empty is refused.
	User string
	// Channels lists the private channels (names starting with '$') this
	// identity may join; "*" allows every private channel.
	Channels []string
	// ExpiresAt is when the credential expires; zero means never. Past it the
	// connection is closed with 4501 after Config.ExpiryGrace unless the
	// client refreshed it with {"op":"refresh","token":"..."}.
	ExpiresAt time.Time
}

// ConnInfo describes a connection to hooks. It is a copy; hooks may keep it.
type ConnInfo struct {
	ID         uint64 // unique within this hub, never reused
	User       string
	RemoteAddr string // the peer address, or the client address a trusted proxy reported
	Identity   Identity
}

// AuthFunc decides who is connecting from the upgrade request. Returning a
// *Error picks the HTTP status of the refusal (401 or 403); any other error
// refuses with 401.
type AuthFunc func(r *http.Request) (Identity, error)

// RefreshFunc checks a fresh token sent by a connected client ({"op":"refresh"})
// and returns the identity it grants. The identity's User must equal the
// connection's user, or the refresh is refused with 403.
type RefreshFunc func(ctx context.Context, c ConnInfo, token string) (Identity, error)

// AuthorizeFunc allows (nil) or refuses (a *Error, usually 403) a
// subscription or a client publish on a channel.
type AuthorizeFunc func(c ConnInfo, channel string) error

// Config configures a Hub. The zero value is a working single-node hub in open
// mode: the user id comes from the ?user= query parameter (or is generated),
// every channel may be joined and published to, and delivery is local.
type Config struct {
	// Authenticate identifies the client on upgrade. Nil means open mode.
	Authenticate AuthFunc
	// Refresh verifies tokens sent with {"op":"refresh"}. Nil answers such
	// commands with error 404.
	Refresh RefreshFunc
	// AuthorizeSubscribe is consulted on every subscribe after the built-in
	// rule for private channels ('$' prefix: the channel, or "*", must be in
	// Identity.Channels). Nil allows all public channels.
	AuthorizeSubscribe AuthorizeFunc
	// AuthorizePublish is consulted on every client publish. Nil allows all.
	AuthorizePublish AuthorizeFunc
	// CheckOrigin decides whether the Origin header of an upgrade is allowed.
	// Nil allows any origin. A refusal is answered with 403.
	CheckOrigin func(r *http.Request) bool
	// RemoteAddr returns the client address of an upgrade request (for
	// example from X-Forwarded-For behind a trusted proxy). Nil uses
	// r.RemoteAddr.
	RemoteAddr func(r *http.Request) string

	// Broker carries publishes and sends to other nodes. Nil means single
	// node: delivery is local only.
	Broker Broker
	// Presence answers presence and online queries for the whole cluster.
	// Nil answers from the local registry.
	Presence PresenceStore

	// MaxConnections refuses upgrades past this many open connections with
	// 503. Zero or negative means unlimited.
	MaxConnections int
	// MaxMessageBytes is the largest inbound message, after reassembly of
	// fragments; a larger one closes the connection with 1009. Zero means
	// 64 KiB; negative means unlimited.
	MaxMessageBytes int
	// MaxSubscriptionsPerConn bounds the channels one connection may join;
	// past it subscribe is answered with 429. Zero means 1,000; negative
	// means unlimited.
	MaxSubscriptionsPerConn int
	// InboundRate is the sustained number of messages per second one
	// connection may send; beyond it (after a burst of InboundBurst) commands
	// are answered with 429, and a connection still over the limit after
	// InboundBurst more messages is closed with 1008. Zero means 100/s;
	// negative means unlimited.
	InboundRate float64
	// InboundBurst is the token-bucket depth for InboundRate. Zero means
	// twice InboundRate (at least 1).
	InboundBurst int

	// OutboundQueueBytes bounds the bytes queued for one connection that the
	// kernel has not taken yet; past it the connection is evicted with 4008.
	// Zero means 1 MiB; at most 1 GiB.
	OutboundQueueBytes int
	// OutboundQueueFrames bounds the frames queued for one connection. Zero
	// means 1,024.
	OutboundQueueFrames int
	// SendBufferBytes sets each socket's kernel send buffer (SO_SNDBUF).
	// Zero leaves the kernel's autotuning, which on Linux may grow one
	// socket's buffer to megabytes during a burst; a cap keeps kernel memory
	// per connection bounded at scale, and output beyond it waits in the
	// outbound queue, where several frames leave in one writev.
	SendBufferBytes int
	// WriteTimeout evicts a connection whose queued output made no progress
	// for this long. Zero means 10s.
	WriteTimeout time.Duration
	// FanoutWorkers is the number of goroutines writing fan-out batches.
	// Zero means 2 x GOMAXPROCS.
	FanoutWorkers int
	// FanoutBatch is the number of recipients one fan-out task writes. Zero
	// means 256.
	FanoutBatch int
	// PollerWorkers is the number of goroutines handling read readiness.
	// Zero means GOMAXPROCS.
	PollerWorkers int

	// PingInterval is how long a connection may be silent before the server
	// pings it. Zero means 25s; negative disables pings.
	PingInterval time.Duration
	// IdleTimeout evicts a connection silent (no frame of any kind, pongs
	// included) for this long, with 4012. Zero means 60s; negative disables.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds reading the upgrade request's headers and
	// writing the response. Zero means 10s.
	HandshakeTimeout time.Duration
	// ExpiryGrace is how long after Identity.ExpiresAt a connection may stay
	// without a refresh. Zero means 30s.
	ExpiryGrace time.Duration
	// DrainRate is how many connections per second Shutdown closes with 4001.
	// Zero spreads the closes evenly over the Shutdown context's deadline
	// (or closes all at once when the context has none).
	DrainRate float64

	// OnConnect is called after a connection is registered.
	OnConnect func(c ConnInfo)
	// OnDisconnect is called once for every registered connection that ends.
	OnDisconnect func(c ConnInfo, reason CloseReason)
	// ErrorHandler is told about evictions and server-side failures
	// (write errors, timeouts, slow consumers, broker errors).
	ErrorHandler func(c ConnInfo, reason CloseReason, err error)
	// OnFanout observes every local fan-out: how many recipients, and how
	// long until the last write was handed to the kernel or queued.
	OnFanout func(recipients int, elapsed time.Duration)
	// OnHandshakeFailure observes refused upgrades by reason
	// ("bad_request", "unauthorized", "forbidden", "origin", "limit",
	// "timeout", "shutdown").
	OnHandshakeFailure func(reason string)

	// Logger receives the hub's logs. Nil discards them.
	Logger *slog.Logger
}
