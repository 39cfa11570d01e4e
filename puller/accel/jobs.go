package accel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/internal/boltschema"
)

// Bucket schema, in the fcd bbolt file under its own versioned root:
//
//	accel/v1/
//	  meta/version            schema version (boltschema)
//	  jobs/<repo>@<digest>    Job as JSON, by the repository it converts in
//	                          (host/path) and its source manifest digest: the
//	                          same digest in two repositories is two jobs
//	                          (since v3; by digest alone before). A job refused
//	                          before its digest was known (Service.Ensure) is
//	                          kept under the reference it was asked for
//	  refs/<ref>              the key of the job the reference <ref> (repo:tag,
//	                          or repo@digest for a refusal) last named (since
//	                          v3; the digest before)
//	  repos/<repo>            Settings as JSON, by repository (host/path)
//	  indexes/<digest>        a serialized gzindex, by the layer digest it serves,
//	                          for registries fcd may not push to (since v2)
//
// Indexes are not kept by repository: fcd builds an index from the layer's
// verified bytes, so it is the same whichever repository the layer was
// read from, and no repository's creator can make it differ for another.

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
	{Version: 3, Name: "key jobs by repository and digest", Migrate: keyJobsByRepository},
}

// keyJobsByRepository moves each job kept by digest alone to
// <repo>@<digest>, repo being the repository of the tag it recorded
// (Job.Ref), where its conversion wrote its accelerated form; its record
// is unchanged, so a Ready job stays Ready with its Result and a Preparing
// one is converted by the next Run. A job whose repository cannot be
// determined (no Ref, or one that does not parse) is dropped: Ensure
// queues a conversion again for a function that asks for acceleration.
// Refusals, kept under their reference, keep their key; one kept under a
// digest-pinned reference that is now a moved job's key gives way to it.
//
// A tag pointed at the job of its digest; it now points at the job of its
// own repository and that digest, and is dropped when there is none (a
// tag of a second repository sharing the first one's job, or of a dropped
// job), so that Ensure queues that repository's own job.
func keyJobsByRepository(tx *bolt.Tx, root *bolt.Bucket) error {
	jb, rb := root.Bucket(bucketJobs), root.Bucket(bucketRefs)
	moved := map[string][]byte{}
	var old [][]byte
	err := jb.ForEach(func(k, v []byte) error {
		if !strings.HasPrefix(string(k), "sha256:") {
			return nil
		}
		old = append(old, bytes.Clone(k))
		var j Job
		if err := json.Unmarshal(v, &j); err != nil {
			return nil // undecodable: dropped
		}
		if repo := repoOf(j.Ref); repo != "" && j.Digest == string(k) {
			moved[jobKey(repo, j.Digest)] = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range old {
		if err := jb.Delete(k); err != nil {
			return err
		}
	}
	for k, v := range moved {
		if err := jb.Put([]byte(k), v); err != nil {
			return fmt.Errorf("job %s: %w", k, err)
		}
	}
	retarget := map[string][]byte{}
	err = rb.ForEach(func(ref, d []byte) error {
		if !strings.HasPrefix(string(d), "sha256:") {
			return nil
		}
		retarget[string(ref)] = nil
		if key := jobKey(repoOf(string(ref)), string(d)); jb.Get([]byte(key)) != nil {
			retarget[string(ref)] = []byte(key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for ref, key := range retarget {
		if key == nil {
			err = rb.Delete([]byte(ref))
		} else {
			err = rb.Put([]byte(ref), key)
		}
		if err != nil {
			return fmt.Errorf("ref %s: %w", ref, err)
		}
	}
	return nil
}

// jobKey returns the key of the job converting the image with manifest
// digest d in repository repo (host/path): <repo>@<d>, the image's
// digest-pinned reference.
func jobKey(repo, d string) string { return repo + "@" + d }

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

// Job is the conversion of one image digest in one repository.
type Job struct {
	// Digest is the source manifest's digest; with Ref's repository, the
	// job's key (Key).
	Digest string `json:"digest"`
	// Ref is the tag the conversion was asked for (repo:tag); the result
	// is tagged <tag>_accelerated, in the same repository. A job refused
	// before its digest was known has no Digest and Ref is its key.
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

// Key is the job's key, as Service.Job takes it: <repo>@<digest>, the
// digest-pinned source image in the job's repository; Ref for a job
// refused before its digest was known.
func (j Job) Key() string {
	if j.Digest == "" {
		return j.Ref
	}
	return jobKey(repoOf(j.Ref), j.Digest)
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

// eachJob calls f with every job and its key, in key order, until f
// fails.
func eachJob(tx *bolt.Tx, f func(key string, j Job) error) error {
	return jobs(tx).ForEach(func(k, v []byte) error {
		var j Job
		if err := json.Unmarshal(v, &j); err != nil {
			return fmt.Errorf("accel: decode job %s: %w", k, err)
		}
		return f(string(k), j)
	})
}
