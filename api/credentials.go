package api

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fcd-dev/fcd/internal/fsutil"
)

// CredentialsFile is the name of the file in fcd's data dir that holds the
// admin access key and the endpoint to reach fcd at.
const CredentialsFile = "credentials.json"

// Credentials is an access key pair and the endpoint it is good for, the
// contents of credentials.json.
type Credentials struct {
	AccessKeyID     string `json:"accessKeyId"`
	AccessKeySecret string `json:"accessKeySecret"`
	Endpoint        string `json:"endpoint"`
	// Registry is the address of fcd's embedded registry, when it runs
	// one; the same key pair pushes to it.
	Registry string `json:"registry,omitempty"`
}

// NewCredentials returns a fresh random key pair for endpoint.
func NewCredentials(endpoint string) (Credentials, error) {
	id := make([]byte, 12)
	secret := make([]byte, 24)
	if _, err := rand.Read(id); err != nil {
		return Credentials{}, err
	}
	if _, err := rand.Read(secret); err != nil {
		return Credentials{}, err
	}
	return Credentials{
		AccessKeyID:     "FCD" + hex.EncodeToString(id),
		AccessKeySecret: base64.RawURLEncoding.EncodeToString(secret),
		Endpoint:        endpoint,
	}, nil
}

// LoadCredentials reads a credentials file.
func LoadCredentials(path string) (Credentials, error) {
	var c Credentials
	data, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("parse %s: %w", path, err)
	}
	if c.AccessKeyID == "" || c.AccessKeySecret == "" {
		return c, fmt.Errorf("%s: accessKeyId and accessKeySecret are required", path)
	}
	return c, nil
}

// SaveCredentials writes c to path with mode 0600, atomically: a reader sees
// the old file or the new one, never a part.
func SaveCredentials(path string, c Credentials) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, append(data, '\n'), 0o600)
}

// DefaultDataDir is fcd's data dir when none is given: /var/lib/fcd for
// root, else ~/.fcd. fcctl looks for credentials.json there too.
func DefaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/fcd"
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".fcd")
	}
	return ".fcd"
}
