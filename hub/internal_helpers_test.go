package hub

import (
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stretchr/testify/require"
)

// serveOne serves h over loopback and connects one gobwas/ws client as
// user. It returns the client, the server's conn for it and its id; the
// client, the server and h end with the test.
func serveOne(t *testing.T, h *Hub, user string) (net.Conn, *conn, uint64) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		_ = h.Shutdown(context.Background())
		srv.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, _, _, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"?user="+user)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.Close() })
	var c *conn
	var id uint64
	// The entry's id is read from the registry: c.entry is set under c.mu
	// after the conn is reachable.
	require.Eventually(t, func() bool {
		if es := h.reg.UserConns(user, nil); len(es) == 1 {
			c, id = es[0].Value, es[0].ID()
		}
		return c != nil
	}, 10*time.Second, 5*time.Millisecond)
	return cli, c, id
}
