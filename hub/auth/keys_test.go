package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// certPEM returns a self-signed certificate for the key pair pub/priv.
func certPEM(tb testing.TB, pub, priv any) []byte {
	tb.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "roost test"},
		NotBefore:    testNow.Add(-time.Hour),
		NotAfter:     testNow.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		tb.Fatalf("create certificate: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestLoadPublicKey(t *testing.T) {
	k := keys(t)
	edPub := k.ed.Public()
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ecPriv, err := x509.MarshalECPrivateKey(k.ec)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(k.ed)
	if err != nil {
		t.Fatal(err)
	}
	ecParams := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}})

	rsaTok := sign(t, jwt.SigningMethodRS256, k.rsa, claimsFor("u1"), nil)
	esTok := sign(t, jwt.SigningMethodES256, k.ec, claimsFor("u1"), nil)
	edTok := sign(t, jwt.SigningMethodEdDSA, k.ed, claimsFor("u1"), nil)

	tests := []struct {
		name    string
		pem     []byte
		wantErr error  // nil: the key loads
		token   string // verifies with the loaded key
	}{
		{"RSA PKIX", pemOf(t, &k.rsa.PublicKey), nil, rsaTok},
		{"RSA PKCS1", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)}), nil, rsaTok},
		{"RSA certificate", certPEM(t, &k.rsa.PublicKey, k.rsa), nil, rsaTok},
		{"EC PKIX", pemOf(t, &k.ec.PublicKey), nil, esTok},
		{"EC certificate", certPEM(t, &k.ec.PublicKey, k.ec), nil, esTok},
		{"EC after EC PARAMETERS", append(ecParams, pemOf(t, &k.ec.PublicKey)...), nil, esTok},
		{"Ed25519 PKIX", pemOf(t, edPub), nil, edTok},
		{"Ed25519 certificate", certPEM(t, edPub, k.ed), nil, edTok},
		{"text before the block", append([]byte("subject=CN = roost\n"), pemOf(t, edPub)...), nil, edTok},

		{"garbage", []byte("not a pem at all"), ErrNoPEM, ""},
		{"empty", nil, ErrNoPEM, ""},
		{"only parameters", ecParams, ErrNoPEM, ""},
		{"corrupt block", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("garbage")}), nil, ""},
		{"corrupt certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x03, 1, 2, 3}}), nil, ""},
		{"EC private key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecPriv}), ErrPrivateKey, ""},
		{"PKCS8 private key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), ErrPrivateKey, ""},
		{"EC P-384", pemOf(t, &p384.PublicKey), ErrUnsupportedKey, ""},
		{"RSA 1024", pemOf(t, &small.PublicKey), ErrUnsupportedKey, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, err := LoadPublicKey(tc.pem)
			if tc.token == "" { // a refusal
				if err == nil {
					t.Fatalf("LoadPublicKey = %T, want an error", key)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("LoadPublicKey error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadPublicKey: %v", err)
			}
			v := verifier(t, Config{PublicKey: key})
			if id, err := v.Verify(tc.token); err != nil || id.User != "u1" {
				t.Fatalf("Verify with the loaded key = %+v, %v", id, err)
			}
		})
	}
}
