package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestPropertyExactDelivery drives 3 real hubs and 300 WebSocket clients
// with random joins, leaves, publishes and sends, and checks that every
// connection receives exactly the messages it should: every publish on a
// channel it was subscribed to at publish time, every send to its user, no
// duplicate, nothing else, and each publisher's messages on a channel in
// publish order (the Broker contract orders per publisher and channel; two
// channels may travel on different pub/sub connections).
//
// "Subscribed at publish time" is made exact by the documented join window:
// a subscribe is acknowledged to the client once the local hub registered
// it, but a channel's first member on a node receives remote publishes only
// after the broker's SUBSCRIBE reached Redis; and a remote publish still in
// flight when a client joins reaches it too. The test calls Sync on every
// broker between the membership changes and the publishes of a round and
// after the publishes, which closes both sides of that window.
func TestPropertyExactDelivery(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	srv := startRedis(t)
	nodes := startHubs(t, 3, func(tb testing.TB) redis.UniversalClient { return srv.Client(tb) }, Config{Prefix: "prop"})
	const (
		numClients  = 300
		numUsers    = 100 // each user has 3 connections, one per node
		numChannels = 12
		rounds      = 6
	)
	clients := make([]*wsClient, numClients)
	subs := make([]map[string]bool, numClients)
	for i := range clients {
		clients[i] = dialHub(t, nodes[i%3].url, fmt.Sprint("u", i%numUsers))
		subs[i] = make(map[string]bool)
	}
	expect := make([][]string, numClients) // expected pushes per client, in no particular order
	ctx := context.Background()
	seq := [3]int{}
	history := make([][]string, numClients) // membership changes per client, for failure reports
	sendSeq := 0
	for range rounds {
		for range 120 {
			i := rng.IntN(numClients)
			ch := fmt.Sprint("ch", rng.IntN(numChannels))
			history[i] = append(history[i], fmt.Sprintf("toggle %s after p=%v", ch, seq))
			if subs[i][ch] {
				clients[i].command("unsubscribe", ch)
				delete(subs[i], ch)
			} else {
				clients[i].command("subscribe", ch)
				subs[i][ch] = true
			}
		}
		syncHubs(t, nodes)
		for range 60 {
			if rng.IntN(4) == 0 {
				user := fmt.Sprint("u", rng.IntN(numUsers))
				sendSeq++
				data := fmt.Sprintf(`{"send":%d}`, sendSeq)
				if err := nodes[rng.IntN(3)].h.Send(ctx, user, []byte(data)); err != nil {
					t.Fatalf("Send: %v", err)
				}
				for i := range clients {
					if clients[i].user == user {
						expect[i] = append(expect[i], `{"data":`+data+`}`)
					}
				}
				continue
			}
			p := rng.IntN(3)
			ch := fmt.Sprint("ch", rng.IntN(numChannels))
			seq[p]++
			data := fmt.Sprintf(`{"p":%d,"s":%d}`, p, seq[p])
			if err := nodes[p].h.Publish(ctx, ch, []byte(data)); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			for i := range clients {
				if subs[i][ch] {
					expect[i] = append(expect[i], fmt.Sprintf(`{"channel":%q,"data":%s}`, ch, data))
				}
			}
		}
		// The other side of the window: a remote publish still in flight
		// when a local client joins reaches that client too.
		syncHubs(t, nodes)
	}
	total := 0
	for i := range expect {
		total += len(expect[i])
	}
	t.Logf("%d expected deliveries", total)
	waitFor(t, 30*time.Second, "every expected delivery", func() bool {
		for i, c := range clients {
			if len(c.received()) < len(expect[i]) {
				return false
			}
		}
		return true
	})
	syncHubs(t, nodes) // a duplicate would be in flight with the originals
	for i, c := range clients {
		got := c.received()
		if a, b := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(expect[i])); !slices.Equal(a, b) {
			t.Fatalf("client %d (user %s, node %d): got %d pushes, want %d\ngot  %v\nwant %v\narrival %v\nhistory %v", i, c.user, i%3, len(got), len(expect[i]), a, b, got, history[i])
		}
		last := map[string]int{} // publisher and channel -> last sequence number
		for _, m := range got {
			var push struct {
				Data struct{ P, S int } `json:"data"`
				Ch   string             `json:"channel"`
			}
			if err := json.Unmarshal([]byte(m), &push); err != nil || push.Ch == "" {
				continue
			}
			k := fmt.Sprint(push.Data.P, "/", push.Ch)
			if push.Data.S <= last[k] {
				t.Fatalf("client %d: publisher %d's message %d on %s arrived after %d", i, push.Data.P, push.Data.S, push.Ch, last[k])
			}
			last[k] = push.Data.S
		}
	}
}
