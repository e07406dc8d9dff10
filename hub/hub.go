package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roost-rt/roost/hub/internal/wire"
	"github.com/roost-rt/roost/netpoll"
	"github.com/roost-rt/roost/shard"
)

// Defaults for zero Config fields; each field's comment in Config repeats them.
const (
	defaultMaxMessageBytes     = 64 << 10
	defaultMaxSubscriptions    = 1000
	defaultInboundRate         = 100
	defaultOutboundQueueBytes  = 1 << 20
	defaultOutboundQueueFrames = 1024
	// maxOutboundQueueBytes keeps a queue's byte count in conn's int32.
	maxOutboundQueueBytes   = 1 << 30
	defaultWriteTimeout     = 10 * time.Second
	defaultFanoutBatch      = 256
	defaultPingInterval     = 25 * time.Second
	defaultIdleTimeout      = 60 * time.Second
	defaultHandshakeTimeout = 10 * time.Second
	defaultExpiryGrace      = 30 * time.Second
	// closeHandshakeTimeout bounds how long a connection that was sent a
	// close frame waits for the client's close frame before its socket is
	// closed anyway (RFC 6455 section 7.1.1 lets the server close first).
	closeHandshakeTimeout = 2 * time.Second
	// sweepInterval is how often the liveness sweeper visits every shard.
	sweepInterval = time.Second
)

// Hub is a WebSocket pub/sub engine: it serves the upgrade, holds the
// connections in an epoll poller and the sharded registry, and fans messages
// out. A Hub is safe for concurrent use. Create it with New and end it with
// Shutdown.
type Hub struct {
	cfg    Config // defaults applied
	log    *slog.Logger
	reg    *shard.Registry[*conn]
	poller *netpoll.Poller
	fan    *fanout

	// anonPrefix and anonSeq generate user ids in open mode.
	anonPrefix string
	anonSeq    atomic.Uint64

	// pending counts upgrades in progress, so MaxConnections also bounds
	// handshakes.
	pending atomic.Int64
	// draining is set when Shutdown begins: upgrades are refused and Ready
	// reports false.
	draining atomic.Bool
	// closed is set when Shutdown has finished: calls return ErrClosed.
	closed atomic.Bool
	// runtimeSockets leaves every socket with the Go runtime, as when
	// ownSocket cannot duplicate one at the descriptor limit; tests set it
	// to drive that path.
	runtimeSockets bool

	// closing holds connections that were sent a close frame and wait for
	// the client's answer; they have left the registry, so the sweeper
	// finds them here to enforce the close-handshake timeout.
	closingMu sync.Mutex
	closing   map[*conn]int64 // conn -> close-handshake deadline (unix nanos)

	shutdownOnce sync.Once
	shutdownErr  error
	stop         chan struct{} // closed by Shutdown to end the sweeper
	wg           sync.WaitGroup

	// presenceSem bounds concurrent cluster presence queries made on behalf
	// of clients, which block on the network.
	presenceSem chan struct{}

	st counters
}

// counters are the Hub's statistics, updated atomically.
type counters struct {
	messagesIn, messagesOut, bytesIn, bytesOut atomic.Uint64
	published, deliveries, writeCalls          atomic.Uint64
	evictions, writeErrors, queueOverflows     atomic.Uint64
	rateLimited, brokerErrors                  atomic.Uint64
	disconnects                                [numReasons]atomic.Uint64
	handshake                                  [numHandshakeReasons]atomic.Uint64
}

// Handshake failure reasons, as reported to OnHandshakeFailure and in Stats.
const (
	hsBadRequest = iota
	hsUnauthorized
	hsForbidden
	hsOrigin
	hsLimit
	hsTimeout
	hsShutdown
	numHandshakeReasons
)

var handshakeNames = [numHandshakeReasons]string{"bad_request", "unauthorized", "forbidden", "origin", "limit", "timeout", "shutdown"}

// New starts a Hub: its poller, fan-out workers and liveness sweeper, and
// binds cfg.Broker to it. Zero Config fields take the defaults documented on
// Config.
func New(cfg Config) (*Hub, error) {
	cfg = withDefaults(cfg)
	h := &Hub{
		cfg:         cfg,
		log:         cfg.Logger,
		reg:         shard.New[*conn](),
		stop:        make(chan struct{}),
		presenceSem: make(chan struct{}, 64),
		closing:     make(map[*conn]int64),
	}
	var b [6]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		return nil, err
	}
	h.anonPrefix = "anon-" + hex.EncodeToString(b[:]) + "-"

	p, err := netpoll.New(netpoll.Config{Handler: h.onEvent, Workers: cfg.PollerWorkers})
	if err != nil {
		return nil, err
	}
	h.poller = p
	h.fan = newFanout(h, cfg.FanoutWorkers)
	h.wg.Add(1)
	go h.sweep()
	if cfg.Broker != nil {
		if err := cfg.Broker.Start(h); err != nil {
			h.fan.close()
			close(h.stop)
			h.wg.Wait()
			_ = p.Close()
			return nil, err
		}
	}
	return h, nil
}

func withDefaults(c Config) Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = defaultMaxMessageBytes
	}
	if c.MaxSubscriptionsPerConn == 0 {
		c.MaxSubscriptionsPerConn = defaultMaxSubscriptions
	}
	if c.InboundRate == 0 {
		c.InboundRate = defaultInboundRate
	}
	if c.InboundBurst <= 0 {
		c.InboundBurst = max(1, int(2*c.InboundRate))
	}
	if c.OutboundQueueBytes <= 0 {
		c.OutboundQueueBytes = defaultOutboundQueueBytes
	}
	c.OutboundQueueBytes = min(c.OutboundQueueBytes, maxOutboundQueueBytes)
	if c.OutboundQueueFrames <= 0 {
		c.OutboundQueueFrames = defaultOutboundQueueFrames
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.FanoutWorkers <= 0 {
		c.FanoutWorkers = 2 * runtime.GOMAXPROCS(0)
	}
	if c.FanoutBatch <= 0 {
		c.FanoutBatch = defaultFanoutBatch
	}
	if c.PingInterval == 0 {
		c.PingInterval = defaultPingInterval
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = defaultIdleTimeout
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = defaultHandshakeTimeout
	}
	if c.ExpiryGrace <= 0 {
		c.ExpiryGrace = defaultExpiryGrace
	}
	return c
}

// ValidChannel reports whether name is a valid channel name: 1 to 255 bytes
// of printable UTF-8 without whitespace.
func ValidChannel(name string) bool { return wire.ValidChannel(name) }

// Stats returns the Hub's counters and gauges.
func (h *Hub) Stats() Stats {
	n := h.reg.Counts()
	s := Stats{
		Connections:     n.Conns,
		Users:           n.Users,
		Channels:        n.Channels,
		Subscriptions:   n.Subscriptions,
		MessagesIn:      h.st.messagesIn.Load(),
		MessagesOut:     h.st.messagesOut.Load(),
		BytesIn:         h.st.bytesIn.Load(),
		BytesOut:        h.st.bytesOut.Load(),
		Published:       h.st.published.Load(),
		Deliveries:      h.st.deliveries.Load(),
		WriteCalls:      h.st.writeCalls.Load(),
		Evictions:       h.st.evictions.Load(),
		WriteErrors:     h.st.writeErrors.Load(),
		QueueOverflows:  h.st.queueOverflows.Load(),
		RateLimited:     h.st.rateLimited.Load(),
		BrokerErrors:    h.st.brokerErrors.Load(),
		Disconnects:     make(map[string]uint64, numReasons),
		HandshakeFailed: make(map[string]uint64, numHandshakeReasons),
	}
	for r := range h.st.disconnects {
		s.Disconnects[CloseReason(r).String()] = h.st.disconnects[r].Load()
	}
	for i, name := range handshakeNames {
		s.HandshakeFailed[name] = h.st.handshake[i].Load()
	}
	return s
}

// Ready reports whether the Hub accepts new connections: false once Shutdown
// began.
func (h *Hub) Ready() bool { return !h.draining.Load() }

// Degraded reports whether a Broker is configured and cannot currently reach
// the other nodes; the Hub still serves its own connections.
func (h *Hub) Degraded() bool {
	return h.cfg.Broker != nil && !h.cfg.Broker.Healthy()
}

// ChannelInfo is a channel and its local member count, as listed by Channels.
type ChannelInfo struct {
	Name    string `json:"name"`
	Members int    `json:"members"`
}

// Channels lists local channels whose name starts with prefix and sorts after
// after, in name order, at most limit of them (limit <= 0 means 100). It
// scans every shard, so it is meant for admin pages, not hot paths.
func (h *Hub) Channels(prefix, after string, limit int) []ChannelInfo {
	if limit <= 0 {
		limit = 100
	}
	var all []ChannelInfo
	h.reg.RangeChannels(func(name string, members int) bool {
		if strings.HasPrefix(name, prefix) && name > after {
			all = append(all, ChannelInfo{Name: name, Members: members})
		}
		return true
	})
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	if len(all) > limit {
		all = all[:limit]
	}
	return all
}

// Presence returns the distinct users subscribed to channel, across the
// cluster when a PresenceStore is configured.
func (h *Hub) Presence(ctx context.Context, channel string) ([]string, error) {
	if !wire.ValidChannel(channel) {
		return nil, ErrBadChannel
	}
	if h.cfg.Presence != nil {
		return h.cfg.Presence.Presence(ctx, channel)
	}
	users := h.reg.ChannelUsers(channel)
	sort.Strings(users)
	return users, nil
}

// IsOnline reports whether user holds at least one connection, and how many,
// across the cluster when a PresenceStore is configured.
func (h *Hub) IsOnline(ctx context.Context, user string) (bool, int, error) {
	if h.cfg.Presence != nil {
		n, err := h.cfg.Presence.Online(ctx, user)
		return n > 0, n, err
	}
	n := h.reg.UserConnCount(user)
	return n > 0, n, nil
}

// The Node interface, through which a Broker and a PresenceStore see this
// node.
var _ Node = (*Hub)(nil)

// DeliverChannel fans p out to this node's members of p.Channel. It is how a
// Broker hands over messages published on other nodes.
func (h *Hub) DeliverChannel(p Publication) { h.publishLocal(p.Channel, p.Data, p.ExcludeUser) }

// DeliverUser sends data to this node's connections of user.
func (h *Hub) DeliverUser(user string, data []byte) { h.sendLocal(user, data) }

// DisconnectUser closes this node's connections of user with 4502.
func (h *Hub) DisconnectUser(user string) { h.disconnectLocal(user) }

// LocalChannels calls fn for every channel with at least one local member.
func (h *Hub) LocalChannels(fn func(channel string) bool) {
	h.reg.RangeChannels(func(name string, _ int) bool { return fn(name) })
}

// LocalUsers calls fn for every user with at least one local connection.
func (h *Hub) LocalUsers(fn func(user string, conns int) bool) { h.reg.RangeUsers(fn) }

// LocalChannelUsers returns the distinct local users of a channel.
func (h *Hub) LocalChannelUsers(channel string) []string { return h.reg.ChannelUsers(channel) }
