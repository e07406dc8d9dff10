package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/roost-rt/roost/hub"
	"github.com/roost-rt/roost/hub/httpapi"
)

// A server mounts the hub on "/ws" and the API on "/". The metrics exist
// before the hub because the hub's hooks feed them. A backend then
// publishes with one POST, and a subscribed WebSocket client receives it.
func Example() {
	metrics := httpapi.NewMetrics(nil)
	var cfg hub.Config
	metrics.Hooks(&cfg)
	h, err := hub.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", h)
	mux.Handle("/", httpapi.New(h, httpapi.Config{APIKey: "example-key", Metrics: metrics}))
	srv := httptest.NewServer(mux) // a real server sets its timeouts (http.Server)
	defer srv.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
	}()

	// A browser joins "news".
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws?user=alice", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ws.Close()
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"op":"subscribe","channel":"news"}`))
	_, reply, _ := ws.ReadMessage()
	fmt.Println(string(reply))

	// The backend publishes.
	req, _ := http.NewRequest("POST", srv.URL+"/api/publish", strings.NewReader(`{"channel":"news","data":{"text":"hello"}}`))
	req.Header.Set("Authorization", "apikey example-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.StatusCode, " ", string(body))

	_, push, _ := ws.ReadMessage()
	fmt.Println(string(push))
	// Output:
	// {"id":1,"ok":true}
	// 200 {"ok":true}
	// {"channel":"news","data":{"text":"hello"}}
}
