package bench

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// dialTest opens a harness connection as user.
func dialTest(tb testing.TB, url, user string) *wsConn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := dialWS(ctx, url+"?user="+user, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.close)
	return c
}

// roundTripMsg sends msg and returns the next message received.
func roundTripMsg(tb testing.TB, c *wsConn, msg string) string {
	tb.Helper()
	if err := c.writeFrame(ws.OpText, []byte(msg)); err != nil {
		tb.Fatal(err)
	}
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := c.next()
	if err != nil {
		tb.Fatalf("after %s: %v", msg, err)
	}
	return string(p)
}

func TestBaselineProtocol(t *testing.T) {
	url := startBaseline(t)
	a, b := dialTest(t, url, "alice"), dialTest(t, url, "bob")
	dl := time.Now().Add(10 * time.Second)
	if err := b.command(1, "subscribe", "news", dl); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, send, want string }{
		{"ping", `{"id":5,"op":"ping"}`, `{"id":5,"ok":true}`},
		{"bad json", `{"id":`, `{"error":{"code":400,"message":"bad json"}}`},
		{"unknown op", `{"id":6,"op":"dance"}`, `{"id":6,"error":{"code":400,"message":"unknown op"}}`},
		{"bad channel", `{"id":7,"op":"subscribe","channel":"a b"}`, `{"id":7,"error":{"code":400,"message":"bad channel"}}`},
		{"bad data", `{"id":8,"op":"publish","channel":"news"}`, `{"id":8,"error":{"code":400,"message":"bad data"}}`},
		{"subscribe", `{"id":9,"op":"subscribe","channel":"news"}`, `{"id":9,"ok":true}`},
		{"presence", `{"id":10,"op":"presence","channel":"news"}`, ""},
		{"publish", `{"id":11,"op":"publish","channel":"news","data":{"x":[1,2]}}`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := roundTripMsg(t, a, c.send)
			switch c.name {
			case "presence":
				var r struct {
					ID     int  `json:"id"`
					OK     bool `json:"ok"`
					Result struct {
						Users []string `json:"users"`
					} `json:"result"`
				}
				if err := json.Unmarshal([]byte(got), &r); err != nil || r.ID != 10 || len(r.Result.Users) != 2 {
					t.Fatalf("presence reply %s", got)
				}
			case "publish":
				// alice is subscribed too: her push and her reply, in order.
				if want := `{"channel":"news","data":{"x":[1,2]}}`; got != want {
					t.Fatalf("got %s, want %s", got, want)
				}
				a.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
				if p, err := a.next(); err != nil || string(p) != `{"id":11,"ok":true}` {
					t.Fatalf("publish reply %s, %v", p, err)
				}
				b.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
				if p, err := b.next(); err != nil || string(p) != `{"channel":"news","data":{"x":[1,2]}}` {
					t.Fatalf("bob got %s, %v", p, err)
				}
			default:
				if got != c.want {
					t.Fatalf("got %s, want %s", got, c.want)
				}
			}
		})
	}
	t.Run("http publish", func(t *testing.T) {
		api := apiBase(url)
		resp, err := http.Post(api+"/api/publish", "application/json", strings.NewReader(`{"channel":"news","data":"hi"}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != `{"ok":true}` {
			t.Fatalf("publish: %d %s", resp.StatusCode, body)
		}
		b.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if p, err := b.next(); err != nil || string(p) != `{"channel":"news","data":"hi"}` {
			t.Fatalf("bob got %s, %v", p, err)
		}
		for _, bad := range []string{`{"channel":"news","data":}`, `{"channel":"","data":1}`, `{"channel":"news"}`} {
			resp, err := http.Post(api+"/api/publish", "application/json", strings.NewReader(bad))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Errorf("publish %s: status %d, want 400", bad, resp.StatusCode)
			}
		}
	})
	t.Run("unsubscribe", func(t *testing.T) {
		if got := roundTripMsg(t, b, `{"id":12,"op":"unsubscribe","channel":"news"}`); got != `{"id":12,"ok":true}` {
			t.Fatalf("got %s", got)
		}
	})
}

// TestBaselineDropsSlowClient checks the chat example's policy: a client
// whose send buffer fills is dropped while others keep receiving.
func TestBaselineDropsSlowClient(t *testing.T) {
	bl := NewBaseline()
	t.Cleanup(func() { bl.Close() })
	url := startServing(t, bl)
	slow, fast := dialTest(t, url, "slow"), dialTest(t, url, "fast")
	dl := time.Now().Add(10 * time.Second)
	for _, c := range []*wsConn{slow, fast} {
		if err := c.command(1, "subscribe", "flood", dl); err != nil {
			t.Fatal(err)
		}
	}
	// Bursts of 100 (under the 256-message buffer), each read in full by
	// the fast client before the next, so only the slow one falls behind.
	push := encodePush("flood", []byte(`"`+strings.Repeat("x", 16<<10)+`"`))
	fast.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	for burst := range 30 {
		for range 100 {
			bl.submit(baselineCommand{op: "publish", channel: "flood", push: push})
		}
		for i := range 100 {
			if _, err := fast.next(); err != nil {
				t.Fatalf("burst %d message %d: fast client: %v", burst, i, err)
			}
		}
	}
	eventually(t, 10*time.Second, "slow client evicted", func() bool { return bl.Stats().Evictions == 1 })
	if st := bl.Stats(); st.Connections != 1 || st.Subscriptions != 1 {
		t.Fatalf("stats after eviction %+v", st)
	}
}
