package async

import (
	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/internal/boltschema"
)

var (
	bucketRoot    = []byte("async/v1")
	bucketConfigs = []byte("configs")
	bucketEvents  = []byte("events")
	bucketPending = []byte("pending")
)

// migrations build the async/v1 buckets, in order, each in its own
// transaction. Append only; never edit one that has shipped.
var migrations = []boltschema.Migration{
	{Version: 1, Name: "create configs, events and pending", Migrate: func(tx *bolt.Tx, root *bolt.Bucket) error {
		for _, name := range [][]byte{bucketConfigs, bucketEvents, bucketPending} {
			if _, err := root.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	}},
}

var schema = boltschema.Schema{Root: bucketRoot, Migrations: migrations}

func bucket(tx *bolt.Tx, name []byte) *bolt.Bucket { return schema.Bucket(tx, name) }

// eventKey is an event's key in events and pending.
func eventKey(function, id string) []byte { return []byte(function + "/" + id) }
