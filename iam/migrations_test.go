package iam

import (
	"bytes"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestMigration1 checks migration 1 on an empty file (buckets, version,
// session key) and that running it again keeps the key.
func TestMigration1(t *testing.T) {
	db := openDB(t)
	// Another package's root bucket must be left alone.
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("v1"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := migrate(db); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	var key1 []byte
	db.View(func(tx *bolt.Tx) error {
		if got := schemaVersion(tx); got != 1 {
			t.Errorf("schema version = %d, want 1", got)
		}
		if tx.Bucket(bucketRoot).Bucket(bucketRoles) == nil {
			t.Error("iam/v1/roles missing")
		}
		if tx.Bucket([]byte("v1")) == nil {
			t.Error("foreign bucket v1 removed")
		}
		key1 = append([]byte(nil), tx.Bucket(bucketRoot).Bucket(bucketMeta).Get(keySessionKey)...)
		return nil
	})
	if len(key1) != sessionKeySize {
		t.Fatalf("session key has %d bytes, want %d", len(key1), sessionKeySize)
	}
	if err := migrate(db); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	db.View(func(tx *bolt.Tx) error {
		if key2 := tx.Bucket(bucketRoot).Bucket(bucketMeta).Get(keySessionKey); !bytes.Equal(key1, key2) {
			t.Error("second migrate changed the session key")
		}
		return nil
	})
	if got, want := SchemaVersion(), uint64(len(migrations)); got != want {
		t.Errorf("SchemaVersion = %d, want %d", got, want)
	}
}
