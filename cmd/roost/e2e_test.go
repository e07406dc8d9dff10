package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

func TestOpenModeRoundTrip(t *testing.T) {
	t.Parallel()
	p := startRoost(t, nil)
	if !strings.Contains(p.logs(), "open mode is for development") || !strings.Contains(p.logs(), `"url":"http://`+p.addr+`/"`) {
		t.Errorf("no open-mode line with the URL in the log:\n%s", p.logs())
	}

	c := mustDial(t, p.wsURL("user=alice"), nil)
	if m := command(t, c, `{"id":1,"op":"subscribe","channel":"news"}`); m.ID != 1 || !m.OK {
		t.Fatalf("subscribe reply %+v", m)
	}
	code, body := httpDo(t, "POST", p.url("/api/publish"), `{"channel":"news","data":{"text":"from the API"}}`, nil)
	if code != 200 {
		t.Fatalf("publish: %d %s", code, body)
	}
	if m := readMessage(t, c); m.Channel != "news" || string(m.Data) != `{"text":"from the API"}` {
		t.Fatalf("push %+v", m)
	}

	// Open mode lets clients publish anywhere, and presence names alice.
	if m := command(t, c, `{"id":2,"op":"publish","channel":"news","data":"hi"}`); m.Channel != "news" && !m.OK {
		t.Fatalf("client publish: %+v", m)
	}
	code, body = httpDo(t, "GET", p.url("/api/presence?channel=news"), "", nil)
	if code != 200 || !strings.Contains(body, `"alice"`) {
		t.Errorf("presence: %d %s", code, body)
	}

	code, body = httpDo(t, "GET", p.url("/"), "", nil)
	if code != 200 || !strings.Contains(body, "<title>roost demo</title>") {
		t.Errorf("demo page: %d", code)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if code, _ := httpDo(t, "GET", p.url(path), "", nil); code != 200 {
			t.Errorf("%s: %d", path, code)
		}
	}
	if code, _ := httpDo(t, "GET", p.url("/nope"), "", nil); code != 404 {
		t.Errorf("/nope: %d, want 404", code)
	}
}

const testSecret = "0123456789abcdef0123456789abcdef-test"

// token signs claims with HS256 and testSecret.
func token(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenMode(t *testing.T) {
	t.Parallel()
	p := startRoost(t, []string{"ROOST_AUTH_SECRET=" + testSecret}, "--client-publish", "chat:")
	if strings.Contains(p.logs(), "open mode") {
		t.Errorf("token mode logs the open-mode line")
	}
	exp := time.Now().Add(time.Hour).Unix()
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "mallory", "exp": exp}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	wrongKey, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "mallory", "exp": exp}).SignedString([]byte(strings.Repeat("x", 40)))
	if err != nil {
		t.Fatal(err)
	}

	upgrades := []struct {
		name   string
		query  string
		header http.Header
		want   int
	}{
		{"good token", "token=" + token(t, jwt.MapClaims{"sub": "u1", "exp": exp}), nil, 101},
		{"bearer header", "", http.Header{"Authorization": {"Bearer " + token(t, jwt.MapClaims{"sub": "u1", "exp": exp})}}, 101},
		{"no token", "", nil, 401},
		{"expired", "token=" + token(t, jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(-time.Hour).Unix()}), nil, 401},
		{"wrong signature", "token=" + wrongKey, nil, 401},
		{"alg none", "token=" + none, nil, 401},
		{"missing sub", "token=" + token(t, jwt.MapClaims{"exp": exp}), nil, 401},
		{"garbage", "token=abc.def.ghi", nil, 401},
		{"foreign origin", "token=" + token(t, jwt.MapClaims{"sub": "u1", "exp": exp}), http.Header{"Origin": {"https://evil.example"}}, 403},
		{"same-host origin", "token=" + token(t, jwt.MapClaims{"sub": "u1", "exp": exp}), http.Header{"Origin": {"http://" + p.addr}}, 101},
	}
	for _, tc := range upgrades {
		t.Run(tc.name, func(t *testing.T) {
			c, code := dial(t, p.wsURL(tc.query), tc.header)
			if code != tc.want {
				t.Fatalf("upgrade status %d, want %d", code, tc.want)
			}
			if c != nil {
				c.Close()
			}
		})
	}

	t.Run("private channels", func(t *testing.T) {
		c := mustDial(t, p.wsURL("token="+token(t, jwt.MapClaims{"sub": "u2", "exp": exp, "channels": []string{"$vip"}})), nil)
		if m := command(t, c, `{"id":1,"op":"subscribe","channel":"$vip"}`); !m.OK {
			t.Errorf("subscribe $vip with the claim: %+v", m)
		}
		if m := command(t, c, `{"id":2,"op":"subscribe","channel":"$staff"}`); m.Error == nil || m.Error.Code != 403 {
			t.Errorf("subscribe $staff without the claim: %+v, want error 403", m)
		}
		// The refusal leaves the connection open.
		if m := command(t, c, `{"id":3,"op":"subscribe","channel":"news"}`); !m.OK || m.ID != 3 {
			t.Errorf("connection unusable after a 403: %+v", m)
		}
	})

	t.Run("refresh", func(t *testing.T) {
		c := mustDial(t, p.wsURL("token="+token(t, jwt.MapClaims{"sub": "u4", "exp": exp})), nil)
		fresh := token(t, jwt.MapClaims{"sub": "u4", "exp": exp + 60, "channels": []string{"$late"}})
		if m := command(t, c, `{"id":1,"op":"refresh","token":"`+fresh+`"}`); !m.OK {
			t.Fatalf("refresh: %+v", m)
		}
		if m := command(t, c, `{"id":2,"op":"subscribe","channel":"$late"}`); !m.OK {
			t.Errorf("grant of the refreshed token not applied: %+v", m)
		}
		other := token(t, jwt.MapClaims{"sub": "someone-else", "exp": exp})
		if m := command(t, c, `{"id":3,"op":"refresh","token":"`+other+`"}`); m.Error == nil || m.Error.Code != 403 {
			t.Errorf("refresh as another user: %+v, want 403", m)
		}
	})

	t.Run("client publish prefixes", func(t *testing.T) {
		c := mustDial(t, p.wsURL("token="+token(t, jwt.MapClaims{"sub": "u3", "exp": exp})), nil)
		if m := command(t, c, `{"id":1,"op":"publish","channel":"news","data":1}`); m.Error == nil || m.Error.Code != 403 {
			t.Errorf("publish on news: %+v, want 403", m)
		}
		if m := command(t, c, `{"id":2,"op":"publish","channel":"chat:1","data":1}`); !m.OK {
			t.Errorf("publish on chat:1: %+v, want ok", m)
		}
	})
}

func TestTokenModePublicKeyRejectsAlgorithmConfusion(t *testing.T) {
	t.Parallel()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	keyFile := writeFile(t, "pub.pem", string(pemBytes))
	p := startRoost(t, nil, "--auth-public-key", keyFile, "--auth-audience", "roost")

	claims := jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(time.Hour).Unix(), "aud": "roost"}
	good, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	confused, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	claims["aud"] = "other"
	wrongAud, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		tok  string
		want int
	}{"EdDSA": {good, 101}, "HS256 with the public key as secret": {confused, 401}, "wrong audience": {wrongAud, 401}} {
		if c, code := dial(t, p.wsURL("token="+tc.tok), nil); code != tc.want {
			t.Errorf("%s: status %d, want %d", name, code, tc.want)
		} else if c != nil {
			c.Close()
		}
	}
}

func TestAPIKey(t *testing.T) {
	t.Parallel()
	p := startRoost(t, []string{"ROOST_API_KEY=s3cret"})
	c := mustDial(t, p.wsURL("user=bob"), nil)
	if m := command(t, c, `{"id":1,"op":"subscribe","channel":"news"}`); !m.OK {
		t.Fatalf("subscribe: %+v", m)
	}
	body := `{"channel":"news","data":{"n":1}}`
	for _, tc := range []struct {
		name   string
		header http.Header
		want   int
	}{
		{"no key", nil, 401},
		{"wrong key", http.Header{"Authorization": {"apikey nope"}}, 401},
		{"right key", http.Header{"Authorization": {"apikey s3cret"}}, 200},
	} {
		if code, resp := httpDo(t, "POST", p.url("/api/publish"), body, tc.header); code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, resp, tc.want)
		}
	}
	if m := readMessage(t, c); string(m.Data) != `{"n":1}` {
		t.Errorf("push %+v", m)
	}
	// Scrapers and probes need no key.
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		if code, _ := httpDo(t, "GET", p.url(path), "", nil); code != 200 {
			t.Errorf("%s without key: %d", path, code)
		}
	}
	var stats map[string]any
	code, resp := httpDo(t, "GET", p.url("/api/stats"), "", http.Header{"Authorization": {"apikey s3cret"}})
	if err := json.Unmarshal([]byte(resp), &stats); code != 200 || err != nil || stats["connections"] != float64(1) {
		t.Errorf("stats: %d %s", code, resp)
	}
}

// TestTLS serves the API and wss from the same TLS listener; the log
// carries the cost warning.
func TestTLS(t *testing.T) {
	t.Parallel()
	cert, key := selfSigned(t)
	p := startRoost(t, nil, "--tls-cert", cert, "--tls-key", key)
	if !strings.Contains(p.logs(), "TLS is served in process") || !strings.Contains(p.logs(), `"url":"https://`) {
		t.Errorf("no TLS warning or https URL in the log:\n%s", p.logs())
	}
	client := tlsClient(t, cert)
	d := websocket.Dialer{TLSClientConfig: client.Transport.(*http.Transport).TLSClientConfig, HandshakeTimeout: 10 * time.Second}
	c, _, err := d.Dial("wss://"+p.addr+"/ws?user=sec", nil)
	if err != nil {
		t.Fatalf("wss: %v", err)
	}
	defer c.Close()
	if m := command(t, c, `{"id":1,"op":"subscribe","channel":"secure"}`); !m.OK {
		t.Fatalf("subscribe: %+v", m)
	}
	resp, err := client.Post("https://"+p.addr+"/api/publish", "application/json", strings.NewReader(`{"channel":"secure","data":"over tls"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("https publish: %d", resp.StatusCode)
	}
	if m := readMessage(t, c); string(m.Data) != `"over tls"` {
		t.Errorf("push %+v", m)
	}
	if code, _ := httpDo(t, "GET", "http://"+p.addr+"/healthz", "", nil); code != http.StatusBadRequest {
		t.Errorf("plain HTTP on the TLS port: %d, want 400", code)
	}
}
