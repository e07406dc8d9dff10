package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roost-rt/roost/hub"
)

// subscribeChunk bounds the channels named in one SUBSCRIBE or UNSUBSCRIBE
// command, so a burst of joins becomes a few large commands rather than one
// unbounded one.
const subscribeChunk = 1024

// Publish sends p to the other nodes through the channel's Redis pub/sub
// channel. The hub delivered it locally already; this node drops its own copy
// when Redis echoes it back. While Redis is unreachable it fails fast with an
// error wrapping hub.ErrBrokerDown; nothing is queued.
func (r *Redis) Publish(ctx context.Context, p hub.Publication) error {
	if err := r.usable(); err != nil {
		return err
	}
	e := envelope{kind: kindChannel, origin: r.cfg.NodeID, target: p.Channel, exclude: p.ExcludeUser, data: p.Data}
	buf := appendEnvelope(make([]byte, 0, 16+len(r.cfg.NodeID)+len(p.Channel)+len(p.ExcludeUser)+len(p.Data)), &e)
	name := r.channelName(p.Channel)
	var err error
	if r.sharded {
		err = r.client.SPublish(ctx, name, buf).Err()
	} else {
		err = r.client.Publish(ctx, name, buf).Err()
	}
	if err != nil {
		return r.down("publish", err)
	}
	r.stats.published.Add(1)
	return nil
}

// Send delivers data to user's connections on the other nodes: it reads the
// nodes the user is connected to from the user's presence hash and publishes
// once to each one's inbox. A user connected nowhere else is not an error.
func (r *Redis) Send(ctx context.Context, user string, data []byte) error {
	return r.toUser(ctx, kindUser, user, data)
}

// Disconnect asks the other nodes holding connections of user to close them.
func (r *Redis) Disconnect(ctx context.Context, user string) error {
	return r.toUser(ctx, kindDisconnect, user, nil)
}

func (r *Redis) toUser(ctx context.Context, kind byte, user string, data []byte) error {
	if err := r.usable(); err != nil {
		return err
	}
	nodes, err := r.userNodes(ctx, user)
	if err != nil {
		return err
	}
	var remote []string
	for _, n := range nodes {
		if n.id != r.cfg.NodeID {
			remote = append(remote, n.id)
		}
	}
	if len(remote) == 0 {
		return nil
	}
	e := envelope{kind: kind, origin: r.cfg.NodeID, target: user, data: data}
	buf := appendEnvelope(nil, &e)
	pipe := r.client.Pipeline()
	for _, id := range remote {
		if r.sharded {
			pipe.SPublish(ctx, r.inboxName(id), buf)
		} else {
			pipe.Publish(ctx, r.inboxName(id), buf)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return r.down("send", err)
	}
	r.stats.sent.Add(uint64(len(remote)))
	return nil
}

// usable fails fast while the broker is closed or its last round trip to
// Redis failed, so publishes during an outage do not each wait for a dial
// timeout. The presence writer pings at every heartbeat and clears it.
func (r *Redis) usable() error {
	if r.closed.Load() {
		return ErrClosed
	}
	if !r.cmdUp.Load() {
		return fmt.Errorf("%w: redis unreachable", hub.ErrBrokerDown)
	}
	return nil
}

// Subscribe records that channel has local members. It does not block: the
// subscription flusher sends the SUBSCRIBE, batched with others.
func (r *Redis) Subscribe(channel string) { r.queueSub(channel, true) }

// Unsubscribe records that channel lost its last local member.
func (r *Redis) Unsubscribe(channel string) { r.queueSub(channel, false) }

func (r *Redis) queueSub(channel string, on bool) {
	r.mu.Lock()
	r.pendingSub[channel] = on
	r.mu.Unlock()
	wake(r.subWake)
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// subscribeLoop owns the flushing of Subscribe/Unsubscribe calls: the last
// call per channel wins, and each group gets at most one command per chunk.
func (r *Redis) subscribeLoop() {
	defer r.wg.Done()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.subWake:
			r.flushSubs()
		case done := <-r.subSync:
			r.flushSubs()
			done <- r.pingGroups()
		}
	}
}

func (r *Redis) flushSubs() {
	r.mu.Lock()
	pending := r.pendingSub
	if len(pending) == 0 {
		r.mu.Unlock()
		return
	}
	r.pendingSub = make(map[string]bool)
	r.mu.Unlock()
	subs := make([][]string, len(r.groups))
	unsubs := make([][]string, len(r.groups))
	for ch, on := range pending {
		g := r.groupOf(ch)
		if on {
			subs[g] = append(subs[g], r.channelName(ch))
		} else {
			unsubs[g] = append(unsubs[g], r.channelName(ch))
		}
	}
	for i, g := range r.groups {
		g.update(subs[i], unsubs[i])
	}
}

// pingGroups writes a PING with a fresh token on every pub/sub connection and
// waits for the pongs: Redis answers in order, so a pong proves that every
// SUBSCRIBE written before it took effect.
func (r *Redis) pingGroups() error {
	var waits []chan struct{}
	for _, g := range append(r.groups[:len(r.groups):len(r.groups)], r.inbox) {
		r.mu.Lock()
		r.pongSeq++
		token := "sync-" + strconv.FormatUint(r.pongSeq, 10)
		c := make(chan struct{})
		r.pongs[token] = c
		r.mu.Unlock()
		waits = append(waits, c)
		g.ping(token)
	}
	t := time.NewTimer(5 * r.cfg.Heartbeat)
	defer t.Stop()
	for _, c := range waits {
		select {
		case <-c:
		case <-t.C:
			return fmt.Errorf("%w: pub/sub sync timed out", hub.ErrBrokerDown)
		case <-r.ctx.Done():
			return ErrClosed
		}
	}
	return nil
}

// group is one dedicated pub/sub connection and the Redis channels on it.
type group struct {
	r      *Redis
	idx    int
	anchor string // always subscribed: keeps the connection and its routing alive
	up     atomic.Bool

	mu    sync.Mutex
	ps    *redis.PubSub       // guarded by mu; nil until first opened
	names map[string]struct{} // channels wanted on this connection; guarded by mu
}

func newGroup(r *Redis, idx int, anchor string) *group {
	return &group{r: r, idx: idx, anchor: anchor, names: make(map[string]struct{})}
}

// pubsub returns the group's PubSub, opening it with every wanted channel if
// there is none.
func (g *group) pubsub() *redis.PubSub {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ps == nil {
		g.openLocked()
	}
	return g.ps
}

// openLocked creates the PubSub and writes SUBSCRIBE for the anchor and all
// wanted channels. go-redis remembers them and resubscribes after it
// reconnects; the receive loop replaces the PubSub when a link goes silent.
func (g *group) openLocked() {
	ctx := g.r.ctx
	if g.r.sharded {
		g.ps = g.r.client.SSubscribe(ctx)
	} else {
		g.ps = g.r.client.Subscribe(ctx)
	}
	names := make([]string, 0, len(g.names)+1)
	names = append(names, g.anchor)
	for n := range g.names {
		names = append(names, n)
	}
	g.subscribeLocked(names)
}

func (g *group) subscribeLocked(names []string) {
	for len(names) > 0 {
		n := min(len(names), subscribeChunk)
		var err error
		if g.r.sharded {
			err = g.ps.SSubscribe(g.r.ctx, names[:n]...)
		} else {
			err = g.ps.Subscribe(g.r.ctx, names[:n]...)
		}
		if err != nil && g.r.ctx.Err() == nil {
			g.r.log.Debug("subscribe deferred to reconnect", "group", g.idx, "err", err)
		}
		names = names[n:]
	}
}

func (g *group) unsubscribeLocked(names []string) {
	for len(names) > 0 {
		n := min(len(names), subscribeChunk)
		if g.r.sharded {
			_ = g.ps.SUnsubscribe(g.r.ctx, names[:n]...)
		} else {
			_ = g.ps.Unsubscribe(g.r.ctx, names[:n]...)
		}
		names = names[n:]
	}
}

// update applies a batch of subscription changes.
func (g *group) update(subs, unsubs []string) {
	if len(subs) == 0 && len(unsubs) == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, n := range subs {
		g.names[n] = struct{}{}
	}
	for _, n := range unsubs {
		delete(g.names, n)
	}
	if g.ps == nil {
		return // opened with g.names by the receive loop
	}
	g.subscribeLocked(subs)
	g.unsubscribeLocked(unsubs)
}

func (g *group) ping(token string) {
	ps := g.pubsub()
	_ = ps.Ping(g.r.ctx, token)
}

// reopen drops a silent PubSub and opens a new one with every wanted channel.
func (g *group) reopen() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ps != nil {
		_ = g.ps.Close()
	}
	g.openLocked()
}

func (g *group) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ps != nil {
		_ = g.ps.Close()
		g.ps = nil
	}
}

// receiveLoop reads the group's connection and hands messages to the hub, in
// the order Redis sent them. A read that times out sends a PING; two more
// silent heartbeats mark the link dead and replace the connection. Failures
// back off exponentially with jitter.
func (g *group) receiveLoop() {
	r := g.r
	defer r.wg.Done()
	fails, silent := 0, 0
	for r.ctx.Err() == nil {
		ps := g.pubsub()
		msg, err := ps.ReceiveTimeout(r.ctx, r.cfg.Heartbeat)
		if err != nil {
			if r.ctx.Err() != nil {
				return
			}
			if isTimeout(err) {
				if silent++; silent < 3 {
					_ = ps.Ping(r.ctx)
					continue
				}
				r.log.Warn("pub/sub link silent, reconnecting", "group", g.idx)
			} else {
				r.log.Debug("pub/sub receive failed", "group", g.idx, "err", err)
			}
			silent = 0
			g.up.Store(false)
			r.stats.errors.Add(1)
			fails++
			if !r.sleep(backoff(fails - 1)) {
				return
			}
			if isTimeout(err) || fails > 3 {
				g.reopen()
			}
			continue
		}
		silent = 0
		if fails > 0 {
			fails = 0
			r.stats.reconnects.Add(1)
			r.log.Info("pub/sub link restored", "group", g.idx)
		}
		g.up.Store(true)
		switch m := msg.(type) {
		case *redis.Message:
			r.deliver(m.Payload)
		case *redis.Pong:
			if m.Payload != "" {
				r.mu.Lock()
				if c, ok := r.pongs[m.Payload]; ok {
					delete(r.pongs, m.Payload)
					close(c)
				}
				r.mu.Unlock()
			}
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// deliver decodes one message from Redis and hands it to the local hub.
func (r *Redis) deliver(payload string) {
	e, err := decodeEnvelope([]byte(payload))
	if err != nil {
		r.stats.malformed.Add(1)
		r.log.Warn("dropping malformed cluster message", "bytes", len(payload))
		return
	}
	if e.origin == r.cfg.NodeID {
		r.stats.ownDropped.Add(1)
		return
	}
	r.stats.received.Add(1)
	switch e.kind {
	case kindChannel:
		r.node.DeliverChannel(hub.Publication{Channel: e.target, Data: e.data, ExcludeUser: e.exclude})
	case kindUser:
		r.node.DeliverUser(e.target, e.data)
	case kindDisconnect:
		r.node.DisconnectUser(e.target)
	}
}
