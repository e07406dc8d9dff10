package cluster

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roost-rt/roost/hub"
)

// recNode is a test double of the hub side of hub.Node: it records what the
// broker delivers and serves a local state the test sets. The integration
// tests in hub_test.go use real hubs instead.
type recNode struct {
	mu       sync.Mutex
	pubs     []hub.Publication          // guarded by mu
	sends    map[string][][]byte        // guarded by mu
	closed   []string                   // users whose DisconnectUser ran; guarded by mu
	users    map[string]int             // local user -> conns; guarded by mu
	channels map[string]map[string]bool // local channel -> users; guarded by mu
}

func newRecNode() *recNode {
	return &recNode{sends: make(map[string][][]byte), users: make(map[string]int), channels: make(map[string]map[string]bool)}
}

func (n *recNode) DeliverChannel(p hub.Publication) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pubs = append(n.pubs, p)
}

func (n *recNode) DeliverUser(user string, data []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sends[user] = append(n.sends[user], data)
}

func (n *recNode) DisconnectUser(user string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = append(n.closed, user)
}

func (n *recNode) LocalChannels(fn func(string) bool) {
	n.mu.Lock()
	chs := make([]string, 0, len(n.channels))
	for ch := range n.channels {
		chs = append(chs, ch)
	}
	n.mu.Unlock()
	for _, ch := range chs {
		if !fn(ch) {
			return
		}
	}
}

func (n *recNode) LocalUsers(fn func(string, int) bool) {
	n.mu.Lock()
	us := make(map[string]int, len(n.users))
	for u, c := range n.users {
		us[u] = c
	}
	n.mu.Unlock()
	for u, c := range us {
		if !fn(u, c) {
			return
		}
	}
}

func (n *recNode) LocalChannelUsers(ch string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var us []string
	for u := range n.channels[ch] {
		us = append(us, u)
	}
	slices.Sort(us)
	return us
}

// connect and join change the local state and report it to b the way the
// hub does.
func (n *recNode) connect(b *Redis, user string, conns int) {
	n.mu.Lock()
	first := n.users[user] == 0
	n.users[user] = conns
	n.mu.Unlock()
	if first {
		b.Connected(user)
	}
}

func (n *recNode) disconnect(b *Redis, user string) {
	n.mu.Lock()
	delete(n.users, user)
	n.mu.Unlock()
	b.Disconnected(user)
}

func (n *recNode) join(b *Redis, ch, user string) {
	n.mu.Lock()
	m := n.channels[ch]
	first := m == nil
	if first {
		m = make(map[string]bool)
		n.channels[ch] = m
	}
	newUser := !m[user]
	m[user] = true
	n.mu.Unlock()
	if first {
		b.Subscribe(ch)
	}
	if newUser {
		b.Joined(ch, user)
	}
}

func (n *recNode) leave(b *Redis, ch, user string) {
	n.mu.Lock()
	m := n.channels[ch]
	had := m[user]
	delete(m, user)
	last := m != nil && len(m) == 0
	if last {
		delete(n.channels, ch)
	}
	n.mu.Unlock()
	if had {
		b.Left(ch, user)
	}
	if last {
		b.Unsubscribe(ch)
	}
}

func (n *recNode) published() []hub.Publication {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.pubs)
}

func (n *recNode) sent(user string) [][]byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.sends[user])
}

func (n *recNode) disconnected() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.closed)
}

// testNode is a started broker with its recording node.
type testNode struct {
	*Redis
	node *recNode
}

// startNode starts a broker on client with cfg (Client filled in) and a
// recording node, waits until it is healthy unless told not to, and closes
// it on Cleanup.
func startNode(tb testing.TB, client redis.UniversalClient, cfg Config) testNode {
	tb.Helper()
	cfg.Client = client
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 200 * time.Millisecond
	}
	b, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	n := newRecNode()
	if err := b.Start(n); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() { _ = b.Close() })
	return testNode{b, n}
}

func waitHealthy(tb testing.TB, nodes ...testNode) {
	tb.Helper()
	for _, n := range nodes {
		waitFor(tb, 10*time.Second, "broker "+n.NodeID()+" healthy", n.Healthy)
	}
}

func syncAll(tb testing.TB, nodes ...testNode) {
	tb.Helper()
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := n.Sync(ctx)
		cancel()
		if err != nil {
			tb.Fatalf("Sync %s: %v", n.NodeID(), err)
		}
	}
}
