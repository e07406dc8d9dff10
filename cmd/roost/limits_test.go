package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestMaxConnectionsFromConfigFile(t *testing.T) {
	t.Parallel()
	conf := writeFile(t, "roost.conf", "max-connections = 2\n")
	p := startRoost(t, nil, "--config", conf)
	mustDial(t, p.wsURL("user=a"), nil)
	mustDial(t, p.wsURL("user=b"), nil)
	if _, code := dial(t, p.wsURL("user=c"), nil); code != http.StatusServiceUnavailable {
		t.Fatalf("third connection: %d, want 503", code)
	}
	if v := metric(t, p, `roost_handshake_failures_total{reason="limit"}`); v != "1" {
		t.Errorf("limit refusals counted %s, want 1", v)
	}
}

func TestConnRatePerIP(t *testing.T) {
	t.Parallel()
	// One token per 100 s: nothing refills during the test.
	p := startRoost(t, nil, "--conn-rate-per-ip", "0.01", "--conn-burst-per-ip", "2")
	mustDial(t, p.wsURL(""), nil)
	mustDial(t, p.wsURL(""), nil)
	if _, code := dial(t, p.wsURL(""), nil); code != http.StatusTooManyRequests {
		t.Fatalf("third upgrade: %d, want 429", code)
	}
	if v := metric(t, p, `roost_handshake_failures_total{reason="conn_rate_per_ip"}`); v != "1" {
		t.Errorf("conn_rate_per_ip refusals counted %s, want 1", v)
	}
	// X-Forwarded-For is not believed from an untrusted peer.
	if _, code := dial(t, p.wsURL(""), http.Header{"X-Forwarded-For": {"203.0.113.9"}}); code != http.StatusTooManyRequests {
		t.Errorf("spoofed X-Forwarded-For: %d, want 429", code)
	}
}

func TestTrustedProxyForwardedFor(t *testing.T) {
	t.Parallel()
	p := startRoost(t, nil, "--conn-rate-per-ip", "0.01", "--conn-burst-per-ip", "1", "--trusted-proxies", "127.0.0.0/8")
	xff := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
	mustDial(t, p.wsURL("user=a"), xff("203.0.113.1"))
	if _, code := dial(t, p.wsURL(""), xff("203.0.113.1")); code != http.StatusTooManyRequests {
		t.Errorf("second upgrade from 203.0.113.1: %d, want 429", code)
	}
	mustDial(t, p.wsURL("user=b"), xff("203.0.113.2"))
	// The client address reaches the hub too.
	code, body := httpDo(t, "GET", p.url("/api/online?user=a"), "", nil)
	if code != 200 || !strings.Contains(body, `"online":true`) {
		t.Errorf("online: %d %s", code, body)
	}
}

func TestMaxMessageBytesCloses1009(t *testing.T) {
	t.Parallel()
	p := startRoost(t, nil, "--max-message-bytes", "1024")
	c := mustDial(t, p.wsURL(""), nil)
	if m := command(t, c, `{"id":1,"op":"ping"}`); !m.OK {
		t.Fatalf("ping: %+v", m)
	}
	big := `{"id":2,"op":"publish","channel":"x","data":"` + strings.Repeat("a", 2000) + `"}`
	if err := c.WriteMessage(websocket.TextMessage, []byte(big)); err != nil {
		t.Fatal(err)
	}
	if code := readClose(t, c); code != websocket.CloseMessageTooBig {
		t.Fatalf("close code %d, want 1009", code)
	}
}

func TestMaxHeaderBytes431(t *testing.T) {
	t.Parallel()
	p := startRoost(t, nil, "--max-header-bytes", "1024")
	// net/http allows 4 KiB of slack over MaxHeaderBytes.
	code, _ := httpDo(t, "GET", p.url("/healthz"), "", http.Header{"X-Big": {strings.Repeat("b", 8<<10)}})
	if code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", code)
	}
	if v := metric(t, p, `roost_handshake_failures_total{reason="max_header_bytes"}`); v != "1" {
		t.Errorf("max_header_bytes refusals counted %s, want 1", v)
	}
}

func TestHandshakeTimeoutDropsSilentClient(t *testing.T) {
	t.Parallel()
	p := startRoost(t, nil, "--handshake-timeout", "300ms")
	nc, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Half a request line, then silence.
	if _, err := nc.Write([]byte("GET /ws HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := io.Copy(io.Discard, nc); err != nil || n != 0 {
		t.Fatalf("read %d bytes, err %v; want a silent close", n, err)
	}
	eventually(t, 10*time.Second, "handshake_timeout counted", func() bool {
		return metric(t, p, `roost_handshake_failures_total{reason="handshake_timeout"}`) == "1"
	})
	// A served keep-alive connection going idle is not a handshake timeout.
	if code, _ := httpDo(t, "GET", p.url("/healthz"), "", nil); code != 200 {
		t.Fatal(code)
	}
	if v := metric(t, p, `roost_handshake_failures_total{reason="handshake_timeout"}`); v != "1" {
		t.Errorf("handshake_timeout %s after normal requests, want 1", v)
	}
}

func TestIPLimiterIsBoundedAndForgets(t *testing.T) {
	l := newIPLimiter(1, 2, 100)
	t0 := time.Unix(1_000_000, 0)
	if ok, _ := l.allow("a", t0); !ok {
		t.Fatal("first attempt refused")
	}
	if ok, _ := l.allow("a", t0); !ok {
		t.Fatal("burst of 2 refused the second attempt")
	}
	if ok, _ := l.allow("a", t0); ok {
		t.Fatal("third attempt within the burst allowed")
	}
	if ok, _ := l.allow("a", t0.Add(time.Second)); !ok {
		t.Fatal("not refilled after 1s at 1/s")
	}
	for i := range 500 {
		ok, _ := l.allow(fmt.Sprint("ip", i), t0.Add(time.Second))
		if !ok {
			t.Fatalf("new address %d refused", i)
		}
	}
	if n := l.size(); n > 100 {
		t.Fatalf("tracking %d addresses, cap is 100", n)
	}
	// Once buckets have refilled (burst/rate + 1s = 3s), they are dropped.
	l.allow("late", t0.Add(10*time.Second))
	if n := l.size(); n != 1 {
		t.Errorf("tracking %d addresses after they went idle, want 1", n)
	}
	if newIPLimiter(0, 5, 10) != nil {
		t.Error("rate 0 should mean no limiter")
	}
}

func TestClientAddr(t *testing.T) {
	trusted, err := parseProxies("10.0.0.0/8, 127.0.0.1, ::1")
	if err != nil {
		t.Fatal(err)
	}
	f := clientAddrFunc(trusted)
	cases := []struct {
		name, peer, xff, want string
	}{
		{"untrusted peer", "198.51.100.7:4000", "1.2.3.4", "198.51.100.7:4000"},
		{"trusted peer, no header", "10.1.1.1:4000", "", "10.1.1.1:4000"},
		{"one proxy", "10.1.1.1:4000", "203.0.113.5", "203.0.113.5"},
		{"spoofed left part", "10.1.1.1:4000", "6.6.6.6, 203.0.113.5", "203.0.113.5"},
		{"chain of proxies", "127.0.0.1:4000", "203.0.113.5, 10.2.2.2", "203.0.113.5"},
		{"all trusted", "10.1.1.1:4000", "10.3.3.3, 10.2.2.2", "10.3.3.3"},
		{"garbage hop", "10.1.1.1:4000", "203.0.113.5, junk", "10.1.1.1"},
		{"ipv6 loopback", "[::1]:4000", "2001:db8::1", "2001:db8::1"},
		{"mapped ipv4", "[::ffff:10.1.1.1]:4000", "203.0.113.5", "203.0.113.5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/ws", nil)
			r.RemoteAddr = tc.peer
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := f(r); got != tc.want {
				t.Errorf("client %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := parseProxies("10.0.0.0/33"); err == nil {
		t.Error("bad prefix accepted")
	}
	if p, _ := parseProxies("192.168.1.7"); len(p) != 1 || p[0] != netip.MustParsePrefix("192.168.1.7/32") {
		t.Errorf("bare address parsed as %v", p)
	}
}

func TestOriginCheck(t *testing.T) {
	cases := []struct {
		name, list string
		token      bool
		origin     string
		want       bool
	}{
		{"open mode default", "", false, "https://anything.example", true},
		{"token mode same host", "", true, "http://roost.example:8080", true},
		{"token mode other host", "", true, "https://evil.example", false},
		{"no origin header", "", true, "", true},
		{"null origin", "", true, "null", false},
		{"listed origin", "https://app.example", true, "https://app.example", true},
		{"listed origin, other scheme", "https://app.example", true, "http://app.example", false},
		{"listed host, any scheme", "app.example", true, "http://APP.example", true},
		{"star", "*", true, "https://evil.example", true},
		{"unlisted", "https://app.example, https://b.example", false, "https://c.example", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check, err := newOriginCheck(tc.list, tc.token)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "http://roost.example:8080/ws", nil)
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if got := check == nil || check(r); got != tc.want {
				t.Errorf("allowed = %v, want %v", got, tc.want)
			}
		})
	}
}

// selfSigned writes a certificate and key for 127.0.0.1 and returns their paths.
func selfSigned(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "roost test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})))
	return certFile, keyFile
}

// tlsClient returns an HTTP client trusting the certificate in certFile.
func tlsClient(t testing.TB, certFile string) *http.Client {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
