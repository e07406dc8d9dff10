package auth

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roost-rt/roost/hub"
)

// FuzzVerify feeds arbitrary strings to an HMAC and an Ed25519 verifier. A
// call must never panic, every refusal must be a 401 *hub.Error that does
// not echo the token, and every acceptance must carry a signature that an
// independent check (crypto/hmac, crypto/ed25519) confirms was made with
// the real key: the fuzzer may mutate the valid seeds, but must not forge.
func FuzzVerify(f *testing.F) {
	k := keys(f)
	hs := verifier(f, Config{Secret: k.secret})
	ed := verifier(f, Config{PublicKey: k.ed.Public()})
	seeds := []string{
		sign(f, jwt.SigningMethodHS256, k.secret, claimsFor("u1"), nil),
		sign(f, jwt.SigningMethodHS512, k.secret, jwt.MapClaims{"sub": "u1", "channels": []string{"$a"}}, nil),
		sign(f, jwt.SigningMethodEdDSA, k.ed, claimsFor("u1"), nil),
		sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claimsFor("u1"), nil),
		sign(f, jwt.SigningMethodHS256, pemOf(f, k.ed.Public()), claimsFor("u1"), nil),
		"", ".", "..", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.", "Bearer x",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	edPub := k.ed.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, token string) {
		for _, v := range []*Verifier{hs, ed} {
			id, err := v.Verify(token)
			if err != nil {
				var he *hub.Error
				if !errors.As(err, &he) || he.Code != 401 {
					t.Fatalf("Verify(%q) error %#v is not a 401 *hub.Error", token, err)
				}
				if len(token) > 16 && strings.Contains(he.Message, token) {
					t.Fatalf("error %q echoes the token", he.Message)
				}
				continue
			}
			if id.User == "" {
				t.Fatalf("Verify(%q) accepted an empty user", token)
			}
			if !genuine(token, k.secret, edPub, v == hs) {
				t.Fatalf("Verify(%q) accepted a token not signed with the key", token)
			}
		}
	})
}

// genuine checks the signature of a compact JWS independently of the jwt
// library: HS256/384/512 with secret when hmacKey, EdDSA with pub otherwise.
func genuine(token string, secret []byte, pub ed25519.PublicKey, hmacKey bool) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	enc := base64.RawURLEncoding.Strict()
	hb, err := enc.DecodeString(parts[0])
	if err != nil {
		return false
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return false
	}
	var h struct{ Alg string }
	if json.Unmarshal(hb, &h) != nil {
		return false
	}
	input := []byte(parts[0] + "." + parts[1])
	if !hmacKey {
		return h.Alg == "EdDSA" && ed25519.Verify(pub, input, sig)
	}
	var newHash func() hash.Hash
	switch h.Alg {
	case "HS256":
		newHash = sha256.New
	case "HS384":
		newHash = sha512.New384
	case "HS512":
		newHash = sha512.New
	default:
		return false
	}
	m := hmac.New(newHash, secret)
	m.Write(input)
	return hmac.Equal(m.Sum(nil), sig)
}
