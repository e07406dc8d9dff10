package hub_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/roost-rt/roost/hub"
)

// connect dials the hub as user and joins channel; examples keep it short.
func connect(url, user, channel string) *websocket.Conn {
	c, _, err := websocket.DefaultDialer.Dial(url+"?user="+user, nil)
	if err != nil {
		panic(err)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"op":"subscribe","channel":"`+channel+`"}`))
	_, _, _ = c.ReadMessage() // {"id":1,"ok":true}
	return c
}

func read(c *websocket.Conn) string {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// A Hub is an http.Handler: mount it, and publish to its channels.
func Example() {
	h, err := hub.New(hub.Config{}) // open mode: the user comes from ?user=
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	alice := connect(url, "alice", "news")
	defer alice.Close()
	_ = h.Publish(context.Background(), "news", []byte(`{"headline":"roost ships"}`))
	fmt.Println(read(alice))
	// Output: {"channel":"news","data":{"headline":"roost ships"}}
}

// Send reaches every connection of one user, whatever it joined.
func ExampleHub_Send() {
	h, _ := hub.New(hub.Config{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	phone := connect(url, "bob", "a")
	laptop := connect(url, "bob", "b")
	defer phone.Close()
	defer laptop.Close()
	_ = h.Send(context.Background(), "bob", []byte(`"your order shipped"`))
	fmt.Println(read(phone))
	fmt.Println(read(laptop))
	// Output:
	// {"data":"your order shipped"}
	// {"data":"your order shipped"}
}

// ExcludeUser keeps a message from the user it is about.
func ExampleExcludeUser() {
	h, _ := hub.New(hub.Config{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	carol := connect(url, "carol", "room")
	dave := connect(url, "dave", "room")
	defer carol.Close()
	defer dave.Close()
	_ = h.Publish(context.Background(), "room", []byte(`"carol is typing"`), hub.ExcludeUser("carol"))
	_ = h.Publish(context.Background(), "room", []byte(`"hello"`))
	fmt.Println(read(carol)) // the first message carol sees is the second one
	fmt.Println(read(dave))
	// Output:
	// {"channel":"room","data":"hello"}
	// {"channel":"room","data":"carol is typing"}
}

// Presence and IsOnline answer from the registry (or the cluster's
// PresenceStore).
func ExampleHub_Presence() {
	h, _ := hub.New(hub.Config{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	for _, u := range []string{"erin", "frank", "erin"} {
		c := connect(url, u, "lobby")
		defer c.Close()
	}
	users, _ := h.Presence(context.Background(), "lobby")
	online, conns, _ := h.IsOnline(context.Background(), "erin")
	fmt.Println(users, online, conns)
	// Output: [erin frank] true 2
}

// Shutdown closes every connection with 4001 so clients reconnect to
// another node.
func ExampleHub_Shutdown() {
	h, _ := hub.New(hub.Config{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	c := connect(url, "grace", "news")
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go h.Shutdown(ctx)
	fmt.Println(read(c))
	fmt.Println(h.Ready())
	// Output:
	// websocket: close 4001: server shutting down
	// false
}
