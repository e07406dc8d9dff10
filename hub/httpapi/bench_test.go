package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/roost-rt/roost/hub"
	"github.com/roost-rt/roost/hub/httpapi"
)

// BenchmarkPublishHandler measures the API's own cost of a publish (auth,
// body read, decode, validation, hub.Publish to a channel with one
// subscriber, answer), without the network.
func BenchmarkPublishHandler(b *testing.B) {
	e := start(b, httpapi.Config{APIKey: "k"}, hub.Config{})
	c := e.dial("u1")
	c.subscribe("news")
	go func() { // drain the subscriber so its queue never overflows
		for {
			if _, _, err := c.ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	body := `{"channel":"news","data":{"text":"hello","n":12345}}`
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/api/publish", strings.NewReader(body))
		req.Header.Set("Authorization", "apikey k")
		w := httptest.NewRecorder()
		e.handler.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkScrape measures one /metrics scrape: one hub.Stats call plus the
// Go and process collectors and text encoding.
func BenchmarkScrape(b *testing.B) {
	e := start(b, httpapi.Config{}, hub.Config{})
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		e.handler.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
