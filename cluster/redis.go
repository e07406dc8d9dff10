package cluster

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roost-rt/roost/hub"
)

// Errors returned by New and the Redis methods.
var (
	// ErrBadConfig is returned (wrapped, with the field at fault) by New.
	ErrBadConfig = errors.New("roost: invalid cluster config")
	// ErrClosed is returned by calls made after Close.
	ErrClosed = errors.New("roost: cluster broker is closed")
)

// Defaults of Config's zero fields.
const (
	DefaultPrefix      = "roost"
	DefaultPresenceTTL = 30 * time.Second
	DefaultPubSubConns = 4
	// clusterGroups is the number of channel groups on a Redis Cluster. It
	// names the shard channels (a hash tag per group), so it must be the
	// same on every node and is therefore not configurable.
	clusterGroups = 16
)

// Config configures a Redis broker and presence store. Only Client is
// required; every other zero field takes its default.
type Config struct {
	// Client is the connection to Redis: a *redis.Client for one Redis
	// server or a *redis.ClusterClient for a Redis Cluster (which switches
	// channel traffic to sharded pub/sub, SSUBSCRIBE/SPUBLISH). Its
	// DialTimeout, ReadTimeout and WriteTimeout bound how long a call may
	// hang on a dead link. The broker does not close it.
	Client redis.UniversalClient
	// Prefix starts every Redis key and channel name the broker uses, so
	// several roost clusters can share one Redis. Zero means "roost". It may
	// not hold '{' or '}' (they would change Redis Cluster hash tags).
	Prefix string
	// NodeID names this node in Redis. It must be unique in the cluster and
	// may not hold NUL. Zero means 16 random hex digits.
	NodeID string
	// PresenceTTL is how long presence entries outlive the last refresh of
	// the node that wrote them; nodes refresh every PresenceTTL/3. A node
	// that dies without saying goodbye vanishes from Presence and Online
	// within this time. Zero means 30s; values under 300ms are raised to it.
	PresenceTTL time.Duration
	// PubSubConns is the number of dedicated pub/sub connections channels
	// are spread over (by hash of the channel name) on a single Redis, plus
	// one for the node's inbox. Zero means 4. On a Redis Cluster it is
	// fixed at 16 so the shard channels' hash tags agree between nodes.
	PubSubConns int
	// Heartbeat is how often an idle pub/sub or command connection is
	// pinged; a link silent for two heartbeats after a ping is taken as
	// dead and reconnected. Zero means 1s.
	Heartbeat time.Duration
	// MaxPending bounds the presence changes queued while Redis is slow or
	// unreachable; past it the queue is dropped and the next refresh
	// rewrites this node's whole presence instead. Zero means 100,000.
	MaxPending int
	// Logger receives the broker's logs. Nil discards them.
	Logger *slog.Logger
}

// Stats are the broker's counters since New. They only grow.
type Stats struct {
	Published  uint64 // channel messages sent to Redis
	Sent       uint64 // user messages and disconnects sent to other nodes' inboxes
	Received   uint64 // messages from other nodes handed to the local hub
	OwnDropped uint64 // this node's own publishes seen back from Redis and dropped
	Malformed  uint64 // messages dropped because they could not be decoded
	Errors     uint64 // Redis calls that failed
	Reconnects uint64 // pub/sub connections re-established after a failure
}

// Redis is a hub.Broker and hub.PresenceStore backed by Redis. Use the same
// value as both in hub.Config: Start, called by the hub on the Broker, binds
// the node whose local state the presence refresh reads. It is safe for
// concurrent use.
type Redis struct {
	cfg     Config
	client  redis.UniversalClient
	sharded bool // Redis Cluster: SSUBSCRIBE/SPUBLISH
	log     *slog.Logger

	node   hub.Node // set once by Start, before the goroutines start
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	groups []*group // channel groups; the inbox is not among them
	inbox  *group

	cmdUp   atomic.Bool   // the last command round trip succeeded
	started atomic.Bool   // Start ran
	closed  atomic.Bool   // Close ran
	subWake chan struct{} // wakes the subscription flusher
	preWake chan struct{} // wakes the presence writer
	subSync chan chan error
	preSync chan chan error
	noBye   bool // set by kill: stop without removing presence

	mu         sync.Mutex
	pendingSub map[string]bool          // channel -> subscribed wanted; guarded by mu
	pendingCh  map[chanUser]bool        // (channel, user) -> joined; guarded by mu
	pendingUsr map[string]bool          // user -> connected; guarded by mu
	fullSync   bool                     // pending presence was dropped; guarded by mu
	pongs      map[string]chan struct{} // Sync tokens awaited; guarded by mu
	pongSeq    uint64                   // guarded by mu

	stats struct {
		published, sent, received, ownDropped, malformed, errors, reconnects atomic.Uint64
	}
}

var (
	_ hub.Broker        = (*Redis)(nil)
	_ hub.PresenceStore = (*Redis)(nil)
)

// New checks cfg and returns a broker. It does not touch the network: a node
// whose Redis is unreachable starts degraded (Healthy is false) and joins the
// cluster when Redis appears.
func New(cfg Config) (*Redis, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("%w: Client is nil", ErrBadConfig)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("%w: Prefix %q holds '{' or '}'", ErrBadConfig, cfg.Prefix)
	}
	if cfg.NodeID == "" {
		var b [8]byte
		_, _ = crand.Read(b[:])
		cfg.NodeID = hex.EncodeToString(b[:])
	}
	if strings.ContainsRune(cfg.NodeID, 0) || len(cfg.NodeID) > 255 {
		return nil, fmt.Errorf("%w: NodeID holds NUL or is over 255 bytes", ErrBadConfig)
	}
	if cfg.PresenceTTL <= 0 {
		cfg.PresenceTTL = DefaultPresenceTTL
	}
	cfg.PresenceTTL = max(cfg.PresenceTTL, 300*time.Millisecond)
	if cfg.PubSubConns <= 0 {
		cfg.PubSubConns = DefaultPubSubConns
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = time.Second
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 100_000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Redis{
		cfg:        cfg,
		client:     cfg.Client,
		log:        cfg.Logger.With("node", cfg.NodeID),
		subWake:    make(chan struct{}, 1),
		preWake:    make(chan struct{}, 1),
		subSync:    make(chan chan error),
		preSync:    make(chan chan error),
		pendingSub: make(map[string]bool),
		pendingCh:  make(map[chanUser]bool),
		pendingUsr: make(map[string]bool),
		pongs:      make(map[string]chan struct{}),
	}
	_, r.sharded = cfg.Client.(*redis.ClusterClient)
	n := cfg.PubSubConns
	if r.sharded {
		n = clusterGroups
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	for i := range n {
		r.groups = append(r.groups, newGroup(r, i, r.groupAnchor(i)))
	}
	r.inbox = newGroup(r, n, r.inboxName(cfg.NodeID))
	return r, nil
}

// NodeID returns the node's id in the cluster.
func (r *Redis) NodeID() string { return r.cfg.NodeID }

// Start binds the broker to the local hub and starts its goroutines: one
// receiver per pub/sub connection, the subscription flusher and the presence
// writer. The hub calls it once from hub.New.
func (r *Redis) Start(n hub.Node) error {
	if n == nil {
		return fmt.Errorf("%w: Start with a nil Node", ErrBadConfig)
	}
	if r.closed.Load() {
		return ErrClosed
	}
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("roost: cluster broker started twice")
	}
	r.node = n
	for _, g := range append(r.groups[:len(r.groups):len(r.groups)], r.inbox) {
		r.wg.Add(1)
		go g.receiveLoop()
	}
	r.wg.Add(2)
	go r.subscribeLoop()
	go r.presenceLoop()
	return nil
}

// Healthy reports whether messages currently reach other nodes: the last
// command round trip succeeded and every pub/sub connection is subscribed.
func (r *Redis) Healthy() bool {
	if !r.started.Load() || r.closed.Load() || !r.cmdUp.Load() {
		return false
	}
	for _, g := range r.groups {
		if !g.up.Load() {
			return false
		}
	}
	return r.inbox.up.Load()
}

// Stats returns the broker's counters.
func (r *Redis) Stats() Stats {
	s := &r.stats
	return Stats{
		Published: s.published.Load(), Sent: s.sent.Load(), Received: s.received.Load(),
		OwnDropped: s.ownDropped.Load(), Malformed: s.malformed.Load(),
		Errors: s.errors.Load(), Reconnects: s.reconnects.Load(),
	}
}

// Sync waits until every Subscribe, Unsubscribe and presence change reported
// before the call has reached Redis, and Redis acknowledged the
// subscriptions. Without it a channel's first local member misses remote
// publishes for one flush and one round trip after joining (see
// docs/architecture.md "Cluster"); tests and callers that need a publish to
// reach a member that just joined call Sync first.
func (r *Redis) Sync(ctx context.Context) error {
	if !r.started.Load() {
		return errors.New("roost: cluster broker not started")
	}
	for _, ch := range []chan chan error{r.subSync, r.preSync} {
		done := make(chan error, 1)
		select {
		case ch <- done:
		case <-ctx.Done():
			return ctx.Err()
		case <-r.ctx.Done():
			return ErrClosed
		}
		select {
		case err := <-done:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close says goodbye (removes this node's presence entries, bounded by one
// second), closes the pub/sub connections and waits for the broker's
// goroutines. It does not close Config.Client. Calls after the first return
// nil.
func (r *Redis) Close() error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	r.cancel()
	r.wg.Wait()
	for _, g := range append(r.groups[:len(r.groups):len(r.groups)], r.inbox) {
		g.close()
	}
	return nil
}

// kill stops the broker as if the process died: no goodbye, presence
// entries stay in Redis until they expire. Tests use it to simulate SIGKILL.
func (r *Redis) kill() {
	r.noBye = true
	_ = r.Close()
}

// down records a failed Redis call and returns it wrapped in
// hub.ErrBrokerDown.
func (r *Redis) down(op string, err error) error {
	r.stats.errors.Add(1)
	if isNetErr(err) {
		r.cmdUp.Store(false)
	}
	return fmt.Errorf("%w: %s: %w", hub.ErrBrokerDown, op, err)
}

// isNetErr reports whether err says the link, not the command, failed.
func isNetErr(err error) bool {
	var re redis.Error
	return err != nil && !errors.As(err, &re)
}

// backoff returns the wait before reconnect attempt n (from 0): exponential
// from 50ms to 5s with full jitter, so nodes that lost Redis together do
// not reconnect in lockstep.
func backoff(n int) time.Duration {
	d := 5 * time.Second
	if n < 7 {
		d = 50 * time.Millisecond << n
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until the broker closes; it reports whether to go on.
func (r *Redis) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// Redis names. Channel messages of a single Redis use one pub/sub channel per
// roost channel; on a Redis Cluster the name carries its group's hash tag so
// one SSUBSCRIBE can carry a whole group (all its channels share a slot).
func (r *Redis) channelName(channel string) string {
	if r.sharded {
		return "{" + r.cfg.Prefix + ":g" + itoa(r.groupOf(channel)) + "}:c:" + channel
	}
	return r.cfg.Prefix + ":c:" + channel
}

func (r *Redis) groupAnchor(i int) string {
	if r.sharded {
		return "{" + r.cfg.Prefix + ":g" + itoa(i) + "}:anchor"
	}
	return r.cfg.Prefix + ":anchor:" + itoa(i)
}

func (r *Redis) inboxName(node string) string {
	if r.sharded {
		return "{" + r.cfg.Prefix + ":n:" + node + "}"
	}
	return r.cfg.Prefix + ":n:" + node
}

func (r *Redis) presenceKey(channel string) string { return r.cfg.Prefix + ":p:" + channel }
func (r *Redis) userKey(user string) string        { return r.cfg.Prefix + ":u:" + user }

// groupOf picks a channel's group with FNV-1a, which every node computes
// the same way (a Redis Cluster needs that; a single Redis does not care).
func (r *Redis) groupOf(channel string) int {
	h := uint32(2166136261)
	for i := 0; i < len(channel); i++ {
		h ^= uint32(channel[i])
		h *= 16777619
	}
	return int(h % uint32(len(r.groups)))
}

func itoa(i int) string { return strconv.Itoa(i) }
