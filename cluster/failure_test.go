package cluster

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/redis/go-redis/v9"

	"github.com/roost-rt/roost/hub"
)

// newToxiServer builds a toxiproxy API server with its zero (silent) logger;
// the logger's type comes from toxiproxy's signature, so this package needs
// no import of the logging library.
func newToxiServer[M, L any](f func(M, L) *toxiproxy.ApiServer, m M) *toxiproxy.ApiServer {
	var silent L
	return f(m, silent)
}

// startProxy runs an in-process toxiproxy in front of upstream.
func startProxy(tb testing.TB, upstream string) *toxiproxy.Proxy {
	tb.Helper()
	srv := newToxiServer(toxiproxy.NewServer, toxiproxy.NewMetricsContainer(nil))
	p := toxiproxy.NewProxy(srv, "redis", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		tb.Fatalf("toxiproxy: %v", err)
	}
	tb.Cleanup(p.Stop)
	return p
}

func addToxic(tb testing.TB, p *toxiproxy.Proxy, name, typ, stream, attrs string) {
	tb.Helper()
	js := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"attributes":%s}`, name, typ, stream, attrs)
	if _, err := p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
		tb.Fatalf("add toxic %s: %v", name, err)
	}
}

func removeToxic(tb testing.TB, p *toxiproxy.Proxy, name string) {
	tb.Helper()
	if err := p.Toxics.RemoveToxic(context.Background(), name); err != nil {
		tb.Fatalf("remove toxic %s: %v", name, err)
	}
}

// deliveredAfter publishes on from until to receives on channel, proving the
// path works; it returns how many publishes it took.
func deliveredAfter(tb testing.TB, from, to testNode, channel string) {
	tb.Helper()
	before := len(to.node.published())
	var err error
	waitFor(tb, 20*time.Second, "delivery "+from.NodeID()+" -> "+to.NodeID(), func() bool {
		if err != nil {
			tb.Logf("publish: %v", err)
		}
		err = from.Publish(context.Background(), hub.Publication{Channel: channel, Data: []byte(`"probe"`)})
		return len(to.node.published()) > before
	})
}

func TestRedisRestart(t *testing.T) {
	srv := startRedis(t)
	a := startNode(t, srv.Client(t), Config{NodeID: "a", PresenceTTL: 3 * time.Second})
	b := startNode(t, srv.Client(t), Config{NodeID: "b", PresenceTTL: 3 * time.Second})
	waitHealthy(t, a, b)
	b.node.join(b.Redis, "room", "bob")
	b.node.connect(b.Redis, "bob", 1)
	syncAll(t, a, b)
	deliveredAfter(t, a, b, "room")

	srv.Stop()
	waitFor(t, 10*time.Second, "both unhealthy", func() bool { return !a.Healthy() && !b.Healthy() })
	err := a.Publish(context.Background(), hub.Publication{Channel: "room", Data: []byte(`1`)})
	if !errors.Is(err, hub.ErrBrokerDown) {
		t.Fatalf("Publish while Redis is down = %v, want ErrBrokerDown", err)
	}
	if err := a.Send(context.Background(), "bob", []byte(`1`)); !errors.Is(err, hub.ErrBrokerDown) {
		t.Fatalf("Send while Redis is down = %v, want ErrBrokerDown", err)
	}
	// Changes made during the outage reach Redis after it.
	b.node.join(b.Redis, "later", "bob")

	srv.Start() // same port, empty dataset
	waitHealthy(t, a, b)
	deliveredAfter(t, a, b, "room")  // resubscribed
	deliveredAfter(t, a, b, "later") // subscribed during the outage
	waitFor(t, 10*time.Second, "presence rewritten after restart", func() bool {
		users, err := a.Presence(context.Background(), "later")
		n, err2 := a.Online(context.Background(), "bob")
		return err == nil && err2 == nil && len(users) == 1 && n == 1
	})
	if b.Stats().Reconnects == 0 {
		t.Fatal("no reconnect counted")
	}
}

func TestStartWithoutRedis(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	mk := func(id string) testNode {
		c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 500 * time.Millisecond})
		t.Cleanup(func() { _ = c.Close() })
		return startNode(t, c, Config{NodeID: id})
	}
	a, b := mk("a"), mk("b")
	b.node.join(b.Redis, "room", "bob")
	// Degraded, not failed: the node runs, reports it and refuses cross-node
	// delivery with ErrBrokerDown.
	waitFor(t, 5*time.Second, "a first failed heartbeat", func() bool { return a.Stats().Errors > 0 || !a.Healthy() })
	if a.Healthy() {
		t.Fatal("Healthy without Redis")
	}
	if err := a.Publish(context.Background(), hub.Publication{Channel: "room", Data: []byte(`1`)}); !errors.Is(err, hub.ErrBrokerDown) {
		t.Fatalf("Publish = %v, want ErrBrokerDown", err)
	}
	srv := &redisServer{tb: t, port: port, args: []string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}}
	srv.Start()
	t.Cleanup(srv.Stop)
	waitHealthy(t, a, b)
	deliveredAfter(t, a, b, "room")
}

func TestSlowAndCutLink(t *testing.T) {
	srv := startRedis(t)
	proxy := startProxy(t, srv.Addr())
	viaProxy := redis.NewClient(&redis.Options{Addr: proxy.Listen, DialTimeout: 500 * time.Millisecond,
		ReadTimeout: time.Second, WriteTimeout: time.Second, PoolSize: 8})
	t.Cleanup(func() { _ = viaProxy.Close() })
	a := startNode(t, srv.Client(t), Config{NodeID: "a"})
	b := startNode(t, viaProxy, Config{NodeID: "b", MaxPending: 1000})
	waitHealthy(t, a, b)
	b.node.join(b.Redis, "room", "bob")
	a.node.join(a.Redis, "room", "ann")
	syncAll(t, a, b)
	deliveredAfter(t, a, b, "room")
	base := brokerGoroutines()

	t.Run("slow", func(t *testing.T) {
		addToxic(t, proxy, "lat-down", "latency", "downstream", `{"latency":150,"jitter":50}`)
		addToxic(t, proxy, "lat-up", "latency", "upstream", `{"latency":150,"jitter":50}`)
		deliveredAfter(t, a, b, "room")
		ctx := context.Background()
		if err := b.Publish(ctx, hub.Publication{Channel: "room", Data: []byte(`1`)}); err != nil {
			t.Fatalf("Publish over a slow link: %v", err)
		}
		removeToxic(t, proxy, "lat-down")
		removeToxic(t, proxy, "lat-up")
	})

	t.Run("cut", func(t *testing.T) {
		// The link stays open but carries nothing: only heartbeats can tell.
		addToxic(t, proxy, "cut-down", "timeout", "downstream", `{"timeout":0}`)
		addToxic(t, proxy, "cut-up", "timeout", "upstream", `{"timeout":0}`)
		waitFor(t, 10*time.Second, "b notices the cut", func() bool { return !b.Healthy() })
		// Hammer the cut node: presence churn must stay bounded by
		// MaxPending and publishes must fail fast without piling up
		// goroutines.
		for i := range 20_000 {
			b.Joined("churn", fmt.Sprint("user-", i))
			b.Subscribe(fmt.Sprint("ch-", i%50))
		}
		for range 200 {
			if err := b.Publish(context.Background(), hub.Publication{Channel: "room", Data: []byte(`1`)}); !errors.Is(err, hub.ErrBrokerDown) {
				t.Fatalf("Publish over a cut link = %v, want ErrBrokerDown", err)
			}
		}
		b.mu.Lock()
		pending := len(b.pendingCh) + len(b.pendingUsr)
		b.mu.Unlock()
		if pending > 1000 {
			t.Fatalf("%d presence changes queued, bound is 1000", pending)
		}
		if g := brokerGoroutines(); g > base+4 {
			t.Fatalf("goroutines grew from %d to %d during the cut", base, g)
		}
		removeToxic(t, proxy, "cut-down")
		removeToxic(t, proxy, "cut-up")
		waitHealthy(t, b)
		deliveredAfter(t, a, b, "room")
		deliveredAfter(t, b, a, "room")
	})
}

// brokerGoroutines counts the goroutines running broker or go-redis code
// (toxiproxy's own goroutines per toxic are not the broker's to bound).
func brokerGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "roost/cluster.(*") || strings.Contains(g, "redis/go-redis") {
			count++
		}
	}
	return count
}
