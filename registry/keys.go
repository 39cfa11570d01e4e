package registry

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/go-jose/go-jose/v4"

	"github.com/fcd-dev/fcd/internal/fsutil"
)

const (
	keyFile  = "token-signing-key.pem"
	jwksFile = "token-jwks.json"
)

// signingKey is the token endpoint's key and its JWK key id.
type signingKey struct {
	priv *ecdsa.PrivateKey
	kid  string
}

// loadOrCreateKey reads dir/token-signing-key.pem, creating it on first
// use, and (re)writes dir/token-jwks.json with its public key.
func loadOrCreateKey(dir string) (signingKey, error) {
	path := filepath.Join(dir, keyFile)
	priv, err := readKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		priv, err = createKey(path)
	}
	if err != nil {
		return signingKey{}, err
	}
	jwk := jose.JSONWebKey{Key: &priv.PublicKey, Algorithm: string(jose.ES256), Use: "sig"}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return signingKey{}, fmt.Errorf("key thumbprint: %w", err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	data, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	if err != nil {
		return signingKey{}, err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, jwksFile), data, 0o644); err != nil {
		return signingKey{}, err
	}
	return signingKey{priv: priv, kid: jwk.KeyID}, nil
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: no PRIVATE KEY PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := k.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: not an EC P-256 key", path)
	}
	return priv, nil
}

func createKey(path string) (*ecdsa.PrivateKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := fsutil.WriteFileAtomic(path, data, 0o600); err != nil {
		return nil, err
	}
	return priv, nil
}
