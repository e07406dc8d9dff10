package auth

import (
	"crypto"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roost-rt/roost/hub"
)

// DefaultLeeway is the clock skew allowed on "exp" and "nbf" when
// Config.Leeway is zero. It covers clocks that NTP keeps within a few
// seconds of each other without keeping an expired token alive for long.
const DefaultLeeway = 10 * time.Second

// MaxTokenBytes is the longest token Verify looks at. Real tokens are a few
// hundred bytes; the bound keeps a hostile client from making the server
// base64-decode and JSON-parse megabytes per attempt.
const MaxTokenBytes = 8 << 10

// MinSecretBytes is the shortest HMAC secret New accepts: RFC 7518 section
// 3.2 requires a key at least as long as the hash output, 32 bytes for HS256.
const MinSecretBytes = 32

// Config chooses the key a Verifier checks signatures with and the claims it
// requires. Exactly one of Secret and PublicKey must be set.
type Config struct {
	// Secret is the shared HMAC key; tokens must use HS256, HS384 or HS512.
	// It must be at least MinSecretBytes long.
	Secret []byte
	// PublicKey verifies asymmetric signatures; tokens must use the
	// algorithms of its family: *rsa.PublicKey (at least 2048 bits) accepts
	// RS256, RS384 and RS512; *ecdsa.PublicKey on P-256 accepts ES256;
	// ed25519.PublicKey accepts EdDSA. LoadPublicKey reads one from PEM.
	PublicKey crypto.PublicKey
	// Audience, when not empty, must appear in the token's "aud" claim.
	Audience string
	// Issuer, when not empty, must equal the token's "iss" claim.
	Issuer string
	// Leeway is the clock skew allowed when checking "exp" and "nbf". Zero
	// means DefaultLeeway; negative means none.
	Leeway time.Duration
	// Now returns the current time, for tests. Nil means time.Now.
	Now func() time.Time
}

// Configuration errors returned by New and LoadPublicKey.
var (
	// ErrNoKey is returned when neither Config.Secret nor Config.PublicKey is set.
	ErrNoKey = errors.New("roost: auth: no key configured (set a secret or a public key)")
	// ErrTwoKeys is returned when both Config.Secret and Config.PublicKey are set.
	ErrTwoKeys = errors.New("roost: auth: both a secret and a public key configured; choose one")
	// ErrShortSecret is returned for an HMAC secret under MinSecretBytes.
	ErrShortSecret = errors.New("roost: auth: secret shorter than 32 bytes (RFC 7518 section 3.2)")
	// ErrUnsupportedKey is returned for a public key that is not RSA of at
	// least 2048 bits, EC on P-256, or Ed25519.
	ErrUnsupportedKey = errors.New("roost: auth: unsupported public key (want RSA >= 2048 bits, EC P-256 or Ed25519)")
	// ErrNoPEM is returned when the PEM input holds no public key or
	// certificate block.
	ErrNoPEM = errors.New("roost: auth: no PEM public key or certificate found")
	// ErrPrivateKey is returned when the PEM input holds a private key: the
	// server needs only the public half, and should not be given the other.
	ErrPrivateKey = errors.New("roost: auth: PEM holds a private key; configure the public key")
)

// Refusals returned by Verify, Authenticate and Refresh. Each is a
// *hub.Error with code 401 whose message is safe to show to the client;
// compare with errors.Is.
var (
	ErrTokenMissing     = &hub.Error{Code: 401, Message: "token missing"}
	ErrTokenTwice       = &hub.Error{Code: 401, Message: "token given twice"}
	ErrTokenTooLarge    = &hub.Error{Code: 401, Message: "token too large"}
	ErrTokenMalformed   = &hub.Error{Code: 401, Message: "token malformed"}
	ErrAlgorithm        = &hub.Error{Code: 401, Message: "token algorithm not allowed"}
	ErrCritical         = &hub.Error{Code: 401, Message: "token has unsupported critical headers"}
	ErrSignature        = &hub.Error{Code: 401, Message: "signature invalid"}
	ErrTokenExpired     = &hub.Error{Code: 401, Message: "token expired"}
	ErrTokenNotYetValid = &hub.Error{Code: 401, Message: "token not valid yet"}
	ErrAudience         = &hub.Error{Code: 401, Message: "token audience mismatch"}
	ErrIssuer           = &hub.Error{Code: 401, Message: "token issuer mismatch"}
	ErrNoSubject        = &hub.Error{Code: 401, Message: "token has no subject"}
	ErrChannelsClaim    = &hub.Error{Code: 401, Message: "token channels claim invalid"}
	ErrTokenInvalid     = &hub.Error{Code: 401, Message: "token invalid"}
)

// errCrit marks the keyfunc refusal of a "crit" header so Verify can tell
// it from other unverifiable tokens.
var errCrit = errors.New("roost: auth: crit header")

// Verifier checks tokens against one key. It is safe for concurrent use.
type Verifier struct {
	key      any      // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	methods  []string // the "alg" values of key's family
	audience string
	issuer   string
	parser   *jwt.Parser
}

// New returns a Verifier for cfg, or an error naming what is wrong with the
// key.
func New(cfg Config) (*Verifier, error) {
	v := &Verifier{audience: cfg.Audience, issuer: cfg.Issuer}
	switch {
	case len(cfg.Secret) > 0 && cfg.PublicKey != nil:
		return nil, ErrTwoKeys
	case len(cfg.Secret) > 0:
		if len(cfg.Secret) < MinSecretBytes {
			return nil, ErrShortSecret
		}
		v.key = slices.Clone(cfg.Secret) // the caller may reuse its slice
		v.methods = []string{"HS256", "HS384", "HS512"}
	case cfg.PublicKey != nil:
		key, methods, err := checkPublicKey(cfg.PublicKey)
		if err != nil {
			return nil, err
		}
		v.key, v.methods = key, methods
	default:
		return nil, ErrNoKey
	}

	leeway := cfg.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	} else if leeway < 0 {
		leeway = 0
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithLeeway(leeway),
		jwt.WithStrictDecoding(), // one encoding per signature: no malleable tokens
	}
	if cfg.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(cfg.Now))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Algorithms returns the "alg" values v accepts.
func (v *Verifier) Algorithms() []string { return slices.Clone(v.methods) }

// claims are the claims roost reads; unknown claims are ignored.
type claims struct {
	jwt.RegisteredClaims
	Channels channelsClaim `json:"channels"`
}

// channelsClaim decodes the "channels" claim without ever failing the JSON
// decode, so that a badly shaped claim is reported (as ErrChannelsClaim)
// only after the signature proved the token genuine.
type channelsClaim struct {
	list    []string
	invalid bool
}

func (c *channelsClaim) UnmarshalJSON(b []byte) error {
	c.list, c.invalid = nil, false
	if string(b) == "null" {
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil || slices.Contains(list, "") {
		c.invalid = true
		return nil
	}
	if len(list) > 0 {
		c.list = list
	}
	return nil
}

// keyFunc hands the configured key to the parser. The parser has already
// refused any "alg" outside v.methods (jwt.WithValidMethods). RFC 7515
// section 4.1.11 requires refusing a "crit" header whose extensions are not
// understood; roost understands none.
func (v *Verifier) keyFunc(t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, errCrit
	}
	return v.key, nil
}

// Verify checks token's signature and claims and returns the identity it
// grants: "sub" as User, "channels" as Channels, "exp" as ExpiresAt (zero
// when the token has no "exp"). Every refusal is one of the *hub.Error
// values above, with code 401.
func (v *Verifier) Verify(token string) (hub.Identity, error) {
	if token == "" {
		return hub.Identity{}, ErrTokenMissing
	}
	if len(token) > MaxTokenBytes {
		return hub.Identity{}, ErrTokenTooLarge
	}
	var c claims
	t, err := v.parser.ParseWithClaims(token, &c, v.keyFunc)
	if err != nil {
		return hub.Identity{}, v.refusal(t, &c, err)
	}
	if c.Subject == "" {
		return hub.Identity{}, ErrNoSubject
	}
	if c.Channels.invalid {
		return hub.Identity{}, ErrChannelsClaim
	}
	id := hub.Identity{User: c.Subject, Channels: c.Channels.list}
	if c.ExpiresAt != nil {
		id.ExpiresAt = c.ExpiresAt.Time
	}
	return id, nil
}

// refusal maps a jwt error to the precise, token-free *hub.Error the client
// sees. The order matters: a token is malformed before its algorithm is
// looked at, and its claims are judged only once its signature is good.
func (v *Verifier) refusal(t *jwt.Token, c *claims, err error) *hub.Error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ErrTokenMalformed
	case t != nil && !v.allowed(t):
		return ErrAlgorithm
	case errors.Is(err, errCrit):
		return ErrCritical
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ErrSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrTokenExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return ErrTokenNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidAudience),
		v.audience != "" && len(c.Audience) == 0: // jwt reports a missing "aud" as a missing claim
		return ErrAudience
	case errors.Is(err, jwt.ErrTokenInvalidIssuer),
		v.issuer != "" && c.Issuer == "":
		return ErrIssuer
	}
	return ErrTokenInvalid
}

// allowed reports whether t's header names an algorithm of v's family.
func (v *Verifier) allowed(t *jwt.Token) bool {
	alg, _ := t.Header["alg"].(string)
	return slices.Contains(v.methods, alg)
}
