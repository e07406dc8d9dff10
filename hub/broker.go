package hub

import "context"

// Publication is a channel message on its way between nodes.
type Publication struct {
	Channel     string
	Data        []byte // one JSON value, already validated
	ExcludeUser string // connections of this user are skipped; may be empty
}

// Node is the view of the local hub a Broker or PresenceStore works with. The
// Hub implements it; its methods are safe for concurrent use.
type Node interface {
	// DeliverChannel fans p out to this node's members of p.Channel.
	DeliverChannel(p Publication)
	// DeliverUser sends data to this node's connections of user.
	DeliverUser(user string, data []byte)
	// DisconnectUser closes this node's connections of user with 4502.
	DisconnectUser(user string)
	// LocalChannels calls fn for every channel with at least one local member.
	LocalChannels(fn func(channel string) bool)
	// LocalUsers calls fn for every user with at least one local connection.
	LocalUsers(fn func(user string, conns int) bool)
	// LocalChannelUsers returns the distinct local users of a channel.
	LocalChannelUsers(channel string) []string
}

// Broker carries messages between the nodes of a cluster.
//
// Delivery semantics: the Hub delivers a publish to its own members itself
// and then calls Broker.Publish; the Broker must deliver it, through
// Node.DeliverChannel, on every other node exactly once while the transport is
// healthy, and never back to the publishing node. Messages from one publisher
// on one channel arrive in publish order. When the Broker cannot carry a
// message it returns an error wrapping ErrBrokerDown; nothing is queued for
// later.
type Broker interface {
	// Start binds the broker to the local node. The Hub calls it once from
	// New, before any other method.
	Start(n Node) error
	// Publish sends p to the other nodes.
	Publish(ctx context.Context, p Publication) error
	// Send delivers data to user's connections on the other nodes.
	Send(ctx context.Context, user string, data []byte) error
	// Disconnect closes user's connections on the other nodes.
	Disconnect(ctx context.Context, user string) error
	// Subscribe is called when a channel gets its first local member and
	// Unsubscribe when it loses its last. They must not block on the network:
	// implementations batch them and resubscribe after a reconnect.
	Subscribe(channel string)
	Unsubscribe(channel string)
	// Healthy reports whether messages currently reach other nodes.
	Healthy() bool
	// Close releases the broker's connections. The Hub calls it from Shutdown.
	Close() error
}

// PresenceStore answers who is in a channel and who is online across the
// cluster. The Hub reports local changes as they happen; the store must not
// block on them (batch and refresh in the background).
type PresenceStore interface {
	// Joined and Left report that a user's first local connection joined, or
	// its last local connection left, a channel.
	Joined(channel, user string)
	Left(channel, user string)
	// Connected and Disconnected report a user's local connection count
	// changing from 0 to n and from n to 0.
	Connected(user string)
	Disconnected(user string)
	// Presence returns the distinct users in channel across the cluster.
	Presence(ctx context.Context, channel string) ([]string, error)
	// Online returns how many connections user holds across the cluster.
	Online(ctx context.Context, user string) (int, error)
}
