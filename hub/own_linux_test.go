//go:build linux && !netpoll_fallback

package hub

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/stretchr/testify/require"

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
	_, c, _ := serveOne(t, h, "victim")
	require.Nil(t, c.nc, "the hub owns the descriptor of a plain TCP connection")
	fd := int(c.fd)
	require.GreaterOrEqual(t, fd, 0)
	countBefore := openDescriptors(t)

	require.True(t, c.kill(ReasonDisconnected))
	require.Equal(t, countBefore-1, openDescriptors(t), "the connection's only descriptor is closed")

	// Fill every lower hole, so that the next socket pair takes fd.
	for {
		s, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		defer syscall.Close(s)
		if s == fd {
			require.NoError(t, syscall.Close(s))
			break
		}
		require.Less(t, s, fd, "number %d was not freed", fd)
	}
	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer syscall.Close(pair[0])
	defer syscall.Close(pair[1])
	require.Equal(t, fd, pair[0], "the new socket reuses the number")
	_, err = syscall.Write(pair[1], []byte("mine"))
	require.NoError(t, err)

	s := getScratch()
	defer putScratch(s)
	n, err := s.read(c)
	require.Error(t, err, "a read of an ended connection fails")
	require.Zero(t, n)
	require.False(t, c.send(wire.AppendFrame(nil, wire.KindText, []byte(`{"data":"x"}`)), s), "an ended connection takes no frame")

	buf := make([]byte, 16)
	n, err = syscall.Read(pair[0], buf)
	require.NoError(t, err)
	require.Equal(t, "mine", string(buf[:n]), "the new socket's bytes are intact")
	_, err = syscall.Read(pair[1], buf)
	require.ErrorIs(t, err, syscall.EAGAIN, "nothing was written to the new socket")
}

// openDescriptors counts the process's open descriptors.
func openDescriptors(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents) - 1 // ReadDir's own descriptor
}

// TestRuntimeOwnedSocketsStillWork drives the path a connection takes when
// its socket cannot be taken from the runtime (no descriptor left for the
// duplicate): epoll through netpoll.Add and reads and writes through
// RawConn. Subscribe, publish, ping and a server-side close must work as
// on owned sockets.
func TestRuntimeOwnedSocketsStillWork(t *testing.T) {
	h, err := New(Config{})
	require.NoError(t, err)
	h.runtimeSockets = true
	cli, c, _ := serveOne(t, h, "kept")
	roundTrip := func(cmd, want string) {
		t.Helper()
		require.NoError(t, ws.WriteFrame(cli, ws.MaskFrameInPlace(ws.NewTextFrame([]byte(cmd)))))
		require.NoError(t, cli.SetReadDeadline(time.Now().Add(10*time.Second)))
		f, err := ws.ReadFrame(cli)
		require.NoError(t, err)
		require.Equal(t, want, string(f.Payload))
	}
	roundTrip(`{"id":1,"op":"subscribe","channel":"news"}`, `{"id":1,"ok":true}`)
	require.NotNil(t, c.nc, "the runtime keeps the socket")
	require.NoError(t, h.Publish(context.Background(), "news", []byte(`{"n":1}`)))
	f, err := ws.ReadFrame(cli)
	require.NoError(t, err)
	require.Equal(t, `{"channel":"news","data":{"n":1}}`, string(f.Payload))
	roundTrip(`{"id":2,"op":"ping"}`, `{"id":2,"ok":true}`)

	require.NoError(t, h.Disconnect(context.Background(), "kept"))
	f, err = ws.ReadFrame(cli)
	require.NoError(t, err)
	require.Equal(t, ws.OpClose, f.Header.OpCode)
	code, _ := ws.ParseCloseFrameData(f.Payload)
	require.Equal(t, ws.StatusCode(4502), code)
}
