package boltschema

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestMigrate(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ran []uint64
	boom := errors.New("boom")
	fail := false
	s := Schema{Root: []byte("x/v1"), Migrations: []Migration{
		{1, "a", func(tx *bolt.Tx, root *bolt.Bucket) error {
			ran = append(ran, 1)
			_, err := root.CreateBucket([]byte("a"))
			return err
		}},
		{2, "b", func(tx *bolt.Tx, root *bolt.Bucket) error {
			if fail {
				return boom
			}
			ran = append(ran, 2)
			_, err := root.CreateBucket([]byte("b"))
			return err
		}},
	}}
	version := func() (v uint64) {
		db.View(func(tx *bolt.Tx) error { v = s.Version(tx); return nil })
		return v
	}
	if err := s.Migrate(db, 1); err != nil || version() != 1 {
		t.Fatalf("to 1: got version %d, %v", version(), err)
	}
	fail = true
	if err := s.Migrate(db, s.Latest()); !errors.Is(err, boom) {
		t.Fatalf("failing migration: got %v, want boom", err)
	}
	if version() != 1 {
		t.Fatalf("a failed migration moved the version to %d", version())
	}
	fail = false
	if err := s.Migrate(db, s.Latest()); err != nil || version() != 2 {
		t.Fatalf("to 2: got version %d, %v", version(), err)
	}
	if err := s.Migrate(db, s.Latest()); err != nil || len(ran) != 2 {
		t.Fatalf("rerun: ran %v, %v; want each migration once", ran, err)
	}
	db.View(func(tx *bolt.Tx) error { s.Bucket(tx, []byte("b")); return nil })
	db.Update(func(tx *bolt.Tx) error { return s.SetVersion(tx, 3) })
	if err := s.Migrate(db, s.Latest()); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("newer schema: got %v, want a refusal", err)
	}
}
