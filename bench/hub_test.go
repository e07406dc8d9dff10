package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/roost-rt/roost/hub"
	"github.com/roost-rt/roost/hub/httpapi"
)

// startHub serves an in-process roost hub with its HTTP API, the way
// cmd/roost mounts them.
func startHub(tb testing.TB) string {
	tb.Helper()
	h, err := hub.New(hub.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", h)
	mux.Handle("/", httpapi.New(h, httpapi.Config{}))
	srv := httptest.NewServer(mux)
	tb.Cleanup(func() {
		// No deadline: the hub closes what is left at once instead of
		// spreading the closes over the context's deadline.
		h.Shutdown(context.Background())
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

func TestBroadcastAgainstInProcessHub(t *testing.T) {
	res := runSmallBroadcast(t, startHub(t))
	if len(res.FanoutMs) != 5 {
		t.Fatalf("fan-outs %d, want 5", len(res.FanoutMs))
	}
}

func TestChannelsAgainstInProcessHub(t *testing.T) {
	url := startHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, Options{Scenario: "channels", Conns: 300, Channels: 10, Zipf: 1.5, Msgs: 50, Rate: 200, URLs: []string{url}, InProcess: true, Quiet: true, Wait: 20 * time.Second})
	if err != nil {
		t.Fatalf("Run: %v (result %+v)", err, res)
	}
	if !res.Loss.OK() || res.Loss.Delivered == 0 || res.Loss.Delivered != res.Loss.Expected {
		t.Fatalf("loss %+v", res.Loss)
	}
}
