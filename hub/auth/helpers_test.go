package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testNow is the fixed clock of every test verifier.
var testNow = time.Unix(1_700_000_000, 0)

func fixedNow() time.Time { return testNow }

// testKeys are one key of each kind, generated once per test binary with
// crypto/rand (RSA generation is slow enough to matter under -race).
type testKeys struct {
	secret []byte
	rsa    *rsa.PrivateKey
	ec     *ecdsa.PrivateKey
	ed     ed25519.PrivateKey
}

var loadKeys = sync.OnceValues(func() (*testKeys, error) {
	k := &testKeys{secret: make([]byte, 64)}
	if _, err := rand.Read(k.secret); err != nil {
		return nil, err
	}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		return nil, err
	}
	return k, nil
})

func keys(tb testing.TB) *testKeys {
	tb.Helper()
	k, err := loadKeys()
	if err != nil {
		tb.Fatalf("generate test keys: %v", err)
	}
	return k
}

// sign returns a compact JWS of claims, with extra header fields.
func sign(tb testing.TB, m jwt.SigningMethod, key any, claims jwt.MapClaims, header map[string]any) string {
	tb.Helper()
	t := jwt.NewWithClaims(m, claims)
	for k, v := range header {
		t.Header[k] = v
	}
	s, err := t.SignedString(key)
	if err != nil {
		tb.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

// verifier returns a Verifier on cfg with the test clock, failing tb on error.
func verifier(tb testing.TB, cfg Config) *Verifier {
	tb.Helper()
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	v, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return v
}

// claimsFor returns the claims of a token for user valid for an hour.
func claimsFor(user string) jwt.MapClaims {
	return jwt.MapClaims{"sub": user, "exp": testNow.Add(time.Hour).Unix()}
}

// pemOf encodes a public key as a PKIX "PUBLIC KEY" block.
func pemOf(tb testing.TB, pub any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatalf("marshal public key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
