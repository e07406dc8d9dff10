// Package hub is roost's engine: it upgrades HTTP requests to WebSocket
// connections, registers them with an epoll poller instead of giving each a
// goroutine, keeps users and channels in the sharded registry, and fans
// published messages out to channel members through a bounded worker pool.
//
// A service embeds it in three lines:
//
//	v, err := auth.New(auth.Config{Secret: secret}) // package hub/auth
//	h, err := hub.New(hub.Config{Authenticate: v.Authenticate()})
//	mux.Handle("/ws", h)
//	defer h.Shutdown(ctx)
//
// The wire protocol is described in docs/protocol.md; the design and its
// bounds in docs/architecture.md.
package hub
