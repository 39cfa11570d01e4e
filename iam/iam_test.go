package iam

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openDB opens a fresh bbolt file in t's temp dir, closed at cleanup.
func openDB(t *testing.T) *bolt.DB {
	t.Helper()
	return openDBAt(t, filepath.Join(t.TempDir(), "fcd.db"))
}

func openDBAt(t *testing.T, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("open bolt: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openDBForFuzz is openDB for a testing.F, which has no per-input TempDir.
func openDBForFuzz(f *testing.F) *bolt.DB {
	f.Helper()
	db, err := bolt.Open(filepath.Join(f.TempDir(), "fcd.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	return db
}

func openStore(t *testing.T, db *bolt.DB, opts Options) *Store {
	t.Helper()
	s, err := Open(db, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func mustCreateRole(t *testing.T, s *Store, name string, repos ...string) Role {
	t.Helper()
	r, err := s.CreateRole(context.Background(), Role{Name: name, Repositories: repos})
	if err != nil {
		t.Fatalf("CreateRole(%s): %v", name, err)
	}
	return r
}
