package hub_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roost-rt/roost/hub"
)

func TestSubscribePublishReceive(t *testing.T) {
	h, url := startHub(t, hub.Config{})
	c := dial(t, url+"?user=u1")
	c.sendJSON(`{"id":1,"op":"subscribe","channel":"news"}`)
	assert.Equal(t, `{"id":1,"ok":true}`, c.nextRaw())

	require.NoError(t, h.Publish(context.Background(), "news", []byte(`{"text":"hi"}`)))
	assert.Equal(t, `{"channel":"news","data":{"text":"hi"}}`, c.nextRaw())

	c.sendJSON(`{"id":2,"op":"publish","channel":"news","data":[1,2,3]}`)
	got := []string{c.nextRaw(), c.nextRaw()}
	assert.ElementsMatch(t, []string{`{"id":2,"ok":true}`, `{"channel":"news","data":[1,2,3]}`}, got)

	c.sendJSON(`{"id":3,"op":"presence","channel":"news"}`)
	assert.Equal(t, `{"id":3,"ok":true,"result":{"users":["u1"]}}`, c.nextRaw())

	c.sendJSON(`{"id":4,"op":"ping"}`)
	assert.Equal(t, `{"id":4,"ok":true}`, c.nextRaw())

	c.sendJSON(`{"id":5,"op":"nope"}`)
	m := c.next()
	assert.EqualValues(t, 5, m["id"])
	assert.EqualValues(t, 400, m["error"].(map[string]any)["code"])

	c.sendJSON(`{not json`)
	m = c.next()
	assert.EqualValues(t, 400, m["error"].(map[string]any)["code"])

	require.NoError(t, h.Send(context.Background(), "u1", []byte(`"direct"`)))
	assert.Equal(t, `{"data":"direct"}`, c.nextRaw())

	st := h.Stats()
	assert.EqualValues(t, 1, st.Connections)
	assert.EqualValues(t, 1, st.Subscriptions)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() { _ = h.Shutdown(ctx) }()
	assert.Equal(t, 4001, c.closeCode())
}

// With a small kernel send buffer, a burst waits in the outbound queue and
// leaves in writev batches; every message must still arrive, in order.
func TestSmallSendBufferBurstArrivesInOrder(t *testing.T) {
	h, url := startHub(t, hub.Config{SendBufferBytes: 4 << 10})
	c := dial(t, url+"?user=burst")
	c.sendJSON(`{"id":1,"op":"subscribe","channel":"room"}`)
	require.Equal(t, `{"id":1,"ok":true}`, c.nextRaw())
	for i := 0; i < 200; i++ {
		require.NoError(t, h.Publish(context.Background(), "room", []byte(payloadOf(i))))
	}
	for i := 0; i < 200; i++ {
		require.Equal(t, pushOf(i), c.nextRaw(), "message %d", i)
	}
	st := h.Stats()
	assert.EqualValues(t, 200, st.Deliveries)
	assert.Zero(t, st.Evictions)
}

func TestHandshakeRefusals(t *testing.T) {
	h, url := startHub(t, hub.Config{})
	httpURL := "http" + strings.TrimPrefix(url, "ws")
	cases := []struct {
		name   string
		header http.Header
		query  string
		status int
		reason string
	}{
		{"not an upgrade", nil, "", 400, "bad_request"},
		{"bad user id", upgradeHeader("13"), "?user=a%20b", 400, "bad_request"},
		{"unsupported version", upgradeHeader("8"), "", 426, "bad_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.Stats().HandshakeFailed[tc.reason]
			req, err := http.NewRequest("GET", httpURL+tc.query, nil)
			require.NoError(t, err)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			assert.Equal(t, tc.status, resp.StatusCode, "body %s", body)
			if tc.status == 426 {
				assert.Equal(t, "13", resp.Header.Get("Sec-WebSocket-Version"))
			}
			// gobwas/ws writes its refusals itself; the hub counts them
			// right after, so the count may trail the answer briefly.
			eventually(t, 5*time.Second, func() bool { return h.Stats().HandshakeFailed[tc.reason] == before+1 },
				"refusal counted once as "+tc.reason)
		})
	}
	t.Run("connection limit", func(t *testing.T) {
		// A handshake counts against the limit until its handler returns,
		// just after the answer is written: a hub of its own keeps the
		// cases above from racing it.
		h, url := startHub(t, hub.Config{MaxConnections: 1})
		dial(t, url+"?user=first")
		_, resp, err := websocket.DefaultDialer.Dial(url+"?user=second", nil)
		require.Error(t, err)
		assert.Equal(t, 503, resp.StatusCode)
		assert.EqualValues(t, 1, h.Stats().HandshakeFailed["limit"])
	})
}

func upgradeHeader(version string) http.Header {
	return http.Header{
		"Upgrade":               {"websocket"},
		"Connection":            {"Upgrade"},
		"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
		"Sec-Websocket-Version": {version},
	}
}

func TestCallsAfterShutdownFail(t *testing.T) {
	h, err := hub.New(hub.Config{})
	require.NoError(t, err)
	require.NoError(t, h.Shutdown(context.Background()))
	ctx := context.Background()
	assert.ErrorIs(t, h.Publish(ctx, "c", []byte(`1`)), hub.ErrClosed)
	assert.ErrorIs(t, h.Send(ctx, "u", []byte(`1`)), hub.ErrClosed)
	assert.ErrorIs(t, h.Disconnect(ctx, "u"), hub.ErrClosed)
	assert.False(t, h.Ready())
	assert.NoError(t, h.Shutdown(ctx), "Shutdown is idempotent")
}

func TestExcludeSelfSkipsThePublishersConnections(t *testing.T) {
	_, url := startHub(t, hub.Config{})
	me, meToo, other := dial(t, url+"?user=me"), dial(t, url+"?user=me"), dial(t, url+"?user=other")
	for _, c := range []*client{me, meToo, other} {
		c.sendJSON(`{"id":1,"op":"subscribe","channel":"room"}`)
		require.Equal(t, `{"id":1,"ok":true}`, c.nextRaw())
	}
	me.sendJSON(`{"id":2,"op":"publish","channel":"room","data":"quiet","exclude_self":true}`)
	assert.Equal(t, `{"id":2,"ok":true}`, me.nextRaw())
	assert.Equal(t, `{"channel":"room","data":"quiet"}`, other.nextRaw())
	// The next message proves the first never reached the user's connections.
	me.sendJSON(`{"id":3,"op":"publish","channel":"room","data":"loud"}`)
	assert.ElementsMatch(t, []string{`{"id":3,"ok":true}`, `{"channel":"room","data":"loud"}`}, []string{me.nextRaw(), me.nextRaw()})
	assert.Equal(t, `{"channel":"room","data":"loud"}`, meToo.nextRaw())
}

func TestServerSideSubscribe(t *testing.T) {
	ids := make(chan uint64, 1)
	h, url := startHub(t, hub.Config{OnConnect: func(c hub.ConnInfo) { ids <- c.ID }})
	c := dial(t, url+"?user=srv")
	id := <-ids
	require.NoError(t, h.Subscribe(id, "pushed"))
	require.NoError(t, h.Publish(context.Background(), "pushed", []byte(`1`)))
	assert.Equal(t, `{"channel":"pushed","data":1}`, c.nextRaw())
	require.NoError(t, h.Unsubscribe(id, "pushed"))
	assert.EqualValues(t, 0, h.Stats().Subscriptions)
	assert.ErrorIs(t, h.Subscribe(id+1000, "pushed"), hub.ErrNotFound)
	assert.ErrorIs(t, h.Subscribe(id, "bad channel"), hub.ErrBadChannel)
	assert.ErrorIs(t, h.Publish(context.Background(), "pushed", []byte(`{bad`)), hub.ErrBadData)
}
