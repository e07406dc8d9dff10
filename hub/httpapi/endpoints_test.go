package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roost-rt/roost/hub"
	"github.com/roost-rt/roost/hub/httpapi"
)

func TestPublish(t *testing.T) {
	e := start(t, httpapi.Config{APIKey: "k"}, hub.Config{})
	c := e.dial("u1")
	c.subscribe("news")

	cases := []struct{ body, push string }{
		{`{"channel":"news","data":{"text":"hi"}}`, `{"channel":"news","data":{"text":"hi"}}`},
		// data is forwarded byte for byte: no re-encoding, spacing kept.
		{`{"channel":"news","data": {"b": [1, 2.50], "a": "\u00e9"} }`, `{"channel":"news","data":{"b": [1, 2.50], "a": "\u00e9"}}`},
		{`{"data":"s","channel":"news","exclude_user":""}`, `{"channel":"news","data":"s"}`},
		{`{"channel":"news","data":null}`, `{"channel":"news","data":null}`},
	}
	for i, tc := range cases {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			r := e.do("POST", "/api/publish", tc.body)
			require.Equal(t, http.StatusOK, r.status, r.body)
			assert.JSONEq(t, `{"ok":true}`, r.body)
			assert.Equal(t, tc.push, c.next())
		})
	}
	r := e.do("POST", "/api/publish", `{"channel":"nobody-here","data":1}`)
	assert.Equal(t, http.StatusOK, r.status, "a channel without members is not an error")
}

// TestPublishExcludeUser proves u1 got nothing without waiting for a
// silence: the hub hands every local member the frame before Publish
// returns, so u1's next message must be the later, unfiltered publish.
func TestPublishExcludeUser(t *testing.T) {
	e := start(t, httpapi.Config{}, hub.Config{})
	u1a, u1b, u2 := e.dial("u1"), e.dial("u1"), e.dial("u2")
	for _, c := range []*client{u1a, u1b, u2} {
		c.subscribe("news")
	}
	r := e.do("POST", "/api/publish", `{"channel":"news","data":"first","exclude_user":"u1"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	r = e.do("POST", "/api/publish", `{"channel":"news","data":"second"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)

	assert.Equal(t, `{"channel":"news","data":"first"}`, u2.next())
	assert.Equal(t, `{"channel":"news","data":"second"}`, u2.next())
	assert.Equal(t, `{"channel":"news","data":"second"}`, u1a.next())
	assert.Equal(t, `{"channel":"news","data":"second"}`, u1b.next())
}

func TestBroadcast(t *testing.T) {
	e := start(t, httpapi.Config{}, hub.Config{})
	ab, b := e.dial("u1"), e.dial("u2")
	ab.subscribe("a")
	ab.subscribe("b")
	b.subscribe("b")

	// "a" twice: each channel gets the message once.
	r := e.do("POST", "/api/broadcast", `{"channels":["a","b","a","empty"],"data":{"n":1}}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.JSONEq(t, `{"ok":true}`, r.body)
	r = e.do("POST", "/api/broadcast", `{"channels":["b"],"data":"end","exclude_user":"u2"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)

	assert.Equal(t, `{"channel":"a","data":{"n":1}}`, ab.next())
	assert.Equal(t, `{"channel":"b","data":{"n":1}}`, ab.next())
	assert.Equal(t, `{"channel":"b","data":"end"}`, ab.next())
	assert.Equal(t, `{"channel":"b","data":{"n":1}}`, b.next())
	assert.EqualValues(t, 4, e.h.Stats().Published, "a, b, empty, then b")

	// A bad channel anywhere in the list delivers nothing.
	r = e.do("POST", "/api/broadcast", `{"channels":["a","bad channel"],"data":1}`)
	require.Equal(t, http.StatusBadRequest, r.status, r.body)
	assert.EqualValues(t, 4, e.h.Stats().Published)
}

func TestSend(t *testing.T) {
	e := start(t, httpapi.Config{}, hub.Config{})
	a1, a2, other := e.dial("u1"), e.dial("u1"), e.dial("u2")
	other.subscribe("news")
	a1.subscribe("news")
	a2.subscribe("news")

	r := e.do("POST", "/api/send", `{"user":"u1","data":{"hello": "you"}}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.JSONEq(t, `{"ok":true}`, r.body)
	assert.Equal(t, `{"data":{"hello": "you"}}`, a1.next())
	assert.Equal(t, `{"data":{"hello": "you"}}`, a2.next())

	// u2 got nothing: its next message is a later publish.
	require.NoError(t, e.h.Publish(context.Background(), "news", []byte(`"marker"`)))
	assert.Equal(t, `{"channel":"news","data":"marker"}`, other.next())

	r = e.do("POST", "/api/send", `{"user":"nobody","data":1}`)
	assert.Equal(t, http.StatusOK, r.status, "sending to an offline user is not an error")
}

func TestDisconnect(t *testing.T) {
	e := start(t, httpapi.Config{}, hub.Config{})
	a1, a2, other := e.dial("u1"), e.dial("u1"), e.dial("u2")
	other.subscribe("news")
	eventually(t, 5*time.Second, func() bool { return e.h.Stats().Connections == 3 }, "three connections")

	r := e.do("POST", "/api/disconnect", `{"user":"u1"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.JSONEq(t, `{"ok":true}`, r.body)
	assert.Equal(t, 4502, a1.closeCode())
	assert.Equal(t, 4502, a2.closeCode())

	eventually(t, 5*time.Second, func() bool {
		return e.do("GET", "/api/online?user=u1", "").body == "{\"online\":false,\"connections\":0}\n"
	}, "u1 offline")
	require.NoError(t, e.h.Publish(context.Background(), "news", []byte(`1`)))
	assert.Equal(t, `{"channel":"news","data":1}`, other.next(), "u2 still connected")
}

func TestPresenceAndOnline(t *testing.T) {
	e := start(t, httpapi.Config{}, hub.Config{})
	for _, u := range []string{"u2", "u1", "u1"} {
		e.dial(u).subscribe("news")
	}
	e.dial("u3").subscribe("other")

	cases := []struct{ path, want string }{
		{"/api/presence?channel=news", `{"users":["u1","u2"]}`},
		{"/api/presence?channel=other", `{"users":["u3"]}`},
		{"/api/presence?channel=empty", `{"users":[]}`},
		{"/api/online?user=u1", `{"online":true,"connections":2}`},
		{"/api/online?user=u3", `{"online":true,"connections":1}`},
		{"/api/online?user=nobody", `{"online":false,"connections":0}`},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			r := e.do("GET", c.path, "")
			require.Equal(t, http.StatusOK, r.status, r.body)
			assert.Equal(t, c.want+"\n", r.body)
		})
	}
}

func TestChannelsPaging(t *testing.T) {
	e := start(t, httpapi.Config{}, hub.Config{})
	c1, c2 := e.dial("u1"), e.dial("u2")
	for i := 1; i <= 5; i++ {
		c1.subscribe(fmt.Sprintf("room:%d", i))
	}
	c2.subscribe("room:2")
	c2.subscribe("lobby")

	type page struct {
		Channels []hub.ChannelInfo `json:"channels"`
		Next     string            `json:"next"`
	}
	get := func(t *testing.T, q string) page {
		t.Helper()
		r := e.do("GET", "/api/channels"+q, "")
		require.Equal(t, http.StatusOK, r.status, r.body)
		var p page
		require.NoError(t, jsonUnmarshal(r.body, &p))
		require.NotNil(t, p.Channels, "channels is [], never null: %s", r.body)
		return p
	}
	names := func(p page) []string {
		var s []string
		for _, c := range p.Channels {
			s = append(s, c.Name)
		}
		return s
	}

	all := get(t, "")
	assert.Equal(t, []string{"lobby", "room:1", "room:2", "room:3", "room:4", "room:5"}, names(all))
	assert.Empty(t, all.Next)
	assert.Equal(t, hub.ChannelInfo{Name: "room:2", Members: 2}, all.Channels[2])

	// Walk the room: pages two at a time until next is empty.
	var walked []string
	after, pages := "", 0
	for {
		p := get(t, "?prefix=room:&limit=2&after="+after)
		walked = append(walked, names(p)...)
		pages++
		if p.Next == "" {
			break
		}
		require.Len(t, p.Channels, 2)
		after = p.Next
		require.Less(t, pages, 10, "paging does not end")
	}
	assert.Equal(t, []string{"room:1", "room:2", "room:3", "room:4", "room:5"}, walked)
	assert.Equal(t, 3, pages)

	// An exact last page has no next.
	p := get(t, "?prefix=room:&after=room:3&limit=2")
	assert.Equal(t, []string{"room:4", "room:5"}, names(p))
	assert.Empty(t, p.Next)

	assert.Empty(t, get(t, "?prefix=nothing").Channels)
	assert.Len(t, get(t, "?limit=5000").Channels, 6, "limit above the maximum is clamped")
}

func TestStats(t *testing.T) {
	e := start(t, httpapi.Config{}, hub.Config{})
	e.dial("u1").subscribe("news")
	require.Equal(t, http.StatusOK, e.do("POST", "/api/publish", `{"channel":"news","data":1}`).status)

	r := e.do("GET", "/api/stats", "")
	require.Equal(t, http.StatusOK, r.status, r.body)
	m := r.json(t)
	for _, k := range []string{
		"connections", "users", "channels", "subscriptions", "messages_in", "messages_out",
		"bytes_in", "bytes_out", "published", "deliveries", "write_calls", "disconnects",
		"evictions", "write_errors", "queue_overflows", "rate_limited", "broker_errors",
		"handshake_failures", "goroutines", "heap_alloc_bytes", "heap_inuse_bytes", "num_gc",
	} {
		assert.Contains(t, m, k)
	}
	assert.EqualValues(t, 1, m["connections"])
	assert.EqualValues(t, 1, m["subscriptions"])
	assert.EqualValues(t, 1, m["published"])
	assert.EqualValues(t, 1, m["deliveries"])
	assert.Greater(t, m["goroutines"], 0.0)
	assert.Greater(t, m["heap_alloc_bytes"], 0.0)
	assert.Greater(t, m["heap_inuse_bytes"], 0.0)
	assert.IsType(t, map[string]any{}, m["disconnects"])
}

// downBroker is a Broker whose transport is unreachable: every message to
// other nodes fails with ErrBrokerDown, as the hub.Broker contract says a
// broker reports it. It lets the API's 503 path run without a cluster.
type downBroker struct{}

var errUnreachable = errors.New("dial tcp 127.0.0.1:1: connection refused")

func (downBroker) Start(hub.Node) error { return nil }
func (downBroker) Publish(context.Context, hub.Publication) error {
	return fmt.Errorf("%w: %w", hub.ErrBrokerDown, errUnreachable)
}
func (downBroker) Send(context.Context, string, []byte) error {
	return fmt.Errorf("%w: %w", hub.ErrBrokerDown, errUnreachable)
}
func (downBroker) Disconnect(context.Context, string) error {
	return fmt.Errorf("%w: %w", hub.ErrBrokerDown, errUnreachable)
}
func (downBroker) Subscribe(string)   {}
func (downBroker) Unsubscribe(string) {}
func (downBroker) Healthy() bool      { return false }
func (downBroker) Close() error       { return nil }

var _ hub.Broker = downBroker{}

func TestBrokerDown(t *testing.T) {
	e := start(t, httpapi.Config{}, hub.Config{Broker: downBroker{}})
	c := e.dial("u1")
	c.subscribe("news")

	r := e.do("GET", "/readyz", "")
	require.Equal(t, http.StatusOK, r.status, "degraded still serves local traffic")
	assert.JSONEq(t, `{"ready":true,"degraded":true}`, r.body)

	cases := []struct{ path, body, push string }{
		{"/api/publish", `{"channel":"news","data":1}`, `{"channel":"news","data":1}`},
		{"/api/broadcast", `{"channels":["news","other"],"data":2}`, `{"channel":"news","data":2}`},
		{"/api/send", `{"user":"u1","data":3}`, `{"data":3}`},
		{"/api/disconnect", `{"user":"nobody"}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			r := e.do("POST", tc.path, tc.body)
			require.Equal(t, http.StatusServiceUnavailable, r.status, r.body)
			assert.Equal(t, 503, r.errorCode(t))
			assert.Contains(t, r.body, "delivered locally; cluster delivery failed: ")
			assert.Contains(t, r.body, "connection refused")
			if tc.push != "" {
				assert.Equal(t, tc.push, c.next(), "local members get it all the same")
			}
		})
	}
	assert.EqualValues(t, 3, e.h.Stats().Published, "broadcast delivered both channels locally")
}
