package hub_test

import (
	"context"
	"crypto/tls"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roost-rt/roost/hub"
)

// TLS connections have no raw descriptor for epoll; they take the
// goroutine-per-connection path and must behave the same on the wire.
func TestTLSConnectionsWork(t *testing.T) {
	h, err := hub.New(hub.Config{})
	require.NoError(t, err)
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // test server's self-signed cert
	url := "wss" + strings.TrimPrefix(srv.URL, "https")

	ws, _, err := d.Dial(url+"?user=t1", nil)
	require.NoError(t, err)
	defer ws.Close()
	c := &client{tb: t, ws: ws}
	c.sendJSON(`{"id":1,"op":"subscribe","channel":"secure"}`)
	assert.Equal(t, `{"id":1,"ok":true}`, c.nextRaw())
	for i := 0; i < 100; i++ {
		require.NoError(t, h.Publish(context.Background(), "secure", []byte(payloadOf(i))))
	}
	for i := 0; i < 100; i++ {
		require.Equal(t, `{"channel":"secure","data":`+payloadOf(i)+`}`, c.nextRaw())
	}
	c.sendJSON(`{"id":2,"op":"bogus"}`)
	assert.Contains(t, c.nextRaw(), `"code":400`)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() { _ = h.Shutdown(ctx) }()
	assert.Equal(t, 4001, c.closeCode())
	eventually(t, 5*time.Second, func() bool { return h.Stats().Connections == 0 }, "TLS connection released")
}
