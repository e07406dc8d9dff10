//go:build linux && !netpoll_fallback

package hub

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/roost-rt/roost/hub/internal/wire"
)

// TestClosedConnNeverTouchesAReusedDescriptor ends a connection whose
// descriptor roost owns, gives its number to a new socket at once (the
// kernel hands out the lowest free number), and then has the ended
// connection read and write as a late poller worker or fan-out worker
// would: neither may touch the new socket.
func TestClosedConnNeverTouchesAReusedDescriptor(t *testing.T) {
	h, err := New(Config{})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer func() { _ = h.Shutdown(context.Background()) }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, _, _, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"?user=victim")
	require.NoError(t, err)
	defer cli.Close()
	var c *conn
	require.Eventually(t, func() bool {
		if es := h.reg.UserConns("victim", nil); len(es) == 1 {
			c = es[0].Value
		}
		return c != nil
	}, 10*time.Second, 5*time.Millisecond)
	require.Nil(t, c.nc, "the hub owns the descriptor of a plain TCP connection")
	fd := int(c.fd)
	require.GreaterOrEqual(t, fd, 0)
	countBefore := openDescriptors(t)

	require.True(t, c.kill(ReasonDisconnected))
	require.Equal(t, countBefore-1, openDescriptors(t), "the connection's only descriptor is closed")

	// Fill every lower hole, so that the next socket pair takes fd.
	for {
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		defer unix.Close(s)
		if s == fd {
			require.NoError(t, unix.Close(s))
			break
		}
		require.Less(t, s, fd, "number %d was not freed", fd)
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(pair[0])
	defer unix.Close(pair[1])
	require.Equal(t, fd, pair[0], "the new socket reuses the number")
	_, err = unix.Write(pair[1], []byte("mine"))
	require.NoError(t, err)

	s := getScratch()
	defer putScratch(s)
	n, err := s.read(c)
	require.Error(t, err, "a read of an ended connection fails")
	require.Zero(t, n)
	require.False(t, c.send(wire.AppendFrame(nil, wire.KindText, []byte(`{"data":"x"}`)), s), "an ended connection takes no frame")

	buf := make([]byte, 16)
	n, err = unix.Read(pair[0], buf)
	require.NoError(t, err)
	require.Equal(t, "mine", string(buf[:n]), "the new socket's bytes are intact")
	_, err = unix.Read(pair[1], buf)
	require.ErrorIs(t, err, unix.EAGAIN, "nothing was written to the new socket")
}

// openDescriptors counts the process's open descriptors.
func openDescriptors(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents) - 1 // ReadDir's own descriptor
}
