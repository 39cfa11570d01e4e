package billing

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketRoot      = []byte("billing/v1")
	bucketMeta      = []byte("meta")
	bucketRecords   = []byte("records")
	bucketFunctions = []byte("functions")
	keyVersion      = []byte("version")
)

// migration brings the billing/v1 schema from version-1 to version.
type migration struct {
	version uint64
	name    string
	migrate func(tx *bolt.Tx) error
}

// migrations run in order, each in the transaction that records its
// version. Append only; never edit one that has shipped.
var migrations = []migration{
	{1, "create meta and records buckets", func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketRoot)
		if err != nil {
			return err
		}
		for _, name := range [][]byte{bucketMeta, bucketRecords} {
			if _, err := root.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	}},
	{2, "index records by function", func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketRoot)
		fns, err := root.CreateBucketIfNotExists(bucketFunctions)
		if err != nil {
			return err
		}
		return root.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("record %x: %w", k, err)
			}
			return indexRecord(fns, r.Function, k)
		})
	}},
}

// SchemaVersion is the version of the billing/v1 buckets after Open.
func SchemaVersion() uint64 { return migrations[len(migrations)-1].version }

// migrate runs every migration newer than the recorded version, each in
// its own transaction, up to and including version to.
func migrate(db *bolt.DB, to uint64) error {
	for _, m := range migrations {
		if m.version > to {
			break
		}
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
			return fmt.Errorf("billing migration %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
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

// bucket returns a child of billing/v1. Migrations create every child, so
// a missing one is a programming error and panics inside the transaction.
func bucket(tx *bolt.Tx, name []byte) *bolt.Bucket {
	b := tx.Bucket(bucketRoot).Bucket(name)
	if b == nil {
		panic("billing: bucket billing/v1/" + string(name) + " missing; migrations did not run")
	}
	return b
}

// indexRecord adds id under functions/<function>/.
func indexRecord(fns *bolt.Bucket, function string, id []byte) error {
	fb, err := fns.CreateBucketIfNotExists([]byte(function))
	if err != nil {
		return err
	}
	return fb.Put(id, nil)
}
