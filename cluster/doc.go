// Package cluster joins roost nodes through Redis: Redis is a hub.Broker
// (channel publishes, sends to users and disconnects reach every node) and a
// hub.PresenceStore (who is in a channel and who is online, cluster-wide).
//
// One *Redis serves as both:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	b, err := cluster.New(cluster.Config{Client: rdb, Prefix: "chat"})
//	h, err := hub.New(hub.Config{Broker: b, Presence: b})
//
// Channel messages travel on one Redis pub/sub channel per roost channel,
// subscribed by a node only while it has local members, on a few dedicated
// pub/sub connections (channels are spread over them by hash). Each message
// carries the publishing node's id, so that node drops its own copy: the hub
// delivered it locally already. With a *redis.ClusterClient the broker uses
// sharded pub/sub (SSUBSCRIBE/SPUBLISH), so channel traffic is spread over
// the cluster's masters instead of being broadcast to all of them.
//
// Sends to a user do not need a subscription per user: each node has one
// inbox channel, and the user's presence hash says which nodes hold the
// user's connections. Presence entries carry a deadline and are refreshed by
// their node every PresenceTTL/3, so a node that dies without a goodbye
// vanishes within PresenceTTL; no query scans the keyspace.
//
// Failures: Subscribe, Unsubscribe and the presence hooks never block on the
// network. When Redis is unreachable Publish and Send fail fast with an error
// wrapping hub.ErrBrokerDown, Healthy reports false (the hub keeps serving
// its local connections) and the broker reconnects with exponential backoff
// and jitter, resubscribes every channel that still has local members and
// rewrites this node's presence. docs/architecture.md, "Cluster", has the
// details and the reasoning.
package cluster
