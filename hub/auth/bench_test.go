package auth

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerify measures one full verification (decode, signature,
// claims) per algorithm family, as paid once per upgrade and per refresh.
func BenchmarkVerify(b *testing.B) {
	k := keys(b)
	claims := claimsFor("user-1234")
	claims["channels"] = []string{"$team-1", "$team-2"}
	claims["aud"] = "roost"
	cases := []struct {
		name  string
		cfg   Config
		token string
	}{
		{"HS256", Config{Secret: k.secret, Audience: "roost"}, sign(b, jwt.SigningMethodHS256, k.secret, claims, nil)},
		{"ES256", Config{PublicKey: &k.ec.PublicKey, Audience: "roost"}, sign(b, jwt.SigningMethodES256, k.ec, claims, nil)},
		{"RS256", Config{PublicKey: &k.rsa.PublicKey, Audience: "roost"}, sign(b, jwt.SigningMethodRS256, k.rsa, claims, nil)},
		{"EdDSA", Config{PublicKey: k.ed.Public(), Audience: "roost"}, sign(b, jwt.SigningMethodEdDSA, k.ed, claims, nil)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			v := verifier(b, c.cfg)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(c.token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
