package cluster

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
)

// redisUsage is a snapshot of Redis's CPU time and command count.
type redisUsage struct {
	cpu   float64 // used_cpu_sys + used_cpu_user, seconds
	calls int64   // sum of calls over INFO commandstats
}

func usage(tb testing.TB, c redis.UniversalClient) redisUsage {
	tb.Helper()
	sys, _ := strconv.ParseFloat(info(tb, c, "cpu", "used_cpu_sys"), 64)
	usr, _ := strconv.ParseFloat(info(tb, c, "cpu", "used_cpu_user"), 64)
	s, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	var calls int64
	for _, line := range strings.Split(s, "\r\n") {
		if _, rest, ok := strings.Cut(line, "calls="); ok {
			n, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
			calls += n
		}
	}
	return redisUsage{cpu: sys + usr, calls: calls}
}

// report adds Redis CPU and commands per op, measured from before to now.
// INFO itself counts as one command per snapshot.
func (before redisUsage) report(b *testing.B, c redis.UniversalClient, ops int, unit string) {
	after := usage(b, c)
	b.ReportMetric((after.cpu-before.cpu)*1e6/float64(ops), "redis-cpu-µs/"+unit)
	b.ReportMetric(float64(after.calls-before.calls-2)/float64(ops), "redis-cmds/"+unit)
}

// BenchmarkCrossNodeDelivery publishes on one of 3 real hubs to channels
// with one WebSocket member on each of the two others, and reports the time
// from Publish to the push read by both remote clients (p50, p99) and
// Redis's CPU and commands per published message.
func BenchmarkCrossNodeDelivery(b *testing.B) {
	srv := startRedis(b)
	nodes := startHubs(b, 3, func(tb testing.TB) redis.UniversalClient { return srv.Client(tb) }, Config{Prefix: "bench"})
	const channels = 100
	members := make([][2]*websocket.Conn, channels)
	for i := range channels {
		for j, n := range nodes[1:] {
			ws, _, err := websocket.DefaultDialer.Dial(n.url+"?user=u"+strconv.Itoa(i), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = ws.Close() })
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"op":"subscribe","channel":"ch`+strconv.Itoa(i)+`"}`))
			if _, m, err := ws.ReadMessage(); err != nil || !strings.Contains(string(m), `"ok":true`) {
				b.Fatalf("subscribe: %s %v", m, err)
			}
			members[i][j] = ws
		}
	}
	syncHubs(b, nodes)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	rc := srv.Client(b)
	before := usage(b, rc)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ch := i % channels
		start := time.Now()
		if err := nodes[0].h.Publish(ctx, "ch"+strconv.Itoa(ch), []byte(strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
		for _, ws := range members[ch] {
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := ws.ReadMessage(); err != nil {
				b.Fatal(err)
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	before.report(b, rc, b.N, "msg")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkJoins reports what channel joins cost Redis: each op is a new
// channel's first member on a node (Subscribe and Joined, as the hub reports
// them), flushed by the broker in batches. CPU per join times 10,000 is the
// Redis CPU share of 10,000 joins/s.
func BenchmarkJoins(b *testing.B) {
	srv := startRedis(b)
	n := startNode(b, srv.Client(b), Config{NodeID: "joins"})
	waitHealthy(b, n)
	rc := srv.Client(b)
	before := usage(b, rc)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ch := "j" + strconv.Itoa(i)
		n.Subscribe(ch)
		n.Joined(ch, "u"+strconv.Itoa(i%1000))
		if i%1000 == 999 {
			syncAll(b, n)
		}
	}
	syncAll(b, n)
	b.StopTimer()
	before.report(b, rc, b.N, "join")
}

// BenchmarkUserSend compares the two designs for sending to a user on
// another node, by Redis CPU per delivered message:
//   - inbox: roost's design, a per-node inbox channel plus the user's
//     presence hash (HGETALL, then one PUBLISH per node holding the user);
//   - sub-per-user: every node subscribes one channel per local user and a
//     send is one PUBLISH to it.
//
// 3 nodes hold 10,000 users between them; sends go to random users.
func BenchmarkUserSend(b *testing.B) {
	const users = 10_000
	b.Run("inbox", func(b *testing.B) {
		srv := startRedis(b)
		var ns []testNode
		for i := range 3 {
			ns = append(ns, startNode(b, srv.Client(b), Config{NodeID: "n" + strconv.Itoa(i)}))
		}
		waitHealthy(b, ns...)
		for u := range users {
			n := ns[u%3]
			n.node.connect(n.Redis, "u"+strconv.Itoa(u), 1)
		}
		syncAll(b, ns...)
		rc := srv.Client(b)
		before := usage(b, rc)
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(1, 2))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			u := 3*rng.IntN(users/3) + 1 + rng.IntN(2) // a user on node 1 or 2, not the sender's
			if err := ns[0].Send(ctx, "u"+strconv.Itoa(u), []byte(`1`)); err != nil {
				b.Fatal(err)
			}
		}
		waitFor(b, 30*time.Second, "all sends delivered", func() bool {
			return ns[1].Stats().Received+ns[2].Stats().Received >= uint64(b.N)
		})
		b.StopTimer()
		before.report(b, rc, b.N, "msg")
	})
	b.Run("sub-per-user", func(b *testing.B) {
		srv := startRedis(b)
		ctx := context.Background()
		var received [3]int64
		var mu sync.Mutex
		for i := range 3 {
			ps := srv.Client(b).Subscribe(ctx)
			b.Cleanup(func() { _ = ps.Close() })
			var chans []string
			for u := i; u < users; u += 3 {
				chans = append(chans, "user:u"+strconv.Itoa(u))
			}
			for len(chans) > 0 {
				k := min(len(chans), 1000)
				if err := ps.Subscribe(ctx, chans[:k]...); err != nil {
					b.Fatal(err)
				}
				chans = chans[k:]
			}
			go func() {
				for {
					m, err := ps.Receive(ctx)
					if err != nil {
						return
					}
					if _, ok := m.(*redis.Message); ok {
						mu.Lock()
						received[i]++
						mu.Unlock()
					}
				}
			}()
		}
		rc := srv.Client(b)
		waitFor(b, 10*time.Second, "subscriptions in place", func() bool {
			n, _ := rc.PubSubNumSub(ctx, "user:u"+strconv.Itoa(users-1)).Result()
			return n["user:u"+strconv.Itoa(users-1)] == 1
		})
		pub := srv.Client(b)
		before := usage(b, rc)
		rng := rand.New(rand.NewPCG(1, 2))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			u := 3*rng.IntN(users/3) + 1 + rng.IntN(2) // a user on node 1 or 2, not the sender's
			if err := pub.Publish(ctx, "user:u"+strconv.Itoa(u), "1").Err(); err != nil {
				b.Fatal(err)
			}
		}
		waitFor(b, 30*time.Second, "all sends delivered", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return received[1]+received[2] >= int64(b.N)
		})
		b.StopTimer()
		before.report(b, rc, b.N, "msg")
	})
}
