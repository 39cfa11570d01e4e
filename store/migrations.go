package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// migration brings the schema from version-1 to version.
type migration struct {
	version uint64
	name    string
	migrate func(tx *bolt.Tx) error
}

// migrations run in order, each in the same transaction that records its
// version. Append only; never edit one that has shipped.
var migrations = []migration{
	{1, "create v1 buckets", func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketRoot)
		if err != nil {
			return err
		}
		for _, name := range [][]byte{bucketMeta, bucketFunctions, bucketProvision} {
			if _, err := root.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	}},
	{2, "add triggers", func(tx *bolt.Tx) error {
		_, err := tx.Bucket(bucketRoot).CreateBucketIfNotExists(bucketTriggers)
		return err
	}},
}

// SchemaVersion is the version the newest migration brings a store to.
func SchemaVersion() uint64 { return migrations[len(migrations)-1].version }

func migrate(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		current := schemaVersion(tx)
		if current > SchemaVersion() {
			return fmt.Errorf("store schema version %d is newer than this fcd understands (%d)", current, SchemaVersion())
		}
		for _, m := range migrations {
			if m.version <= current {
				continue
			}
			if err := m.migrate(tx); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
			}
			var v [8]byte
			binary.BigEndian.PutUint64(v[:], m.version)
			if err := tx.Bucket(bucketRoot).Bucket(bucketMeta).Put(keyVersion, v[:]); err != nil {
				return err
			}
		}
		return nil
	})
}

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
