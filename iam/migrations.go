package iam

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketRoot     = []byte("iam/v1")
	bucketMeta     = []byte("meta")
	bucketRoles    = []byte("roles")
	keyVersion     = []byte("version")
	keySessionKey  = []byte("session-key")
	sessionKeySize = 32
)

// migration brings the iam/v1 schema from version-1 to version.
type migration struct {
	version uint64
	name    string
	migrate func(tx *bolt.Tx) error
}

// migrations run in order, each in the transaction that records its
// version. Append only; never edit one that has shipped.
var migrations = []migration{
	{1, "create buckets and session key", func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketRoot)
		if err != nil {
			return err
		}
		meta, err := root.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if _, err := root.CreateBucketIfNotExists(bucketRoles); err != nil {
			return err
		}
		if meta.Get(keySessionKey) != nil {
			return nil
		}
		key := make([]byte, sessionKeySize)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		return meta.Put(keySessionKey, key)
	}},
}

// SchemaVersion is the version of the iam/v1 buckets after Open.
func SchemaVersion() uint64 { return migrations[len(migrations)-1].version }

// migrate runs every migration newer than the recorded version, each in its
// own transaction, so a crash leaves the last completed version.
func migrate(db *bolt.DB) error {
	for _, m := range migrations {
		err := db.Update(func(tx *bolt.Tx) error {
			if schemaVersion(tx) >= m.version {
				return nil
			}
			if err := m.migrate(tx); err != nil {
				return err
			}
			var v [8]byte
			binary.BigEndian.PutUint64(v[:], m.version)
			return tx.Bucket(bucketRoot).Bucket(bucketMeta).Put(keyVersion, v[:])
		})
		if err != nil {
			return fmt.Errorf("iam migration %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

// schemaVersion returns the recorded version, 0 for a file without iam/v1.
func schemaVersion(tx *bolt.Tx) uint64 {
	root := tx.Bucket(bucketRoot)
	if root == nil {
		return 0
	}
	meta := root.Bucket(bucketMeta)
	if meta == nil {
		return 0
	}
	v := meta.Get(keyVersion)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// bucket returns a child of iam/v1. Migrations create every child, so a
// missing one is a programming error and panics inside the transaction.
func bucket(tx *bolt.Tx, name []byte) *bolt.Bucket {
	b := tx.Bucket(bucketRoot).Bucket(name)
	if b == nil {
		panic("iam: bucket iam/v1/" + string(name) + " missing; migrations did not run")
	}
	return b
}
