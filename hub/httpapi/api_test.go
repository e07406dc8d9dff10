package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/roost-rt/roost/hub"
	"github.com/roost-rt/roost/hub/httpapi"
)

func TestAPIKey(t *testing.T) {
	e := start(t, httpapi.Config{APIKey: "s3cret"}, hub.Config{})
	cases := []struct {
		name, path, auth string
		want             int
	}{
		{"missing", "/api/stats", "", http.StatusUnauthorized},
		{"wrong key", "/api/stats", "apikey nope", http.StatusUnauthorized},
		{"key prefix", "/api/stats", "apikey s3cre", http.StatusUnauthorized},
		{"key plus suffix", "/api/stats", "apikey s3cret2", http.StatusUnauthorized},
		{"other scheme", "/api/stats", "Bearer s3cret", http.StatusUnauthorized},
		{"scheme only", "/api/stats", "apikey", http.StatusUnauthorized},
		{"good", "/api/stats", "apikey s3cret", http.StatusOK},
		{"scheme case-insensitive", "/api/stats", "ApiKey s3cret", http.StatusOK},
		{"unknown api path hides behind the key", "/api/nope", "", http.StatusUnauthorized},
		{"unknown api path with key", "/api/nope", "apikey s3cret", http.StatusNotFound},
		{"metrics needs no key", "/metrics", "", http.StatusOK},
		{"healthz needs no key", "/healthz", "", http.StatusOK},
		{"readyz needs no key", "/readyz", "", http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hd := http.Header{}
			if c.auth != "" {
				hd.Set("Authorization", c.auth)
			}
			r := e.doHeader("GET", c.path, "", hd)
			require.Equal(t, c.want, r.status, r.body)
			if c.want == http.StatusUnauthorized {
				assert.Equal(t, 401, r.errorCode(t))
				assert.Equal(t, "apikey", r.header.Get("WWW-Authenticate"))
			}
		})
	}
}

// TestLoopbackOnly checks that without an API key only loopback clients
// reach /api/*, using both ways of faking the client address.
func TestLoopbackOnly(t *testing.T) {
	cases := []struct {
		remote string
		want   int
	}{
		{"127.0.0.1:5000", http.StatusOK},
		{"127.9.9.9:5000", http.StatusOK},
		{"[::1]:5000", http.StatusOK},
		{"::1", http.StatusOK},
		{"[::ffff:127.0.0.1]:5000", http.StatusOK},
		{"203.0.113.5:5000", http.StatusForbidden},
		{"10.0.0.1", http.StatusForbidden},
		{"[2001:db8::1]:5000", http.StatusForbidden},
		{"localhost:5000", http.StatusForbidden}, // names are not resolved
		{"", http.StatusForbidden},
		{"garbage", http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run("RemoteAddr func "+c.remote, func(t *testing.T) {
			e := start(t, httpapi.Config{RemoteAddr: func(*http.Request) string { return c.remote }}, hub.Config{})
			r := e.do("GET", "/api/stats", "")
			require.Equal(t, c.want, r.status, r.body)
			if c.want == http.StatusForbidden {
				assert.Equal(t, 403, r.errorCode(t))
				assert.Equal(t, http.StatusOK, e.do("GET", "/metrics", "").status, "metrics stays open")
				assert.Equal(t, http.StatusOK, e.do("GET", "/healthz", "").status, "healthz stays open")
			}
		})
	}
	t.Run("rewritten r.RemoteAddr", func(t *testing.T) {
		e := start(t, httpapi.Config{}, hub.Config{})
		for _, c := range cases {
			req := httptest.NewRequest("GET", "/api/stats", nil)
			req.RemoteAddr = c.remote
			w := httptest.NewRecorder()
			e.handler.ServeHTTP(w, req)
			assert.Equal(t, c.want, w.Code, "remote %q", c.remote)
		}
	})
	t.Run("real loopback client", func(t *testing.T) {
		e := start(t, httpapi.Config{}, hub.Config{})
		assert.Equal(t, http.StatusOK, e.do("GET", "/api/stats", "").status)
	})
}

func TestRouting(t *testing.T) {
	e := start(t, httpapi.Config{APIKey: "k"}, hub.Config{})
	cases := []struct {
		method, path string
		want         int
		allow        string
	}{
		{"GET", "/api/publish", http.StatusMethodNotAllowed, "POST"},
		{"PUT", "/api/broadcast", http.StatusMethodNotAllowed, "POST"},
		{"GET", "/api/send", http.StatusMethodNotAllowed, "POST"},
		{"DELETE", "/api/disconnect", http.StatusMethodNotAllowed, "POST"},
		{"POST", "/api/presence?channel=a", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"POST", "/api/online?user=a", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"POST", "/api/stats", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"DELETE", "/api/channels", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"POST", "/metrics", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"POST", "/healthz", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"PUT", "/readyz", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"GET", "/nope", http.StatusNotFound, ""},
		{"GET", "/", http.StatusNotFound, ""},
		{"GET", "/api/", http.StatusNotFound, ""},
		{"GET", "/api/stats/", http.StatusNotFound, ""},
		{"HEAD", "/healthz", http.StatusOK, ""},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			r := e.do(c.method, c.path, "")
			require.Equal(t, c.want, r.status, r.body)
			assert.Equal(t, c.allow, r.header.Get("Allow"))
			if c.want >= 400 {
				assert.Equal(t, c.want, r.errorCode(t))
				assert.Equal(t, "application/json", r.header.Get("Content-Type"))
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	e := start(t, httpapi.Config{}, hub.Config{})
	long := strings.Repeat("x", 256)
	many := `"a"` + strings.Repeat(`,"a"`, 1000) // 1,001 channels
	cases := []struct {
		name, method, path, body string
	}{
		{"publish empty body", "POST", "/api/publish", ""},
		{"publish not json", "POST", "/api/publish", `{not json`},
		{"publish array", "POST", "/api/publish", `["news"]`},
		{"publish missing channel", "POST", "/api/publish", `{"data":1}`},
		{"publish channel with space", "POST", "/api/publish", `{"channel":"a b","data":1}`},
		{"publish channel too long", "POST", "/api/publish", `{"channel":"` + long + `","data":1}`},
		{"publish channel not a string", "POST", "/api/publish", `{"channel":7,"data":1}`},
		{"publish missing data", "POST", "/api/publish", `{"channel":"news"}`},
		{"publish data not json", "POST", "/api/publish", `{"channel":"news","data":hello}`},
		{"publish unknown field", "POST", "/api/publish", `{"channel":"news","data":1,"exclude":"u1"}`},
		{"publish trailing data", "POST", "/api/publish", `{"channel":"news","data":1} {}`},
		{"broadcast no channels", "POST", "/api/broadcast", `{"channels":[],"data":1}`},
		{"broadcast missing channels", "POST", "/api/broadcast", `{"data":1}`},
		{"broadcast too many channels", "POST", "/api/broadcast", `{"channels":[` + many + `],"data":1}`},
		{"broadcast one bad channel", "POST", "/api/broadcast", `{"channels":["a","b c"],"data":1}`},
		{"broadcast missing data", "POST", "/api/broadcast", `{"channels":["a"]}`},
		{"send missing user", "POST", "/api/send", `{"data":1}`},
		{"send missing data", "POST", "/api/send", `{"user":"u1"}`},
		{"send data not json", "POST", "/api/send", `{"user":"u1","data":'x'}`},
		{"disconnect missing user", "POST", "/api/disconnect", `{}`},
		{"disconnect not json", "POST", "/api/disconnect", `user=u1`},
		{"presence missing channel", "GET", "/api/presence", ""},
		{"presence bad channel", "GET", "/api/presence?channel=a%20b", ""},
		{"online missing user", "GET", "/api/online", ""},
		{"channels limit not a number", "GET", "/api/channels?limit=ten", ""},
		{"channels limit zero", "GET", "/api/channels?limit=0", ""},
		{"channels limit negative", "GET", "/api/channels?limit=-5", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.method, c.path, c.body)
			require.Equal(t, http.StatusBadRequest, r.status, r.body)
			assert.Equal(t, 400, r.errorCode(t))
		})
	}
	assert.Zero(t, e.h.Stats().Published, "a bad request must publish nothing")
}

func TestBodyLimit(t *testing.T) {
	// pad builds a valid publish body of exactly n bytes.
	pad := func(n int) string {
		b := `{"channel":"news","data":1}`
		return b + strings.Repeat(" ", n-len(b))
	}
	cases := []struct {
		name  string
		limit int64
		body  string
		want  int
	}{
		{"default limit exactly", 0, pad(1 << 20), http.StatusOK},
		{"default limit plus one", 0, pad(1<<20 + 1), http.StatusRequestEntityTooLarge},
		{"small limit exactly", 100, pad(100), http.StatusOK},
		{"small limit plus one", 100, pad(101), http.StatusRequestEntityTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := start(t, httpapi.Config{MaxBodyBytes: c.limit}, hub.Config{})
			r := e.do("POST", "/api/publish", c.body)
			require.Equal(t, c.want, r.status, r.body)
			if c.want != http.StatusOK {
				assert.Equal(t, c.want, r.errorCode(t))
			}
		})
	}
}

func TestReadyzAndShutdown(t *testing.T) {
	e := start(t, httpapi.Config{}, hub.Config{})
	r := e.do("GET", "/readyz", "")
	require.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `{"ready":true,"degraded":false}`, r.body)
	r = e.do("GET", "/healthz", "")
	require.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, `{"ok":true}`, r.body)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, e.h.Shutdown(ctx))

	r = e.do("GET", "/readyz", "")
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	assert.JSONEq(t, `{"ready":false,"degraded":false}`, r.body)
	assert.Equal(t, http.StatusOK, e.do("GET", "/healthz", "").status, "alive while draining")

	for _, c := range []struct{ path, body string }{
		{"/api/publish", `{"channel":"news","data":1}`},
		{"/api/broadcast", `{"channels":["a","b"],"data":1}`},
		{"/api/send", `{"user":"u1","data":1}`},
	} {
		r = e.do("POST", c.path, c.body)
		require.Equal(t, http.StatusServiceUnavailable, r.status, "%s: %s", c.path, r.body)
		assert.Equal(t, 503, r.errorCode(t))
	}
}
