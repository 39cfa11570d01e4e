package accel

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/internal/boltschema"
)

// Bucket schema, in the fcd bbolt file under its own versioned root:
//
//	accel/v1/
//	  meta/version      schema version (boltschema)
//	  jobs/<digest>     Job as JSON, by source manifest digest
//	  refs/<ref>        the digest the tag <ref> (repo:tag) last named
//	  repos/<repo>      Settings as JSON, by repository (host/path)
//	  indexes/<digest>  a serialized gzindex, by the layer digest it serves,
//	                    for registries fcd may not push to (since v2)

var (
	bucketRoot    = []byte("accel/v1")
	bucketJobs    = []byte("jobs")
	bucketRefs    = []byte("refs")
	bucketRepos   = []byte("repos")
	bucketIndexes = []byte("indexes")
)

// migrations build the accel/v1 buckets. Append only; never edit one that
// has shipped.
var migrations = []boltschema.Migration{
	{Version: 1, Name: "create jobs, refs and repos buckets", Migrate: func(tx *bolt.Tx, root *bolt.Bucket) error {
		for _, b := range [][]byte{bucketJobs, bucketRefs, bucketRepos} {
			if _, err := root.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}},
	{Version: 2, Name: "add indexes bucket", Migrate: func(tx *bolt.Tx, root *bolt.Bucket) error {
		_, err := root.CreateBucketIfNotExists(bucketIndexes)
		return err
	}},
}

var schema = boltschema.Schema{Root: bucketRoot, Migrations: migrations}

// SchemaVersion is the version of the accel/v1 buckets after Open.
func SchemaVersion() uint64 { return schema.Latest() }

// State is a conversion's state, as GetFunction reports it in
// accelerationInfo.status.
type State string

const (
	// StatePreparing: queued or converting; the original image is used.
	StatePreparing State = "Preparing"
	// StateReady: the accelerated image exists.
	StateReady State = "Ready"
	// StateFailed: the conversion failed; Job.Error says why. Accelerate
	// retries it.
	StateFailed State = "Failed"
)

// Job is one image digest's conversion.
type Job struct {
	// Digest is the source manifest's digest, the job's key.
	Digest string `json:"digest"`
	// Ref is the tag the conversion was asked for (repo:tag); the result
	// is tagged <tag>_accelerated.
	Ref      string   `json:"ref"`
	Mode     Mode     `json:"mode"`
	Prefetch []string `json:"prefetch,omitempty"`
	State    State    `json:"state"`
	Progress Progress `json:"progress"`
	// Error is why the last attempt failed; empty unless Failed.
	Error string `json:"error,omitempty"`
	// Result is the accelerated image, once Ready.
	Result *Result `json:"result,omitempty"`
	// Attempts counts the conversions started, restarts included.
	Attempts int `json:"attempts"`
	// RebakeAt, when set on a Ready full-mode job, is when it is to be
	// converted again to bake in the start-up record its source gained
	// after the conversion (Service.Rebake). Result stays in use until
	// the new conversion replaces it.
	RebakeAt *time.Time `json:"rebakeAt,omitempty"`
	// Webhook is called when the job ends (Ready or Failed).
	Webhook string    `json:"webhook,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Settings is a repository's acceleration setting.
type Settings struct {
	// Repository is host/path, as in image references.
	Repository string `json:"repository"`
	// Enabled converts every tag pushed to the repository (the embedded
	// registry only). Enabling does not convert tags already there.
	Enabled  bool     `json:"enabled"`
	Mode     Mode     `json:"mode"`
	Prefetch []string `json:"prefetch,omitempty"`
	// Webhook, when set, is POSTed a JobEvent when a conversion of this
	// repository ends.
	Webhook string    `json:"webhook,omitempty"`
	Updated time.Time `json:"updated"`
}

func getJSON(b *bolt.Bucket, key string, v any) (bool, error) {
	data := b.Get([]byte(key))
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("accel: decode %s: %w", key, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

func jobs(tx *bolt.Tx) *bolt.Bucket    { return schema.Bucket(tx, bucketJobs) }
func refs(tx *bolt.Tx) *bolt.Bucket    { return schema.Bucket(tx, bucketRefs) }
func repos(tx *bolt.Tx) *bolt.Bucket   { return schema.Bucket(tx, bucketRepos) }
func indexes(tx *bolt.Tx) *bolt.Bucket { return schema.Bucket(tx, bucketIndexes) }
