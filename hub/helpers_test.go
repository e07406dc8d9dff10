package hub_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/roost-rt/roost/hub"
)

// startHub runs a Hub behind an httptest server; both end with the test.
func startHub(tb testing.TB, cfg hub.Config) (*hub.Hub, string) {
	tb.Helper()
	h, err := hub.New(cfg)
	require.NoError(tb, err)
	srv := httptest.NewServer(h)
	tb.Cleanup(func() {
		// No deadline: the drain is not paced, and the close handshakes
		// end within the hub's own timeout.
		_ = h.Shutdown(context.Background())
		srv.Close()
	})
	return h, "ws" + strings.TrimPrefix(srv.URL, "http")
}

// client is a gorilla/websocket client: an implementation independent of
// the server's framing code.
type client struct {
	tb testing.TB
	ws *websocket.Conn
}

func dial(tb testing.TB, url string) *client {
	tb.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = ws.Close() })
	return &client{tb: tb, ws: ws}
}

func (c *client) sendJSON(v string) {
	c.tb.Helper()
	require.NoError(c.tb, c.ws.WriteMessage(websocket.TextMessage, []byte(v)))
}

// next reads the next text message as a generic JSON object.
func (c *client) next() map[string]any {
	c.tb.Helper()
	require.NoError(c.tb, c.ws.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, b, err := c.ws.ReadMessage()
	require.NoError(c.tb, err)
	var m map[string]any
	require.NoError(c.tb, json.Unmarshal(b, &m), "message %q", b)
	return m
}

// nextRaw reads the next text message as bytes.
func (c *client) nextRaw() string {
	c.tb.Helper()
	require.NoError(c.tb, c.ws.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, b, err := c.ws.ReadMessage()
	require.NoError(c.tb, err)
	return string(b)
}

// closeCode reads until the connection ends and returns the close code.
func (c *client) closeCode() int {
	c.tb.Helper()
	require.NoError(c.tb, c.ws.SetReadDeadline(time.Now().Add(10*time.Second)))
	for {
		_, _, err := c.ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if ok := asCloseError(err, &ce); ok {
			return ce.Code
		}
		c.tb.Fatalf("connection ended without a close frame: %v", err)
		return 0
	}
}

func asCloseError(err error, target **websocket.CloseError) bool {
	ce, ok := err.(*websocket.CloseError)
	if ok {
		*target = ce
	}
	return ok
}

// eventually polls cond until it holds or the deadline passes.
func eventually(tb testing.TB, d time.Duration, cond func() bool, msg string) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v: %s", d, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dialErr dials without failing the test, for refusals.
func dialErr(url string) (*websocket.Conn, *http.Response, error) {
	return websocket.DefaultDialer.Dial(url, nil)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
