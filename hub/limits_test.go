package hub_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roost-rt/roost/hub"
)

func TestInboundRateLimit(t *testing.T) {
	h, url := startHub(t, hub.Config{InboundRate: 1, InboundBurst: 5})
	c := dial(t, url+"?user=flood")
	// The burst is served; past it commands get 429 and, when the flood
	// goes on past another burst's worth, the connection is closed 1008.
	for i := 1; i <= 20; i++ {
		// The server may close the socket before all 20 are written.
		if err := c.ws.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"id":%d,"op":"ping"}`, i))); err != nil {
			break
		}
	}
	var ok, limited int
	for {
		m := map[string]any{}
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			break
		}
		require.NoError(t, jsonUnmarshal(b, &m))
		if m["ok"] == true {
			ok++
		} else if e, _ := m["error"].(map[string]any); e != nil && e["code"] == float64(429) {
			limited++
		}
	}
	assert.Equal(t, 5, ok, "the burst is served")
	assert.Equal(t, 5, limited, "then 429 for a burst's worth")
	// Counted as the socket closes, which the client may see first.
	eventually(t, 5*time.Second, func() bool { return h.Stats().Disconnects["policy_violation"] == 1 }, "closed once with 1008")
	assert.GreaterOrEqual(t, h.Stats().RateLimited, uint64(5))
}

func TestSubscriptionLimitAndChannelNames(t *testing.T) {
	_, url := startHub(t, hub.Config{MaxSubscriptionsPerConn: 2})
	c := dial(t, url+"?user=subs")
	for i, ch := range []string{"a", "b"} {
		c.sendJSON(fmt.Sprintf(`{"id":%d,"op":"subscribe","channel":%q}`, i+1, ch))
		require.Equal(t, fmt.Sprintf(`{"id":%d,"ok":true}`, i+1), c.nextRaw())
	}
	c.sendJSON(`{"id":3,"op":"subscribe","channel":"c"}`)
	assert.Contains(t, c.nextRaw(), `"code":429`)
	c.sendJSON(`{"id":4,"op":"subscribe","channel":"a"}`)
	assert.Equal(t, `{"id":4,"ok":true}`, c.nextRaw(), "joining a channel again is not a new subscription")

	for _, bad := range []string{strings.Repeat("x", 256), "has space", "tab\there", ""} {
		c.sendJSON(fmt.Sprintf(`{"id":5,"op":"subscribe","channel":%q}`, bad))
		assert.Contains(t, c.nextRaw(), `"code":400`, "channel %q", bad)
	}
	c.sendJSON(fmt.Sprintf(`{"id":6,"op":"unsubscribe","channel":"a"}`))
	assert.Equal(t, `{"id":6,"ok":true}`, c.nextRaw())
	c.sendJSON(fmt.Sprintf(`{"id":7,"op":"subscribe","channel":%q}`, strings.Repeat("y", 255)))
	assert.Equal(t, `{"id":7,"ok":true}`, c.nextRaw(), "255 bytes is allowed")
}
