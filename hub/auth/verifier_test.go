package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roost-rt/roost/hub"
)

func TestVerify(t *testing.T) {
	k := keys(t)
	hs := Config{Secret: k.secret}
	rs := Config{PublicKey: &k.rsa.PublicKey}
	es := Config{PublicKey: &k.ec.PublicKey}
	ed := Config{PublicKey: k.ed.Public()}
	exp := testNow.Add(time.Hour).Truncate(time.Second)

	otherEC, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	with := func(extra jwt.MapClaims) jwt.MapClaims {
		c := claimsFor("u1")
		for key, val := range extra {
			if val == nil {
				delete(c, key)
				continue
			}
			c[key] = val
		}
		return c
	}
	hs256 := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, k.secret, c, nil) }
	good := hs256(claimsFor("u1"))
	parts := strings.Split(good, ".")
	noneTok := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claimsFor("u1"), nil)

	tests := []struct {
		name    string
		cfg     Config
		token   string
		want    hub.Identity // checked when wantErr is nil
		wantErr *hub.Error
	}{
		{"HS256", hs, good, hub.Identity{User: "u1", ExpiresAt: exp}, nil},
		{"HS384", hs, sign(t, jwt.SigningMethodHS384, k.secret, claimsFor("u1"), nil), hub.Identity{User: "u1", ExpiresAt: exp}, nil},
		{"HS512", hs, sign(t, jwt.SigningMethodHS512, k.secret, claimsFor("u1"), nil), hub.Identity{User: "u1", ExpiresAt: exp}, nil},
		{"RS256", rs, sign(t, jwt.SigningMethodRS256, k.rsa, claimsFor("u1"), nil), hub.Identity{User: "u1", ExpiresAt: exp}, nil},
		{"RS512", rs, sign(t, jwt.SigningMethodRS512, k.rsa, claimsFor("u1"), nil), hub.Identity{User: "u1", ExpiresAt: exp}, nil},
		{"ES256", es, sign(t, jwt.SigningMethodES256, k.ec, claimsFor("u1"), nil), hub.Identity{User: "u1", ExpiresAt: exp}, nil},
		{"EdDSA", ed, sign(t, jwt.SigningMethodEdDSA, k.ed, claimsFor("u1"), nil), hub.Identity{User: "u1", ExpiresAt: exp}, nil},
		{"no exp never expires", hs, hs256(jwt.MapClaims{"sub": "u1"}), hub.Identity{User: "u1"}, nil},
		{"iat in the future not checked", hs, hs256(with(jwt.MapClaims{"iat": testNow.Add(time.Hour).Unix()})), hub.Identity{User: "u1", ExpiresAt: exp}, nil},

		{"expired", hs, hs256(with(jwt.MapClaims{"exp": testNow.Add(-time.Minute).Unix()})), hub.Identity{}, ErrTokenExpired},
		{"expired within default leeway", hs, hs256(with(jwt.MapClaims{"exp": testNow.Add(-5 * time.Second).Unix()})), hub.Identity{User: "u1", ExpiresAt: testNow.Add(-5 * time.Second)}, nil},
		{"expired past default leeway", hs, hs256(with(jwt.MapClaims{"exp": testNow.Add(-DefaultLeeway - time.Second).Unix()})), hub.Identity{}, ErrTokenExpired},
		{"expired with no leeway", Config{Secret: k.secret, Leeway: -1}, hs256(with(jwt.MapClaims{"exp": testNow.Add(-time.Second).Unix()})), hub.Identity{}, ErrTokenExpired},
		{"expired within custom leeway", Config{Secret: k.secret, Leeway: time.Minute}, hs256(with(jwt.MapClaims{"exp": testNow.Add(-30 * time.Second).Unix()})), hub.Identity{User: "u1", ExpiresAt: testNow.Add(-30 * time.Second)}, nil},
		{"nbf in the future", hs, hs256(with(jwt.MapClaims{"nbf": testNow.Add(time.Minute).Unix()})), hub.Identity{}, ErrTokenNotYetValid},
		{"nbf within leeway", hs, hs256(with(jwt.MapClaims{"nbf": testNow.Add(5 * time.Second).Unix()})), hub.Identity{User: "u1", ExpiresAt: exp}, nil},
		{"nbf in the past", hs, hs256(with(jwt.MapClaims{"nbf": testNow.Add(-time.Minute).Unix()})), hub.Identity{User: "u1", ExpiresAt: exp}, nil},

		{"wrong secret", hs, sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), claimsFor("u1"), nil), hub.Identity{}, ErrSignature},
		{"tampered payload", hs, parts[0] + "." + strings.Split(hs256(claimsFor("admin")), ".")[1] + "." + parts[2], hub.Identity{}, ErrSignature},
		{"wrong EC key", es, sign(t, jwt.SigningMethodES256, otherEC, claimsFor("u1"), nil), hub.Identity{}, ErrSignature},
		{"signature of another token", hs, parts[0] + "." + parts[1] + "." + strings.Split(hs256(claimsFor("u2")), ".")[2], hub.Identity{}, ErrSignature},
		{"empty signature", hs, parts[0] + "." + parts[1] + ".", hub.Identity{}, ErrSignature},

		// Algorithm confusion: the attacker MACs a token with the public key,
		// which is not secret, hoping the server uses it as an HMAC key.
		{"HS256 MACed with RSA public PEM", rs, sign(t, jwt.SigningMethodHS256, pemOf(t, &k.rsa.PublicKey), claimsFor("admin"), nil), hub.Identity{}, ErrAlgorithm},
		{"HS256 MACed with RSA public DER", rs, sign(t, jwt.SigningMethodHS256, rsaDER, claimsFor("admin"), nil), hub.Identity{}, ErrAlgorithm},
		{"HS256 MACed with EC public PEM", es, sign(t, jwt.SigningMethodHS256, pemOf(t, &k.ec.PublicKey), claimsFor("admin"), nil), hub.Identity{}, ErrAlgorithm},
		{"HS256 MACed with Ed25519 public key", ed, sign(t, jwt.SigningMethodHS256, []byte(k.ed.Public().(ed25519.PublicKey)), claimsFor("admin"), nil), hub.Identity{}, ErrAlgorithm},
		{"RS256 against a secret", hs, sign(t, jwt.SigningMethodRS256, k.rsa, claimsFor("u1"), nil), hub.Identity{}, ErrAlgorithm},
		{"ES256 against RSA key", rs, sign(t, jwt.SigningMethodES256, k.ec, claimsFor("u1"), nil), hub.Identity{}, ErrAlgorithm},
		{"PS256 against RSA key", rs, sign(t, jwt.SigningMethodPS256, k.rsa, claimsFor("u1"), nil), hub.Identity{}, ErrAlgorithm},
		{"alg none vs secret", hs, noneTok, hub.Identity{}, ErrAlgorithm},
		{"alg none vs RSA", rs, noneTok, hub.Identity{}, ErrAlgorithm},
		{"alg none with HS signature", hs, noneTok + parts[2], hub.Identity{}, ErrAlgorithm},
		{"unknown alg", hs, "eyJhbGciOiJYWVoiLCJ0eXAiOiJKV1QifQ." + parts[1] + "." + parts[2], hub.Identity{}, ErrAlgorithm},
		{"crit header", hs, sign(t, jwt.SigningMethodHS256, k.secret, claimsFor("u1"), map[string]any{"crit": []string{"exp"}}), hub.Identity{}, ErrCritical},

		{"missing sub", hs, hs256(with(jwt.MapClaims{"sub": nil})), hub.Identity{}, ErrNoSubject},
		{"empty sub", hs, hs256(with(jwt.MapClaims{"sub": ""})), hub.Identity{}, ErrNoSubject},
		{"numeric sub", hs, hs256(with(jwt.MapClaims{"sub": 42})), hub.Identity{}, ErrTokenMalformed},

		{"audience match", Config{Secret: k.secret, Audience: "roost"}, hs256(with(jwt.MapClaims{"aud": "roost"})), hub.Identity{User: "u1", ExpiresAt: exp}, nil},
		{"audience in list", Config{Secret: k.secret, Audience: "roost"}, hs256(with(jwt.MapClaims{"aud": []string{"api", "roost"}})), hub.Identity{User: "u1", ExpiresAt: exp}, nil},
		{"audience mismatch", Config{Secret: k.secret, Audience: "roost"}, hs256(with(jwt.MapClaims{"aud": "api"})), hub.Identity{}, ErrAudience},
		{"audience missing", Config{Secret: k.secret, Audience: "roost"}, good, hub.Identity{}, ErrAudience},
		{"audience ignored when not configured", hs, hs256(with(jwt.MapClaims{"aud": "api"})), hub.Identity{User: "u1", ExpiresAt: exp}, nil},
		{"issuer match", Config{Secret: k.secret, Issuer: "idp"}, hs256(with(jwt.MapClaims{"iss": "idp"})), hub.Identity{User: "u1", ExpiresAt: exp}, nil},
		{"issuer mismatch", Config{Secret: k.secret, Issuer: "idp"}, hs256(with(jwt.MapClaims{"iss": "evil"})), hub.Identity{}, ErrIssuer},
		{"issuer missing", Config{Secret: k.secret, Issuer: "idp"}, good, hub.Identity{}, ErrIssuer},

		{"channels list", hs, hs256(with(jwt.MapClaims{"channels": []string{"$a", "*"}})), hub.Identity{User: "u1", Channels: []string{"$a", "*"}, ExpiresAt: exp}, nil},
		{"channels empty list", hs, hs256(with(jwt.MapClaims{"channels": []string{}})), hub.Identity{User: "u1", ExpiresAt: exp}, nil},
		{"channels null", hs, hs256(with(jwt.MapClaims{"channels": []string(nil)})), hub.Identity{User: "u1", ExpiresAt: exp}, nil},
		{"channels a string", hs, hs256(with(jwt.MapClaims{"channels": "$a"})), hub.Identity{}, ErrChannelsClaim},
		{"channels numbers", hs, hs256(with(jwt.MapClaims{"channels": []int{1, 2}})), hub.Identity{}, ErrChannelsClaim},
		{"channels object", hs, hs256(with(jwt.MapClaims{"channels": map[string]bool{"$a": true}})), hub.Identity{}, ErrChannelsClaim},
		{"channels empty name", hs, hs256(with(jwt.MapClaims{"channels": []string{"$a", ""}})), hub.Identity{}, ErrChannelsClaim},
		{"bad channels but bad signature", hs, sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), with(jwt.MapClaims{"channels": 7}), nil), hub.Identity{}, ErrSignature},

		{"empty", hs, "", hub.Identity{}, ErrTokenMissing},
		{"one segment", hs, "abc", hub.Identity{}, ErrTokenMalformed},
		{"bad base64", hs, "a.b.c", hub.Identity{}, ErrTokenMalformed},
		{"non-canonical base64 signature", hs, good[:len(good)-1] + nonCanonical(good[len(good)-1]), hub.Identity{}, ErrTokenMalformed},
		{"too large", hs, strings.Repeat("a", MaxTokenBytes+1), hub.Identity{}, ErrTokenTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := verifier(t, tc.cfg)
			id, err := v.Verify(tc.token)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Verify error = %v, want %v", err, tc.wantErr)
				}
				var he *hub.Error
				if !errors.As(err, &he) || he.Code != 401 {
					t.Fatalf("Verify error = %#v, want a *hub.Error with code 401", err)
				}
				if len(tc.token) > 8 && strings.Contains(err.Error(), tc.token) {
					t.Fatalf("error %q echoes the token", err)
				}
				if id.User != "" {
					t.Fatalf("refused token still gave identity %+v", id)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.User != tc.want.User || !slices.Equal(id.Channels, tc.want.Channels) || !id.ExpiresAt.Equal(tc.want.ExpiresAt) {
				t.Fatalf("Verify = %+v, want %+v", id, tc.want)
			}
		})
	}
}

// nonCanonical returns another base64url character that decodes to the same
// bytes as the final character c of an unpadded segment when the trailing
// bits are ignored: only the last character's low bits differ.
func nonCanonical(c byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return string(alphabet[i^1])
}

func TestVerifyClockDefault(t *testing.T) {
	// Without Config.Now the verifier uses the real clock.
	k := keys(t)
	v, err := New(Config{Secret: k.secret})
	if err != nil {
		t.Fatal(err)
	}
	past := sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(-time.Hour).Unix()}, nil)
	if _, err := v.Verify(past); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("Verify(expired by the real clock) = %v, want %v", err, ErrTokenExpired)
	}
	future := sign(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Hour).Unix()}, nil)
	if _, err := v.Verify(future); err != nil {
		t.Fatalf("Verify(valid by the real clock): %v", err)
	}
}

func TestNew(t *testing.T) {
	k := keys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub := k.ed.Public().(ed25519.PublicKey)
	tests := []struct {
		name    string
		cfg     Config
		wantErr error
		algs    []string
	}{
		{"secret", Config{Secret: k.secret}, nil, []string{"HS256", "HS384", "HS512"}},
		{"RSA", Config{PublicKey: &k.rsa.PublicKey}, nil, []string{"RS256", "RS384", "RS512"}},
		{"EC P-256", Config{PublicKey: &k.ec.PublicKey}, nil, []string{"ES256"}},
		{"Ed25519", Config{PublicKey: edPub}, nil, []string{"EdDSA"}},
		{"Ed25519 pointer", Config{PublicKey: &edPub}, nil, []string{"EdDSA"}},
		{"no key", Config{}, ErrNoKey, nil},
		{"empty secret", Config{Secret: []byte{}}, ErrNoKey, nil},
		{"both", Config{Secret: k.secret, PublicKey: &k.ec.PublicKey}, ErrTwoKeys, nil},
		{"short secret", Config{Secret: []byte("secret")}, ErrShortSecret, nil},
		{"RSA 1024", Config{PublicKey: &small.PublicKey}, ErrUnsupportedKey, nil},
		{"EC P-384", Config{PublicKey: &p384.PublicKey}, ErrUnsupportedKey, nil},
		{"RSA private key", Config{PublicKey: k.rsa}, ErrUnsupportedKey, nil},
		{"short Ed25519", Config{PublicKey: edPub[:16]}, ErrUnsupportedKey, nil},
		{"nil RSA pointer", Config{PublicKey: (*rsa.PublicKey)(nil)}, ErrUnsupportedKey, nil},
		{"a string", Config{PublicKey: "key"}, ErrUnsupportedKey, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(tc.cfg)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("New error = %v, want %v", err, tc.wantErr)
			}
			if err == nil && !slices.Equal(v.Algorithms(), tc.algs) {
				t.Fatalf("Algorithms = %v, want %v", v.Algorithms(), tc.algs)
			}
		})
	}
}

func TestNewCopiesSecret(t *testing.T) {
	k := keys(t)
	secret := slices.Clone(k.secret)
	v := verifier(t, Config{Secret: secret})
	clear(secret)
	if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, k.secret, claimsFor("u1"), nil)); err != nil {
		t.Fatalf("Verify after the caller reused its secret slice: %v", err)
	}
}
