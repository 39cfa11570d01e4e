package lazy

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/internal/boltschema"
)

// Bucket schema, in the fcd bbolt file under its own versioned root:
//
//	lazy/v1/
//	  meta/version        schema version (boltschema)
//	  records/<digest>    Record as JSON, by the digest of the manifest
//	                      whose layers were mounted
//	  sources/<digest>    the digest of the latest Record made from an
//	                      image converted from the source manifest
//	                      <digest> (full mode), or of that manifest itself
var (
	bucketRoot    = []byte("lazy/v1")
	bucketRecords = []byte("records")
	bucketSources = []byte("sources")
)

// migrations build the lazy/v1 buckets. Append only; never edit one that
// has shipped.
var migrations = []boltschema.Migration{
	{Version: 1, Name: "create records and sources buckets", Migrate: func(tx *bolt.Tx, root *bolt.Bucket) error {
		for _, b := range [][]byte{bucketRecords, bucketSources} {
			if _, err := root.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}},
}

var schema = boltschema.Schema{Root: bucketRoot, Migrations: migrations}

// Record is what an image read at its first lazy start, from the mount
// until the instance was ready plus a settle time, in the order first
// read. The next cold start of the image replays it as its prefetch, and
// the converter puts its files first in the image's accelerated (full
// mode) form.
type Record struct {
	// Image is the digest of the manifest whose layers were mounted (for
	// an index-only artifact, its subject, the original image).
	Image digest.Digest `json:"image"`
	// Source is the digest of the image Image was converted from (the
	// manifest's "dev.fcd.accelerated.source" annotation), or Image.
	Source digest.Digest `json:"source"`
	// Layers are the mounted layers' digests, bottom first.
	Layers []digest.Digest `json:"layers"`
	// Reads are the bytes read, in the order first read: reads that
	// continue one of the same file are merged into it, bytes already
	// recorded are left out.
	Reads []Read `json:"reads"`
	// Lookups are, per layer (indexed as Layers), the names looked up in
	// it, as paths relative to its root, in the order first looked up,
	// those the layer does not have included; a name that is a parent
	// directory of another is left out, as looking the other up looks it
	// up too. The next start looks them up before the instance does
	// (lazyfs.Layer.WarmLookups). Nil in a record made before they were
	// kept.
	Lookups [][]string `json:"lookups,omitempty"`
	Created time.Time  `json:"created"`
}

// Read is a range of one file of one layer.
type Read struct {
	// Layer indexes Record.Layers.
	Layer int `json:"l"`
	// File is the layer's name of the file's data (a hard link's target),
	// relative to the layer root.
	File string `json:"f"`
	Off  int64  `json:"o"`
	N    int64  `json:"n"`
}

// Bytes returns the uncompressed bytes the record covers.
func (r *Record) Bytes() int64 {
	var n int64
	for _, rd := range r.Reads {
		n += rd.N
	}
	return n
}

// leafNames returns names, in order, without those that are a parent
// directory of another.
func leafNames(names []string) []string {
	parents := make(map[string]bool)
	for _, n := range names {
		for d := path.Dir(n); d != "." && d != "/" && !parents[d]; d = path.Dir(d) {
			parents[d] = true
		}
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !parents[n] {
			out = append(out, n)
		}
	}
	return out
}

// Files returns the files of the record, each once, in the order of their
// first read, as absolute paths (the converter's prefetch list form).
func (r *Record) Files() []string {
	seen := make(map[string]bool)
	var out []string
	for _, rd := range r.Reads {
		if !seen[rd.File] {
			seen[rd.File] = true
			out = append(out, "/"+rd.File)
		}
	}
	return out
}

// Records keeps start-up records in a bbolt file, which it does not own.
// It is safe for concurrent use.
type Records struct {
	db *bolt.DB
}

// OpenRecords returns the records kept in db, migrating their buckets.
func OpenRecords(db *bolt.DB) (*Records, error) {
	if err := schema.Migrate(db, schema.Latest()); err != nil {
		return nil, fmt.Errorf("lazy records: %w", err)
	}
	return &Records{db: db}, nil
}

// Get returns the record of image d; ok is false when there is none.
func (rs *Records) Get(d digest.Digest) (rec Record, ok bool, err error) {
	err = rs.db.View(func(tx *bolt.Tx) error {
		ok, err = getRecord(tx, d, &rec)
		return err
	})
	return rec, ok, err
}

func getRecord(tx *bolt.Tx, d digest.Digest, rec *Record) (bool, error) {
	b := schema.Bucket(tx, bucketRecords).Get([]byte(d))
	if b == nil {
		return false, nil
	}
	if err := json.Unmarshal(b, rec); err != nil {
		return false, fmt.Errorf("lazy records: decode %s: %w", d, err)
	}
	return true, nil
}

// Put keeps rec, replacing the record of the same image, and makes it the
// latest of its source.
func (rs *Records) Put(rec Record) error {
	if err := rec.Image.Validate(); err != nil {
		return fmt.Errorf("lazy records: image %q: %w", rec.Image, err)
	}
	if rec.Source == "" {
		rec.Source = rec.Image
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return rs.db.Update(func(tx *bolt.Tx) error {
		if err := schema.Bucket(tx, bucketRecords).Put([]byte(rec.Image), b); err != nil {
			return err
		}
		return schema.Bucket(tx, bucketSources).Put([]byte(rec.Source), []byte(rec.Image))
	})
}

// Latest returns the latest record made from the image with manifest
// digest source or from an image converted from it (another acceleration
// mode, an earlier conversion); ok is false when there is none.
func (rs *Records) Latest(source digest.Digest) (rec Record, ok bool, err error) {
	err = rs.db.View(func(tx *bolt.Tx) error {
		d := source
		if img := schema.Bucket(tx, bucketSources).Get([]byte(source)); img != nil {
			d = digest.Digest(img)
		}
		ok, err = getRecord(tx, d, &rec)
		return err
	})
	return rec, ok, err
}

// StartupFiles returns the files, as absolute paths in the order first
// read, of the latest record made from the image with manifest digest
// source or from an image converted from it; nil when there is none.
// puller/accel's converter takes it as a prioritized file list.
func (rs *Records) StartupFiles(_ context.Context, source string) ([]string, error) {
	rec, ok, err := rs.Latest(digest.Digest(source))
	if err != nil || !ok {
		return nil, err
	}
	return rec.Files(), nil
}
