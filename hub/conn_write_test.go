package hub

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPartlyWrittenFrameIsNotABoundary publishes a frame far larger than
// the socket buffers of a client that does not read: the kernel takes part
// of it at once, and the queue must say a frame is half sent, or a close
// frame written next would land inside it.
func TestPartlyWrittenFrameIsNotABoundary(t *testing.T) {
	h, err := New(Config{SendBufferBytes: 4 << 10})
	require.NoError(t, err)
	cli, c, id := serveOne(t, h, "slow")
	require.NoError(t, cli.(*net.TCPConn).SetReadBuffer(4<<10))
	require.NoError(t, h.Subscribe(id, "big"))

	data := `"` + strings.Repeat("x", 1<<20) + `"`
	require.NoError(t, h.Publish(context.Background(), "big", []byte(data)))
	c.mu.Lock()
	defer c.mu.Unlock()
	require.Len(t, c.out, 1, "the rest of the frame is queued")
	require.Greater(t, c.outOff, int32(0), "part of the frame was written")
	require.False(t, c.atFrameBoundaryLocked())
	require.Equal(t, int32(len(c.out[0]))-c.outOff, c.outBytes, "outBytes counts what is left")
}
