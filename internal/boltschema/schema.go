// Package boltschema versions a bbolt root bucket: it records the schema
// version in <root>/meta/version and runs ordered migrations, each in its
// own transaction, so a crash leaves the last completed version. The
// store, iam and billing packages keep their buckets in one file, each
// under its own versioned root.
package boltschema

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketMeta = []byte("meta")
	keyVersion = []byte("version")
)

// Migration brings a schema from Version-1 to Version. Migrate runs with
// the root and meta buckets in place.
type Migration struct {
	Version uint64
	Name    string
	Migrate func(tx *bolt.Tx, root *bolt.Bucket) error
}

// Schema is a versioned root bucket and the migrations that build it.
// Migrations are appended, never edited once shipped; their versions are
// 1, 2, 3, ...
type Schema struct {
	Root       []byte
	Migrations []Migration
}

// Latest is the version the last migration brings the schema to.
func (s Schema) Latest() uint64 { return s.Migrations[len(s.Migrations)-1].Version }

// Version returns the recorded version, 0 when the root does not exist.
func (s Schema) Version(tx *bolt.Tx) uint64 {
	root := tx.Bucket(s.Root)
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

// Migrate runs every migration newer than the recorded version, up to and
// including to. A file whose schema is newer than Latest is refused: this
// binary would not understand it.
func (s Schema) Migrate(db *bolt.DB, to uint64) error {
	var current uint64
	db.View(func(tx *bolt.Tx) error { current = s.Version(tx); return nil })
	if current > s.Latest() {
		return fmt.Errorf("%s schema version %d is newer than this fcd understands (%d)", s.Root, current, s.Latest())
	}
	for _, m := range s.Migrations {
		if m.Version > to {
			break
		}
		err := db.Update(func(tx *bolt.Tx) error {
			if s.Version(tx) >= m.Version {
				return nil
			}
			root, err := tx.CreateBucketIfNotExists(s.Root)
			if err != nil {
				return err
			}
			meta, err := root.CreateBucketIfNotExists(bucketMeta)
			if err != nil {
				return err
			}
			if err := m.Migrate(tx, root); err != nil {
				return err
			}
			var v [8]byte
			binary.BigEndian.PutUint64(v[:], m.Version)
			return meta.Put(keyVersion, v[:])
		})
		if err != nil {
			return fmt.Errorf("%s migration %d (%s): %w", s.Root, m.Version, m.Name, err)
		}
	}
	return nil
}

// Bucket returns a child of the root. Migrations create every child, so a
// missing one is a programming error and panics inside the transaction.
func (s Schema) Bucket(tx *bolt.Tx, name []byte) *bolt.Bucket {
	root := tx.Bucket(s.Root)
	if root == nil || root.Bucket(name) == nil {
		panic(fmt.Sprintf("bucket %s/%s missing: migrations did not run", s.Root, name))
	}
	return root.Bucket(name)
}

// SetVersion records version, for tests of what a newer binary left.
func (s Schema) SetVersion(tx *bolt.Tx, version uint64) error {
	root, err := tx.CreateBucketIfNotExists(s.Root)
	if err != nil {
		return err
	}
	meta, err := root.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], version)
	return meta.Put(keyVersion, v[:])
}
