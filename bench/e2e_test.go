package bench

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// startBaseline serves an in-process Baseline over loopback.
func startBaseline(tb testing.TB) string {
	tb.Helper()
	b := NewBaseline()
	tb.Cleanup(func() { b.Close() })
	return startServing(tb, b)
}

// startServing serves h over loopback and returns its WebSocket URL.
func startServing(tb testing.TB, h http.Handler) string {
	tb.Helper()
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

// runSmallBroadcast runs 5 messages to 200 connections against url with
// in-process workers and checks that all 1,000 deliveries arrived once.
func runSmallBroadcast(t *testing.T, url string) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, Options{Scenario: "broadcast", Conns: 200, Msgs: 5, Rate: 50, URLs: []string{url}, InProcess: true, Quiet: true, Wait: 20 * time.Second})
	if err != nil {
		t.Fatalf("Run: %v (result %+v)", err, res)
	}
	if res.Connected != 200 || res.Loss != (Loss{Expected: 1000, Delivered: 1000}) {
		t.Fatalf("connected %d, loss %+v; want 200 connected and 1000 deliveries", res.Connected, res.Loss)
	}
	return res
}

func TestBroadcastAgainstInProcessBaseline(t *testing.T) {
	res := runSmallBroadcast(t, startBaseline(t))
	if res.Latency.Count != 1000 || len(res.FanoutMs) != 5 {
		t.Fatalf("latency count %d, fan-outs %d; want 1000 and 5", res.Latency.Count, len(res.FanoutMs))
	}
}

// TestBroadcastAgainstInProcessFloor runs the broadcast scenario against
// the write(2) floor: every push arrives exactly once, in order, and the
// floor counts what it wrote.
func TestBroadcastAgainstInProcessFloor(t *testing.T) {
	f := NewFloor()
	t.Cleanup(func() { f.Close() })
	runSmallBroadcast(t, startServing(t, f))
	if got := f.deliveries.Load(); got != 1000 {
		t.Fatalf("floor counted %d deliveries, want 1000", got)
	}
}

// TestFloorFrameLengths checks the three header forms of floorFrame.
func TestFloorFrameLengths(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		f := floorFrame(make([]byte, n))
		r := wsutil.NewReader(bytes.NewReader(f), ws.StateClientSide)
		h, err := r.NextFrame()
		if err != nil || h.OpCode != ws.OpText || !h.Fin || h.Length != int64(n) {
			t.Fatalf("payload %d: header %+v, err %v", n, h, err)
		}
	}
}
