package store

import (
	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/internal/boltschema"
)

// migrations build the v1 buckets, in order, each in its own transaction.
// Append only; never edit one that has shipped.
var migrations = []boltschema.Migration{
	{Version: 1, Name: "create v1 buckets", Migrate: func(tx *bolt.Tx, root *bolt.Bucket) error {
		for _, name := range [][]byte{bucketFunctions, bucketProvision} {
			if _, err := root.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	}},
	{Version: 2, Name: "add triggers", Migrate: func(tx *bolt.Tx, root *bolt.Bucket) error {
		_, err := root.CreateBucketIfNotExists(bucketTriggers)
		return err
	}},
	{Version: 3, Name: "add versions, aliases, concurrency, invocation restrictions and qualified provision configs", Migrate: func(tx *bolt.Tx, root *bolt.Bucket) error {
		for _, name := range [][]byte{bucketVersions, bucketAliases, bucketConcurrency, bucketRestrictions, bucketProvisionQ} {
			if _, err := root.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	}},
	{Version: 4, Name: "add custom domains", Migrate: func(tx *bolt.Tx, root *bolt.Bucket) error {
		_, err := root.CreateBucketIfNotExists(bucketDomains)
		return err
	}},
}

var schema = boltschema.Schema{Root: bucketRoot, Migrations: migrations}

// SchemaVersion is the version the newest migration brings a store to.
func SchemaVersion() uint64 { return schema.Latest() }

func migrate(db *bolt.DB) error { return schema.Migrate(db, schema.Latest()) }

func schemaVersion(tx *bolt.Tx) uint64 { return schema.Version(tx) }
