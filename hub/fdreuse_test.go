package hub_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/roost-rt/roost/hub"
)

// TestReusedDescriptorNumbersNeverCrossConnections churns connections
// while the server writes to them and ends them from several sides at once:
// client resets, server Disconnect while the client is still writing, and
// protocol errors. Closed descriptor numbers are reused at once by the next
// socket, and roost owns its descriptors with no runtime reference count in
// between; every client checks that it receives only its own replies and its
// own user's sends, and that no reply it waits for is lost. The rule itself
// is checked deterministically by TestClosedConnNeverTouchesAReusedDescriptor.
func TestReusedDescriptorNumbersNeverCrossConnections(t *testing.T) {
	workers, rounds := 8, 60
	if raceEnabled {
		rounds = 25
	}
	h, url := startHub(t, hub.Config{})
	var nextID atomic.Int64
	stop := make(chan struct{})
	var sends sync.WaitGroup
	sends.Add(1)
	go func() { // keeps writing to every worker's user while connections churn
		defer sends.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			w := i % workers
			_ = h.Send(context.Background(), "w"+strconv.Itoa(w), []byte(`{"to":"w`+strconv.Itoa(w)+`"}`))
			if i%workers == 0 {
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := "w" + strconv.Itoa(w)
			for r := range rounds {
				if err := churnOnce(h, url, user, r%3, &nextID); err != nil {
					errs <- fmt.Errorf("%s round %d: %w", user, r, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	sends.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	eventually(t, 10*time.Second, func() bool { return h.Stats().Connections == 0 }, "every connection gone")
}

// churnOnce opens one connection as user, checks three ping round trips
// (every message it reads must be its own reply or its own user's send),
// and ends the connection the way given: 0 the client closes, 1 the server
// disconnects the user, 2 the client breaks the protocol.
func churnOnce(h *hub.Hub, url, user string, how int, nextID *atomic.Int64) error {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	c, _, err := d.Dial(url+"?user="+user, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	own := `{"data":{"to":"` + user + `"}}`
	for range 3 {
		id := nextID.Add(1)
		want := `{"id":` + strconv.FormatInt(id, 10) + `,"ok":true}`
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"id":`+strconv.FormatInt(id, 10)+`,"op":"ping"}`)); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				return fmt.Errorf("waiting for %s: %w", want, err)
			}
			if string(b) == want {
				break
			}
			if string(b) != own {
				return fmt.Errorf("received %q, which is neither %s nor this user's send", b, want)
			}
		}
	}
	switch how {
	case 0:
		// A reset instead of a FIN: the sender's next write to this
		// connection fails and ends it on the sending goroutine, while a
		// poller worker reads the reset.
		if tc, ok := c.NetConn().(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	case 1:
		// The client keeps writing while the server ends the connection,
		// so that reads are in flight when the descriptor is closed.
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i < 200; i++ {
				if c.WriteMessage(websocket.TextMessage, []byte(`{"op":"ping"}`)) != nil {
					return
				}
			}
		}()
		time.Sleep(time.Duration(nextID.Load()%5) * 100 * time.Microsecond)
		err := h.Disconnect(context.Background(), user)
		<-done
		return err
	case 2:
		// Invalid UTF-8 in a text message: the server closes with 1007.
		return c.WriteMessage(websocket.TextMessage, []byte{0xff})
	}
	return nil
}
