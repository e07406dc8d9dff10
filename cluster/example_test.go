package cluster_test

import (
	"context"
	"log"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/roost-rt/roost/cluster"
	"github.com/roost-rt/roost/hub"
)

// Example joins a hub to the cluster of nodes sharing one Redis under the
// prefix "chat". Use cluster.Config{Client: redis.NewClusterClient(...)} for a
// Redis Cluster.
func Example() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	b, err := cluster.New(cluster.Config{Client: rdb, Prefix: "chat"})
	if err != nil {
		log.Fatal(err)
	}
	h, err := hub.New(hub.Config{Broker: b, Presence: b})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Shutdown(context.Background()) // closes b too
	http.Handle("/ws", h)
	// h.Publish, h.Send, h.Presence and h.IsOnline now act cluster-wide;
	// h.Degraded() is true while Redis is unreachable.
}
