package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roost-rt/roost/hub"
)

func TestNewConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"nil client", Config{}, true},
		{"brace in prefix", Config{Client: c, Prefix: "a{b"}, true},
		{"NUL in node id", Config{Client: c, NodeID: "a\x00b"}, true},
		{"long node id", Config{Client: c, NodeID: strings.Repeat("n", 256)}, true},
		{"defaults", Config{Client: c}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New(tt.cfg)
			if tt.wantErr {
				if !errors.Is(err, ErrBadConfig) {
					t.Fatalf("New = %v, want ErrBadConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer b.Close()
			if b.cfg.Prefix != DefaultPrefix || b.cfg.PresenceTTL != DefaultPresenceTTL || len(b.groups) != DefaultPubSubConns || len(b.NodeID()) != 16 {
				t.Fatalf("defaults not applied: %+v groups=%d", b.cfg, len(b.groups))
			}
			if b.Healthy() {
				t.Fatal("Healthy before Start")
			}
		})
	}
}

// backend is a Redis deployment the broker tests run against.
type backend struct {
	name   string
	client func(tb testing.TB) redis.UniversalClient
}

func backends(t *testing.T) []backend {
	single := startRedis(t)
	cl := startRedisCluster(t)
	return []backend{
		{"single", func(tb testing.TB) redis.UniversalClient { return single.Client(tb) }},
		{"cluster", func(tb testing.TB) redis.UniversalClient { return cl.Client(tb) }},
	}
}

func startNodes(tb testing.TB, be backend, n int, cfg Config) []testNode {
	tb.Helper()
	nodes := make([]testNode, n)
	for i := range nodes {
		c := cfg
		c.NodeID = fmt.Sprintf("%s-node%d", cfg.Prefix, i)
		nodes[i] = startNode(tb, be.client(tb), c)
	}
	waitHealthy(tb, nodes...)
	return nodes
}

func TestBroker(t *testing.T) {
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			t.Run("publish reaches other nodes once, in order", func(t *testing.T) { testPublish(t, be) })
			t.Run("unsubscribe stops delivery", func(t *testing.T) { testUnsubscribe(t, be) })
			t.Run("send and disconnect follow the user", func(t *testing.T) { testSend(t, be) })
			t.Run("prefixes isolate clusters", func(t *testing.T) { testPrefixIsolation(t, be) })
			t.Run("presence and online", func(t *testing.T) { testPresence(t, be) })
		})
	}
}

func testPublish(t *testing.T, be backend) {
	ns := startNodes(t, be, 3, Config{Prefix: "pub"})
	a, b, c := ns[0], ns[1], ns[2]
	// Many channels so they spread over every group (and, on a Redis
	// Cluster, over the masters).
	var chans []string
	for i := range 40 {
		chans = append(chans, fmt.Sprintf("room-%d", i))
	}
	for _, ch := range chans {
		b.node.join(b.Redis, ch, "bob")
		c.node.join(c.Redis, ch, "carol")
		a.node.join(a.Redis, ch, "alice") // a subscribes too: it must drop its own publishes
	}
	syncAll(t, ns...)
	const perChannel = 25
	ctx := context.Background()
	for i := range perChannel {
		for _, ch := range chans {
			p := hub.Publication{Channel: ch, Data: fmt.Appendf(nil, `{"n":%d}`, i), ExcludeUser: "x"}
			if err := a.Publish(ctx, p); err != nil {
				t.Fatalf("Publish: %v", err)
			}
		}
	}
	want := perChannel * len(chans)
	for _, n := range []testNode{b, c} {
		waitFor(t, 10*time.Second, "deliveries on "+n.NodeID(), func() bool { return len(n.node.published()) >= want })
	}
	syncAll(t, ns...) // anything extra would have arrived before the sync pongs
	for _, n := range []testNode{b, c} {
		got := n.node.published()
		if len(got) != want {
			t.Fatalf("%s got %d deliveries, want %d", n.NodeID(), len(got), want)
		}
		next := map[string]int{}
		for _, p := range got {
			if want := fmt.Sprintf(`{"n":%d}`, next[p.Channel]); string(p.Data) != want || p.ExcludeUser != "x" {
				t.Fatalf("%s: %s got %s exclude %q, want %s in order", n.NodeID(), p.Channel, p.Data, p.ExcludeUser, want)
			}
			next[p.Channel]++
		}
	}
	if got := a.node.published(); len(got) != 0 {
		t.Fatalf("publisher got %d of its own messages back", len(got))
	}
	if s := a.Stats(); s.OwnDropped != uint64(want) || s.Published != uint64(want) {
		t.Fatalf("publisher stats %+v, want %d published and dropped", s, want)
	}
}

func testUnsubscribe(t *testing.T, be backend) {
	ns := startNodes(t, be, 2, Config{Prefix: "unsub"})
	a, b := ns[0], ns[1]
	b.node.join(b.Redis, "news", "bob")
	b.node.join(b.Redis, "sport", "bob")
	syncAll(t, ns...)
	b.node.leave(b.Redis, "news", "bob")
	syncAll(t, ns...)
	ctx := context.Background()
	for _, ch := range []string{"news", "sport"} {
		if err := a.Publish(ctx, hub.Publication{Channel: ch, Data: []byte(`1`)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "sport delivery", func() bool { return len(b.node.published()) >= 1 })
	syncAll(t, ns...)
	got := b.node.published()
	if len(got) != 1 || got[0].Channel != "sport" {
		t.Fatalf("got %+v, want only sport", got)
	}
}

func testSend(t *testing.T, be backend) {
	ns := startNodes(t, be, 3, Config{Prefix: "send"})
	a, b, c := ns[0], ns[1], ns[2]
	b.node.connect(b.Redis, "u1", 2)
	c.node.connect(c.Redis, "u2", 1)
	a.node.connect(a.Redis, "u1", 1) // also local to the sender: the hub delivers that itself
	syncAll(t, ns...)
	ctx := context.Background()
	if err := a.Send(ctx, "u1", []byte(`"hi"`)); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(ctx, "nobody", []byte(`"x"`)); err != nil {
		t.Fatalf("Send to an offline user: %v", err)
	}
	waitFor(t, 5*time.Second, "send reaches b", func() bool { return len(b.node.sent("u1")) == 1 })
	if err := a.Disconnect(ctx, "u2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "disconnect reaches c", func() bool { return slices.Equal(c.node.disconnected(), []string{"u2"}) })
	syncAll(t, ns...)
	if got := string(b.node.sent("u1")[0]); got != `"hi"` {
		t.Fatalf("b got %s", got)
	}
	if len(c.node.sent("u1")) != 0 || len(a.node.sent("u1")) != 0 || len(b.node.disconnected()) != 0 {
		t.Fatal("send or disconnect reached a node without the user")
	}
}

func testPrefixIsolation(t *testing.T, be backend) {
	x := startNodes(t, be, 2, Config{Prefix: "iso-x"})
	y := startNodes(t, be, 2, Config{Prefix: "iso-y"})
	for _, n := range append(slices.Clone(x), y...) {
		n.node.join(n.Redis, "shared", "u")
		n.node.connect(n.Redis, "u", 1)
	}
	all := append(slices.Clone(x), y...)
	syncAll(t, all...)
	ctx := context.Background()
	if err := x[0].Publish(ctx, hub.Publication{Channel: "shared", Data: []byte(`"x"`)}); err != nil {
		t.Fatal(err)
	}
	if err := x[0].Send(ctx, "u", []byte(`"x"`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "x's own cluster delivers", func() bool {
		return len(x[1].node.published()) == 1 && len(x[1].node.sent("u")) == 1
	})
	syncAll(t, all...)
	for _, n := range y {
		if len(n.node.published()) != 0 || len(n.node.sent("u")) != 0 {
			t.Fatalf("message of prefix iso-x leaked into %s", n.NodeID())
		}
	}
	if on, err := y[0].Online(ctx, "u"); err != nil || on != 2 {
		t.Fatalf("Online in iso-y = %d, %v; want 2 (its own nodes only)", on, err)
	}
}

func testPresence(t *testing.T, be backend) {
	ns := startNodes(t, be, 3, Config{Prefix: "pres", PresenceTTL: time.Second})
	a, b, c := ns[0], ns[1], ns[2]
	ctx := context.Background()
	a.node.connect(a.Redis, "ann", 2)
	a.node.join(a.Redis, "lobby", "ann")
	b.node.connect(b.Redis, "ben", 1)
	b.node.join(b.Redis, "lobby", "ben")
	b.node.connect(b.Redis, "ann", 1)
	b.node.join(b.Redis, "lobby", "ann")
	syncAll(t, ns...)
	users, err := c.Presence(ctx, "lobby")
	if err != nil || !slices.Equal(users, []string{"ann", "ben"}) {
		t.Fatalf("Presence = %v, %v; want [ann ben]", users, err)
	}
	// Counts come from the periodic refresh (every TTL/3).
	waitFor(t, 5*time.Second, "ann online with 3 conns", func() bool {
		n, err := c.Online(ctx, "ann")
		return err == nil && n == 3
	})
	b.node.leave(b.Redis, "lobby", "ben")
	b.node.disconnect(b.Redis, "ben")
	syncAll(t, ns...)
	if users, _ := c.Presence(ctx, "lobby"); !slices.Equal(users, []string{"ann"}) {
		t.Fatalf("after leave Presence = %v, want [ann]", users)
	}
	if n, _ := c.Online(ctx, "ben"); n != 0 {
		t.Fatalf("ben Online = %d after disconnect", n)
	}
	// A node killed without goodbye: its entries vanish within the TTL,
	// the others' stay (they keep refreshing).
	killed := time.Now()
	a.kill()
	waitFor(t, 5*time.Second, "killed node's presence expires", func() bool {
		n, err := c.Online(ctx, "ann")
		return err == nil && n == 1
	})
	if el := time.Since(killed); el > 2*time.Second {
		t.Errorf("presence of a killed node took %v to expire; TTL is 1s", el)
	}
	// Outlive two TTLs: live entries are refreshed, not expired.
	waitFor(t, 5*time.Second, "two TTLs", func() bool { return time.Since(killed) > 2*time.Second })
	if users, _ := c.Presence(ctx, "lobby"); !slices.Equal(users, []string{"ann"}) {
		t.Fatalf("live presence lost: %v", users)
	}
	// A clean Close says goodbye at once.
	_ = b.Close()
	if users, _ := c.Presence(ctx, "lobby"); len(users) != 0 {
		t.Fatalf("after Close Presence = %v, want none", users)
	}
	if n, _ := c.Online(ctx, "ann"); n != 0 {
		t.Fatalf("after Close ann Online = %d", n)
	}
}
