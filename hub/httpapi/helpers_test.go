package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/roost-rt/roost/hub"
	"github.com/roost-rt/roost/hub/httpapi"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a hub on "/ws" and the API on "/" behind one httptest server, the
// way cmd/roost mounts them.
type env struct {
	tb      testing.TB
	h       *hub.Hub
	m       *httpapi.Metrics
	srv     *httptest.Server
	apiKey  string
	wsURL   string
	handler http.Handler
}

// start runs an env; the hub shuts down and the server closes with the
// test. cfg.Metrics is created (and its hooks installed) when nil.
func start(tb testing.TB, cfg httpapi.Config, hcfg hub.Config) *env {
	tb.Helper()
	if cfg.Metrics == nil {
		cfg.Metrics = httpapi.NewMetrics(nil)
		cfg.Metrics.Hooks(&hcfg)
	}
	if hcfg.DrainRate == 0 {
		// Clients still open at cleanup are closed at once rather than
		// spread over the shutdown deadline.
		hcfg.DrainRate = 1e6
	}
	h, err := hub.New(hcfg)
	require.NoError(tb, err)
	api := httpapi.New(h, cfg)
	mux := http.NewServeMux()
	mux.Handle("/ws", h)
	mux.Handle("/", api)
	srv := httptest.NewServer(mux)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
		srv.Close()
	})
	return &env{
		tb: tb, h: h, m: cfg.Metrics, srv: srv, apiKey: cfg.APIKey, handler: api,
		wsURL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws",
	}
}

// response is an answer of the API.
type response struct {
	status int
	header http.Header
	body   string
}

// json decodes the body as a generic object.
func (r response) json(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	require.NoError(tb, json.Unmarshal([]byte(r.body), &m), "body %q", r.body)
	return m
}

// errorCode returns error.code of an error body, checking its shape.
func (r response) errorCode(tb testing.TB) int {
	tb.Helper()
	var b struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(tb, json.Unmarshal([]byte(r.body), &b), "body %q", r.body)
	require.NotNil(tb, b.Error, "no error object in %q", r.body)
	require.NotEmpty(tb, b.Error.Message)
	return b.Error.Code
}

// do sends a request with the env's API key (if any) and returns the answer.
func (e *env) do(method, path, body string) response {
	e.tb.Helper()
	hd := http.Header{}
	if e.apiKey != "" {
		hd.Set("Authorization", "apikey "+e.apiKey)
	}
	return e.doHeader(method, path, body, hd)
}

func (e *env) doHeader(method, path, body string, hd http.Header) response {
	e.tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	require.NoError(e.tb, err)
	for k, v := range hd {
		req.Header[k] = v
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(e.tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.tb, err)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// client is a gorilla/websocket client: an implementation independent of
// the hub's framing code.
type client struct {
	tb  testing.TB
	ws  *websocket.Conn
	seq int
}

// dial connects as user (open mode takes it from ?user=).
func (e *env) dial(user string) *client {
	e.tb.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(e.wsURL+"?user="+user, nil)
	require.NoError(e.tb, err)
	e.tb.Cleanup(func() { _ = ws.Close() })
	return &client{tb: e.tb, ws: ws}
}

// subscribe joins channel and waits for the hub's reply, so the
// membership exists when it returns.
func (c *client) subscribe(channel string) {
	c.tb.Helper()
	c.seq++
	cmd, err := json.Marshal(map[string]any{"id": c.seq, "op": "subscribe", "channel": channel})
	require.NoError(c.tb, err)
	require.NoError(c.tb, c.ws.WriteMessage(websocket.TextMessage, cmd))
	want := `{"id":` + strconv.Itoa(c.seq) + `,"ok":true}`
	require.Equal(c.tb, want, c.next())
}

// next reads the next text message.
func (c *client) next() string {
	c.tb.Helper()
	require.NoError(c.tb, c.ws.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, b, err := c.ws.ReadMessage()
	require.NoError(c.tb, err)
	return string(b)
}

// closeCode reads until the connection ends and returns its close code.
func (c *client) closeCode() int {
	c.tb.Helper()
	require.NoError(c.tb, c.ws.SetReadDeadline(time.Now().Add(5*time.Second)))
	for {
		_, _, err := c.ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		c.tb.Fatalf("connection ended without a close frame: %v", err)
		return 0
	}
}

// eventually polls cond until it holds or d passes.
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

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
