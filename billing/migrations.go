package billing

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/internal/boltschema"
)

var (
	bucketRoot      = []byte("billing/v1")
	bucketMeta      = []byte("meta")
	bucketRecords   = []byte("records")
	bucketFunctions = []byte("functions")
)

// migrations build the billing/v1 buckets, in order, each in its own
// transaction. Append only; never edit one that has shipped.
var migrations = []boltschema.Migration{
	{Version: 1, Name: "create records bucket", Migrate: func(tx *bolt.Tx, root *bolt.Bucket) error {
		_, err := root.CreateBucketIfNotExists(bucketRecords)
		return err
	}},
	{Version: 2, Name: "index records by function", Migrate: func(tx *bolt.Tx, root *bolt.Bucket) error {
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

var schema = boltschema.Schema{Root: bucketRoot, Migrations: migrations}

// SchemaVersion is the version of the billing/v1 buckets after Open.
func SchemaVersion() uint64 { return schema.Latest() }

// migrate brings the schema up to version to.
func migrate(db *bolt.DB, to uint64) error { return schema.Migrate(db, to) }

func schemaVersion(tx *bolt.Tx) uint64 { return schema.Version(tx) }

// bucket returns a child of billing/v1.
func bucket(tx *bolt.Tx, name []byte) *bolt.Bucket { return schema.Bucket(tx, name) }

// indexRecord adds id under functions/<function>/.
func indexRecord(fns *bolt.Bucket, function string, id []byte) error {
	fb, err := fns.CreateBucketIfNotExists([]byte(function))
	if err != nil {
		return err
	}
	return fb.Put(id, nil)
}
