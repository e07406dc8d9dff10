package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/roost-rt/roost/hub"
)

// hubNode is a real in-process hub joined to the cluster by a Redis broker.
type hubNode struct {
	h   *hub.Hub
	b   *Redis
	url string
}

func startHubs(tb testing.TB, n int, client func(testing.TB) redis.UniversalClient, cfg Config) []hubNode {
	tb.Helper()
	var nodes []hubNode
	for i := range n {
		c := cfg
		c.Client = client(tb)
		c.NodeID = fmt.Sprintf("%s-%d", cfg.Prefix, i)
		if c.Heartbeat == 0 {
			c.Heartbeat = 200 * time.Millisecond
		}
		b, err := New(c)
		if err != nil {
			tb.Fatalf("cluster.New: %v", err)
		}
		h, err := hub.New(hub.Config{Broker: b, Presence: b, InboundRate: -1})
		if err != nil {
			tb.Fatalf("hub.New: %v", err)
		}
		srv := httptest.NewServer(h)
		tb.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = h.Shutdown(ctx)
			srv.Close()
			_ = b.Close()
		})
		nodes = append(nodes, hubNode{h: h, b: b, url: "ws" + strings.TrimPrefix(srv.URL, "http")})
	}
	for _, n := range nodes {
		waitFor(tb, 10*time.Second, "node healthy", func() bool { return n.b.Healthy() && !n.h.Degraded() })
	}
	return nodes
}

func syncHubs(tb testing.TB, nodes []hubNode) {
	tb.Helper()
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := n.b.Sync(ctx)
		cancel()
		if err != nil {
			tb.Fatalf("Sync: %v", err)
		}
	}
}

// wsClient is a gorilla/websocket client that records every push and hands
// replies to the command waiting for them.
type wsClient struct {
	tb      testing.TB
	ws      *websocket.Conn
	user    string
	replies chan map[string]any
	closed  chan int // close code, once

	mu     sync.Mutex
	pushes []string // raw push messages; guarded by mu
	nextID int      // guarded by mu
}

func dialHub(tb testing.TB, url, user string) *wsClient {
	tb.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url+"?user="+user, nil)
	if err != nil {
		tb.Fatalf("dial %s: %v", url, err)
	}
	c := &wsClient{tb: tb, ws: ws, user: user, replies: make(chan map[string]any, 16), closed: make(chan int, 1)}
	tb.Cleanup(func() { _ = ws.Close() })
	go c.read()
	return c
}

func (c *wsClient) read() {
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			code := 0
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				code = ce.Code
			}
			c.closed <- code
			return
		}
		var m map[string]any
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		if _, ok := m["id"]; ok {
			c.replies <- m
			continue
		}
		c.mu.Lock()
		c.pushes = append(c.pushes, string(b))
		c.mu.Unlock()
	}
}

// command sends op on channel and waits for its reply.
func (c *wsClient) command(op, channel string) {
	c.tb.Helper()
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	c.mu.Unlock()
	msg := fmt.Sprintf(`{"id":%d,"op":%q,"channel":%q}`, id, op, channel)
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		c.tb.Fatalf("write: %v", err)
	}
	select {
	case m := <-c.replies:
		if m["ok"] != true {
			c.tb.Fatalf("%s reply: %v", op, m)
		}
	case <-time.After(10 * time.Second):
		c.tb.Fatalf("no reply to %s", msg)
	}
}

func (c *wsClient) received() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.pushes...)
}

func TestHubsAcrossNodes(t *testing.T) {
	srv := startRedis(t)
	nodes := startHubs(t, 3, func(tb testing.TB) redis.UniversalClient { return srv.Client(tb) }, Config{Prefix: "hubs"})
	var clients []*wsClient
	for i, n := range nodes {
		c := dialHub(t, n.url, fmt.Sprint("user", i))
		c.command("subscribe", "news")
		clients = append(clients, c)
	}
	syncHubs(t, nodes)
	ctx := context.Background()
	if err := nodes[1].h.Publish(ctx, "news", []byte(`{"n":1}`)); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if err := nodes[2].h.Send(ctx, "user0", []byte(`"hello"`)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	waitFor(t, 10*time.Second, "all pushes", func() bool {
		return len(clients[0].received()) == 2 && len(clients[1].received()) == 1 && len(clients[2].received()) == 1
	})
	syncHubs(t, nodes)
	// The channel message (from node 1) and the send (from node 2) travel
	// on different Redis channels from different publishers: no order
	// between them is promised, only that each arrives once.
	for i, c := range clients {
		got := c.received()
		if !slices.Contains(got, `{"channel":"news","data":{"n":1}}`) {
			t.Fatalf("client %d got %v", i, got)
		}
	}
	if got := clients[0].received(); !slices.Contains(got, `{"data":"hello"}`) {
		t.Fatalf("user0 got %v, want the send push too", got)
	}
	users, err := nodes[0].h.Presence(ctx, "news")
	if err != nil || strings.Join(users, ",") != "user0,user1,user2" {
		t.Fatalf("Presence = %v, %v", users, err)
	}
	if on, _, err := nodes[0].h.IsOnline(ctx, "user2"); err != nil || !on {
		t.Fatalf("IsOnline(user2 on another node) = %v, %v", on, err)
	}
	if err := nodes[0].h.Disconnect(ctx, "user2"); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	select {
	case code := <-clients[2].closed:
		if code != 4502 {
			t.Fatalf("cross-node Disconnect closed with %d, want 4502", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cross-node Disconnect did not close the connection")
	}
}

func TestHubsSurviveRedisRestart(t *testing.T) {
	srv := startRedis(t)
	nodes := startHubs(t, 2, func(tb testing.TB) redis.UniversalClient { return srv.Client(tb) }, Config{Prefix: "rs"})
	a := dialHub(t, nodes[0].url, "a")
	a.command("subscribe", "room")
	b := dialHub(t, nodes[1].url, "b")
	b.command("subscribe", "room")
	syncHubs(t, nodes)
	srv.Stop()
	waitFor(t, 10*time.Second, "node degraded", nodes[0].h.Degraded)
	// Local delivery goes on; the cross-node part is reported, not dropped
	// silently.
	err := nodes[0].h.Publish(context.Background(), "room", []byte(`"during"`))
	if !errors.Is(err, hub.ErrBrokerDown) {
		t.Fatalf("Publish during the outage = %v, want ErrBrokerDown", err)
	}
	waitFor(t, 5*time.Second, "local delivery during the outage", func() bool { return len(a.received()) == 1 })
	if nodes[0].h.Stats().BrokerErrors == 0 {
		t.Fatal("broker error not counted")
	}
	srv.Start()
	waitFor(t, 15*time.Second, "nodes healthy again", func() bool { return !nodes[0].h.Degraded() && !nodes[1].h.Degraded() })
	waitFor(t, 15*time.Second, "cross-node delivery resumes", func() bool {
		_ = nodes[0].h.Publish(context.Background(), "room", []byte(`"after"`))
		return len(b.received()) > 0
	})
	if got := b.received()[0]; got != `{"channel":"room","data":"after"}` {
		t.Fatalf("b got %s first; the outage's publish must not arrive late", got)
	}
}
