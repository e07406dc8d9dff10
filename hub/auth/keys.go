package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// minRSABits is the smallest RSA modulus accepted; NIST SP 800-131A
// disallows shorter keys for signatures.
const minRSABits = 2048

// LoadPublicKey reads the first public key in PEM input: a "PUBLIC KEY"
// block (PKIX, as written by `openssl pkey -pubout`), an "RSA PUBLIC KEY"
// block (PKCS #1), or a "CERTIFICATE" whose key is used (the certificate's
// validity and chain are not checked: the key is trusted because the
// operator configured it). Blocks of other types, such as "EC PARAMETERS",
// are skipped; a private key block is refused with ErrPrivateKey. The key
// must be RSA of at least 2048 bits, EC on P-256, or Ed25519.
func LoadPublicKey(pemBytes []byte) (crypto.PublicKey, error) {
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, ErrNoPEM
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = cert.PublicKey
			}
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "OPENSSH PRIVATE KEY":
			return nil, ErrPrivateKey
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("roost: auth: parse PEM %q block: %w", block.Type, err)
		}
		pub, _, err := checkPublicKey(key)
		if err != nil {
			return nil, err
		}
		return pub, nil
	}
}

// checkPublicKey returns key in the form the jwt signing methods expect and
// the algorithms of its family, or ErrUnsupportedKey.
func checkPublicKey(key any) (any, []string, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil || k.N.BitLen() < minRSABits {
			return nil, nil, ErrUnsupportedKey
		}
		return k, []string{"RS256", "RS384", "RS512"}, nil
	case *ecdsa.PublicKey:
		// ES256 is the only ECDSA algorithm accepted: RFC 7518 section 3.4
		// ties each ES algorithm to one curve.
		if k == nil || k.Curve != elliptic.P256() {
			return nil, nil, ErrUnsupportedKey
		}
		return k, []string{"ES256"}, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, nil, ErrUnsupportedKey
		}
		return k, []string{"EdDSA"}, nil
	case *ed25519.PublicKey:
		if k == nil || len(*k) != ed25519.PublicKeySize {
			return nil, nil, ErrUnsupportedKey
		}
		return *k, []string{"EdDSA"}, nil
	}
	return nil, nil, ErrUnsupportedKey
}
