package hub_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roost-rt/roost/hub"
)

// stalledClient subscribes to channel and then never reads: its receive
// buffer is shrunk so the server's writes back up quickly.
func stalledClient(t *testing.T, url, channel string) *rawClient {
	t.Helper()
	c := dialRaw(t, url+"?user=slow")
	require.NoError(t, c.conn.(*net.TCPConn).SetReadBuffer(4096))
	c.writeMasked(textFrame(`{"id":1,"op":"subscribe","channel":"` + channel + `"}`))
	assert.Equal(t, `{"id":1,"ok":true}`, string(c.read().Payload))
	return c
}

func TestSlowConsumerEvictedOthersReceiveInOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1,000 connections")
	}
	var mu sync.Mutex
	reasons := map[string]hub.CloseReason{}
	h, url := startHub(t, hub.Config{
		OutboundQueueBytes: 64 << 10,
		ErrorHandler: func(c hub.ConnInfo, r hub.CloseReason, _ error) {
			mu.Lock()
			reasons[c.User] = r
			mu.Unlock()
		},
	})
	slow := stalledClient(t, url, "room")
	// The kernel buffers megabytes per socket on loopback; the stalled client
	// also joins a channel that only it reads, so its queue overflows while
	// the readers' traffic stays small.
	slow.writeMasked(textFrame(`{"id":2,"op":"subscribe","channel":"bulk"}`))
	assert.Equal(t, `{"id":2,"ok":true}`, string(slow.read().Payload))

	const readers = 1000
	msgs := 300
	if raceEnabled {
		msgs = 40
	}
	var wg sync.WaitGroup
	var bad atomic.Int64
	var firstErr atomic.Value
	conns := make([]*websocket.Conn, readers)
	for i := range conns {
		ws, _, err := websocket.DefaultDialer.Dial(url+"?user=r"+strconv.Itoa(i), nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = ws.Close() })
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"op":"subscribe","channel":"room"}`)))
		_, b, err := ws.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, `{"id":1,"ok":true}`, string(b))
		conns[i] = ws
	}
	for _, ws := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = ws.SetReadDeadline(time.Now().Add(3 * time.Minute))
			for want := 0; want < msgs; want++ {
				_, b, err := ws.ReadMessage()
				if err == nil && string(b) != pushOf(want) {
					err = fmt.Errorf("message %d: got %.60q", want, b)
				}
				if err != nil {
					bad.Add(1)
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	bulk := []byte(fmt.Sprintf(`"%0*d"`, 64<<10, 0))
	// 10 MB to the stalled client: more than loopback's 4 MB socket buffers
	// and the 64 KB queue together.
	bulkPerMsg := (160 + msgs - 1) / msgs
	for i := 0; i < msgs; i++ {
		require.NoError(t, h.Publish(context.Background(), "room", []byte(payloadOf(i))))
		for range bulkPerMsg {
			require.NoError(t, h.Publish(context.Background(), "bulk", bulk))
		}
	}
	wg.Wait()
	assert.Zero(t, bad.Load(), "readers that missed a message or got one out of order; first: %v", firstErr.Load())
	eventually(t, 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return reasons["slow"] == hub.ReasonSlow
	}, "slow consumer evicted with slow_consumer")
	st := h.Stats()
	assert.GreaterOrEqual(t, st.QueueOverflows, uint64(1))
	assert.EqualValues(t, 1, st.Disconnects["slow_consumer"])
	assert.EqualValues(t, readers, st.Connections)
}

// payloadOf is message i of the ordering test: a sequence number and 1 KB of
// filler, so the stalled client's queue fills fast.
func payloadOf(i int) string {
	return fmt.Sprintf(`{"seq":%d,"pad":"%0960d"}`, i, 0)
}

func pushOf(i int) string { return `{"channel":"room","data":` + payloadOf(i) + `}` }

func TestHeapBoundedUnderProducerFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes 200 MB")
	}
	h, url := startHub(t, hub.Config{OutboundQueueBytes: 1 << 20})
	stalledClient(t, url, "flood")
	fast := dial(t, url+"?user=fast")
	fast.sendJSON(`{"id":1,"op":"subscribe","channel":"flood"}`)
	require.Equal(t, `{"id":1,"ok":true}`, fast.nextRaw())

	const msgSize = 64 << 10
	total := 200 << 20
	if raceEnabled {
		total = 32 << 20 // make test also runs this file without -race at full size
	}
	payload := []byte(`"` + string(make([]byte, 0)) + fmt.Sprintf("%0*d", msgSize-2, 0) + `"`)
	done := make(chan struct{})
	var received atomic.Int64
	go func() {
		defer close(done)
		for received.Load() < int64(total/msgSize) {
			_ = fast.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
			if _, _, err := fast.ws.ReadMessage(); err != nil {
				return
			}
			received.Add(1)
		}
	}()
	var peak uint64
	var ms runtime.MemStats
	deadline := time.Now().Add(2 * time.Minute)
	for sent, i := 0, 0; sent < total; sent, i = sent+msgSize, i+1 {
		// Pace to the reading client (at most 8 messages in flight, well
		// under its 1 MiB queue): only the stalled client may overflow.
		for received.Load() < int64(i-8) {
			require.True(t, time.Now().Before(deadline), "the reading client stopped receiving")
			time.Sleep(50 * time.Microsecond)
		}
		require.NoError(t, h.Publish(context.Background(), "flood", payload))
		if sent%(8<<20) == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	<-done
	assert.EqualValues(t, total/msgSize, received.Load(), "the reading client got every message")
	t.Logf("peak heap in use while %d MiB went out: %.1f MiB", total>>20, float64(peak)/(1<<20))
	assert.Less(t, peak, uint64(64<<20), "heap must stay bounded by the queues, not by what was published")
	assert.EqualValues(t, 1, h.Stats().Disconnects["slow_consumer"])
}
