package iam

import (
	"crypto/rand"

	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/internal/boltschema"
)

var (
	bucketRoot     = []byte("iam/v1")
	bucketMeta     = []byte("meta")
	bucketRoles    = []byte("roles")
	keySessionKey  = []byte("session-key")
	sessionKeySize = 32
)

// migrations build the iam/v1 buckets, in order, each in its own
// transaction. Append only; never edit one that has shipped.
var migrations = []boltschema.Migration{
	{Version: 1, Name: "create roles bucket and session key", Migrate: func(tx *bolt.Tx, root *bolt.Bucket) error {
		if _, err := root.CreateBucketIfNotExists(bucketRoles); err != nil {
			return err
		}
		meta := root.Bucket(bucketMeta)
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

var schema = boltschema.Schema{Root: bucketRoot, Migrations: migrations}

// SchemaVersion is the version of the iam/v1 buckets after Open.
func SchemaVersion() uint64 { return schema.Latest() }

// migrate brings the schema up to date.
func migrate(db *bolt.DB) error { return schema.Migrate(db, schema.Latest()) }

// schemaVersion returns the recorded version, 0 for a file without iam/v1.
func schemaVersion(tx *bolt.Tx) uint64 { return schema.Version(tx) }

// bucket returns a child of iam/v1.
func bucket(tx *bolt.Tx, name []byte) *bolt.Bucket { return schema.Bucket(tx, name) }
