package hub_test

import (
	"context"
	"testing"
	"time"

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
