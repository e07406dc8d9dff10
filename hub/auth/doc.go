// Package auth verifies JSON Web Tokens (RFC 7519) for a roost hub and
// turns them into the hooks hub.Config takes: Authenticate for the upgrade,
// Refresh for {"op":"refresh"}, and ClientPublishPrefixes for client
// publishes.
//
// A Verifier accepts exactly one key family, chosen by its Config: an HMAC
// secret accepts HS256, HS384 and HS512; an RSA public key RS256, RS384 and
// RS512; an EC P-256 key ES256; an Ed25519 key EdDSA. Every other "alg",
// "none" included, is refused before any key is used, which is what defeats
// the algorithm-confusion attack (an HS256 token MACed with the server's
// public key bytes). Signatures are checked with github.com/golang-jwt/jwt/v5.
//
// Claims: "sub" is the user id and must be present; "exp" and "nbf" are
// honoured with Config.Leeway of clock skew; "aud" and "iss" are required
// when Config.Audience or Config.Issuer is set; "iat" is not checked; the
// optional "channels" claim, an array of strings, lists the private ('$')
// channels the user may join ("*" for all). A "channels" claim of any other
// shape refuses the token rather than being ignored, so an issuer bug shows
// up at once instead of as missing permissions.
//
// Refusals are *hub.Error values with code 401 and a short message naming
// the reason ("token expired", "signature invalid", ...). They never contain
// the token or library internals, so they are safe to send to the client.
//
// A service wires it like this:
//
//	key, err := auth.LoadPublicKey(pemBytes)
//	v, err := auth.New(auth.Config{PublicKey: key, Audience: "roost"})
//	h, err := hub.New(hub.Config{
//		Authenticate:     v.Authenticate(),
//		Refresh:          v.Refresh(),
//		AuthorizePublish: auth.ClientPublishPrefixes([]string{"chat:"}),
//	})
package auth
