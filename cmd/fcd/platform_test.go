package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRegistryLogins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logins.json")
	os.WriteFile(path, []byte(`{"registry.example:5000": {"username": "u", "password": "p"}}`), 0o600)
	logins, err := loadRegistryLogins(path)
	if err != nil {
		t.Fatal(err)
	}
	p := &platform{logins: logins}
	creds := p.registryCredentials("")
	tests := []struct{ host, user, pass string }{
		{"registry.example:5000", "u", "p"},
		{"elsewhere:5000", "", ""},
	}
	for _, tc := range tests {
		u, pw, err := creds(tc.host)
		if err != nil || u != tc.user || pw != tc.pass {
			t.Errorf("%s: got %q/%q (%v), want %q/%q", tc.host, u, pw, err, tc.user, tc.pass)
		}
	}
	os.WriteFile(path, []byte(`["not", "a", "map"]`), 0o600)
	if _, err := loadRegistryLogins(path); err == nil {
		t.Error("a malformed file was accepted")
	}
}
