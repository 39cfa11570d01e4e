// Package store is fcd's metadata store: one bbolt file under the data dir
// holding the functions and their provisioned targets, and the buckets other
// packages own (the billing ledger) next to them.
//
// Bucket schema (version 1):
//
//	v1/                        root, versioned so a layout change is a migration
//	  meta/                    schema: "version" -> uint64 big-endian
//	  functions/<name>         JSON record: api.Function plus its revision
//	                           (the bucket's sequence at its last write)
//	  provision/<name>         JSON ProvisionConfig
//
// Every write is one bbolt transaction, so a crash leaves the last committed
// state. The store does not cache: bbolt's reads are memory-mapped.
package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/api"
)

// Store is fcd's bbolt-backed metadata store. It is safe for concurrent use.
type Store struct {
	db *bolt.DB
}

// Open opens (creating if needed) the store at path and brings its schema up
// to date. Only one process may hold it open: a second Open waits up to
// timeout (zero means 5 s) and then fails.
func Open(path string, timeout time.Duration) (*Store, error) {
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := migrate(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// DB returns the underlying database, for packages that keep their own
// buckets in the same file (billing). They must not touch the v1 root.
func (s *Store) DB() *bolt.DB { return s.db }

// functionRecord is how a function is stored: its API form and its
// revision, which the API form does not serialize.
type functionRecord struct {
	*api.Function
	Revision uint64 `json:"revision"`
}

// putFunction stores f with a new revision, which it sets on f.
func putFunction(b *bolt.Bucket, f *api.Function) error {
	rev, err := b.NextSequence()
	if err != nil {
		return err
	}
	f.Revision = rev
	return putJSON(b, f.FunctionName, functionRecord{Function: f, Revision: rev})
}

func decodeFunction(data []byte) (*api.Function, error) {
	rec := functionRecord{Function: &api.Function{}}
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, err
	}
	rec.Function.Revision = rec.Revision
	return rec.Function, nil
}

func getFunction(b *bolt.Bucket, name string) (*api.Function, error) {
	data := b.Get([]byte(name))
	if data == nil {
		return nil, errdefs.ErrNotFound
	}
	return decodeFunction(data)
}

// CreateFunction stores a new function and sets its Revision. It fails
// with errdefs.ErrAlreadyExists when one of that name exists.
func (s *Store) CreateFunction(ctx context.Context, f *api.Function) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketFunctions)
		if b.Get([]byte(f.FunctionName)) != nil {
			return fmt.Errorf("function %q: %w", f.FunctionName, errdefs.ErrAlreadyExists)
		}
		return putFunction(b, f)
	})
}

// GetFunction returns the named function or errdefs.ErrNotFound.
func (s *Store) GetFunction(ctx context.Context, name string) (*api.Function, error) {
	var f *api.Function
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		f, err = getFunction(bucket(tx, bucketFunctions), name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("function %q: %w", name, err)
	}
	return f, nil
}

// UpdateFunction applies change to the named function inside one
// transaction and stores the function change returns, with a new
// Revision. An error from change aborts the update and is returned as is.
func (s *Store) UpdateFunction(ctx context.Context, name string, change func(*api.Function) (*api.Function, error)) (*api.Function, error) {
	var updated *api.Function
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketFunctions)
		f, err := getFunction(b, name)
		if err != nil {
			return fmt.Errorf("function %q: %w", name, err)
		}
		n, err := change(f)
		if err != nil {
			return err
		}
		updated = n
		return putFunction(b, n)
	})
	return updated, err
}

// DeleteFunction removes the named function and its provision config, or
// returns errdefs.ErrNotFound.
func (s *Store) DeleteFunction(ctx context.Context, name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketFunctions)
		if b.Get([]byte(name)) == nil {
			return fmt.Errorf("function %q: %w", name, errdefs.ErrNotFound)
		}
		if err := bucket(tx, bucketProvision).Delete([]byte(name)); err != nil {
			return err
		}
		return b.Delete([]byte(name))
	})
}

// ListFunctions returns up to limit functions whose names start with prefix,
// in name order, beginning at the name start (inclusive; empty means the
// first). next is the name to pass as start for the following page, or
// empty when there is none.
func (s *Store) ListFunctions(ctx context.Context, prefix, start string, limit int) (fns []*api.Function, next string, err error) {
	if start < prefix {
		start = prefix
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		c := bucket(tx, bucketFunctions).Cursor()
		for k, v := c.Seek([]byte(start)); k != nil && strings.HasPrefix(string(k), prefix); k, v = c.Next() {
			if len(fns) == limit {
				next = string(k)
				return nil
			}
			f, err := decodeFunction(v)
			if err != nil {
				return fmt.Errorf("decode function %q: %w", k, err)
			}
			fns = append(fns, f)
		}
		return nil
	})
	return fns, next, err
}

// ProvisionConfig is a function's provisioned (always warm) instance target.
type ProvisionConfig struct {
	Target int `json:"target"`
}

// PutProvisionConfig stores the provisioned target of an existing function.
func (s *Store) PutProvisionConfig(ctx context.Context, name string, pc ProvisionConfig) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if bucket(tx, bucketFunctions).Get([]byte(name)) == nil {
			return fmt.Errorf("function %q: %w", name, errdefs.ErrNotFound)
		}
		return putJSON(bucket(tx, bucketProvision), name, pc)
	})
}

// GetProvisionConfig returns the provisioned target of a function, or
// errdefs.ErrNotFound when none is set.
func (s *Store) GetProvisionConfig(ctx context.Context, name string) (ProvisionConfig, error) {
	var pc ProvisionConfig
	err := s.db.View(func(tx *bolt.Tx) error {
		return getJSON(bucket(tx, bucketProvision), name, &pc)
	})
	if err != nil {
		return pc, fmt.Errorf("provision config of %q: %w", name, err)
	}
	return pc, nil
}

// DeleteProvisionConfig removes a function's provisioned target; removing
// none is not an error.
func (s *Store) DeleteProvisionConfig(ctx context.Context, name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return bucket(tx, bucketProvision).Delete([]byte(name))
	})
}

// ProvisionConfigs returns every stored provisioned target by function name.
func (s *Store) ProvisionConfigs(ctx context.Context) (map[string]ProvisionConfig, error) {
	out := map[string]ProvisionConfig{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return bucket(tx, bucketProvision).ForEach(func(k, v []byte) error {
			var pc ProvisionConfig
			if err := json.Unmarshal(v, &pc); err != nil {
				return fmt.Errorf("decode provision config %q: %w", k, err)
			}
			out[string(k)] = pc
			return nil
		})
	})
	return out, err
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

func getJSON(b *bolt.Bucket, key string, v any) error {
	data := b.Get([]byte(key))
	if data == nil {
		return errdefs.ErrNotFound
	}
	return json.Unmarshal(data, v)
}
