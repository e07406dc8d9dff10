package hub_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roost-rt/roost/hub"
)

// tokenHub authenticates "?user=U&ttl=D": the identity expires after D and
// may join the private channel $vip. Refresh accepts the token "fresh".
func tokenHub(t *testing.T, grace time.Duration) (*hub.Hub, string) {
	t.Helper()
	return startHub(t, hub.Config{
		ExpiryGrace: grace,
		Authenticate: func(r *http.Request) (hub.Identity, error) {
			q := r.URL.Query()
			if q.Get("user") == "" {
				return hub.Identity{}, &hub.Error{Code: 401, Message: "token missing"}
			}
			id := hub.Identity{User: q.Get("user"), Channels: []string{"$vip"}}
			if d, err := time.ParseDuration(q.Get("ttl")); err == nil {
				id.ExpiresAt = time.Now().Add(d)
			}
			return id, nil
		},
		Refresh: func(_ context.Context, c hub.ConnInfo, token string) (hub.Identity, error) {
			if token != "fresh" {
				return hub.Identity{}, &hub.Error{Code: 401, Message: "token invalid"}
			}
			return hub.Identity{User: c.User, ExpiresAt: time.Now().Add(time.Hour)}, nil
		},
	})
}

func TestExpiredTokenClosesWith4501(t *testing.T) {
	_, url := tokenHub(t, 200*time.Millisecond)
	c := dial(t, url+"?user=exp&ttl=100ms")
	start := time.Now()
	assert.Equal(t, 4501, c.closeCode())
	// Expiry plus grace plus at most one sweep, with slack for a busy machine.
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestRefreshKeepsTheConnection(t *testing.T) {
	h, url := tokenHub(t, 200*time.Millisecond)
	c := dial(t, url+"?user=ref&ttl=300ms")
	c.sendJSON(`{"id":1,"op":"refresh","token":"stale"}`)
	assert.Equal(t, `{"id":1,"error":{"code":401,"message":"token invalid"}}`, c.nextRaw())
	c.sendJSON(`{"id":2,"op":"refresh","token":"fresh"}`)
	assert.Equal(t, `{"id":2,"ok":true}`, c.nextRaw())
	// Past the first token's expiry, grace and two sweeps: still open.
	time.Sleep(2500 * time.Millisecond)
	c.sendJSON(`{"id":3,"op":"ping"}`)
	assert.Equal(t, `{"id":3,"ok":true}`, c.nextRaw())
	assert.Zero(t, h.Stats().Disconnects["token_expired"])
}

func TestPrivateChannels(t *testing.T) {
	_, url := tokenHub(t, time.Minute)
	c := dial(t, url+"?user=vip")
	c.sendJSON(`{"id":1,"op":"subscribe","channel":"$vip"}`)
	assert.Equal(t, `{"id":1,"ok":true}`, c.nextRaw())
	c.sendJSON(`{"id":2,"op":"subscribe","channel":"$staff"}`)
	m := c.next()
	assert.EqualValues(t, 403, m["error"].(map[string]any)["code"])
	c.sendJSON(`{"id":3,"op":"presence","channel":"$staff"}`)
	m = c.next()
	assert.EqualValues(t, 403, m["error"].(map[string]any)["code"], "presence of a private channel needs the same grant")
	c.sendJSON(`{"id":4,"op":"ping"}`)
	require.Equal(t, `{"id":4,"ok":true}`, c.nextRaw(), "a refused subscribe keeps the connection open")
}

func TestUpgradeRefusedByAuthenticate(t *testing.T) {
	h, url := tokenHub(t, time.Minute)
	_, resp, err := dialErr(url)
	require.Error(t, err)
	assert.Equal(t, 401, resp.StatusCode)
	assert.EqualValues(t, 1, h.Stats().HandshakeFailed["unauthorized"])
}
