// Package store is fcd's metadata store: one bbolt file under the data dir
// holding the functions and their provisioned targets, and the buckets other
// packages own (the billing ledger) next to them.
//
// Bucket schema (version 1):
//
//	v1/                        root, versioned so a layout change is a migration
//	  meta/                    schema: "version" -> uint64 big-endian;
//	                           "revision" -> uint64 big-endian, the last
//	                           change's revision (watch.go)
//	  functions/<name>         JSON record: api.Function plus its revision
//	                           (the bucket's sequence at its last write)
//	  provision/<name>         JSON ProvisionConfig
//	  triggers/<fn>/<trigger>  JSON api.Trigger (since version 2)
//	  versions/<fn>/           a bucket per function (since version 3);
//	                           its sequence is the last version id
//	    <id>                   uint64 big-endian -> JSON versionRecord
//	  aliases/<fn>/<alias>     JSON api.Alias (since version 3)
//	  concurrency/<fn>         JSON api.ConcurrencyConfig (since version 3)
//	  restrictions/<fn>        JSON api.InvocationRestriction (since version 3)
//	  provision-qualified/<fn>/<qualifier>
//	                           JSON ProvisionConfig of a version or an
//	                           alias (since version 3)
//	  domains/<domain>         JSON api.CustomDomain (since version 4)
//
// Every write is one bbolt transaction, so a crash leaves the last committed
// state. The store does not cache: bbolt's reads are memory-mapped. Every
// change takes a store revision and reaches Watch (watch.go).
package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/api"
)

// Store is fcd's bbolt-backed metadata store. It is safe for concurrent use.
type Store struct {
	db       *bolt.DB
	wmu      sync.Mutex // serializes writes with their events
	watchers *watchers
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
	return &Store{db: db, watchers: newWatchers()}, nil
}

// Close ends every Watch and closes the file.
func (s *Store) Close() error {
	s.watchers.close()
	return s.db.Close()
}

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
	return s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		b := bucket(tx, bucketFunctions)
		if b.Get([]byte(f.FunctionName)) != nil {
			return fmt.Errorf("function %q: %w", f.FunctionName, errdefs.ErrAlreadyExists)
		}
		if err := putFunction(b, f); err != nil {
			return err
		}
		return emitFunction(emit, b, f.FunctionName)
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
	err := s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
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
		if err := putFunction(b, n); err != nil {
			return err
		}
		return emitFunction(emit, b, n.FunctionName)
	})
	return updated, err
}

// DeleteFunction removes the named function, its provision config and
// triggers, or
// returns errdefs.ErrNotFound.
func (s *Store) DeleteFunction(ctx context.Context, name string) error {
	return s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		b := bucket(tx, bucketFunctions)
		if b.Get([]byte(name)) == nil {
			return fmt.Errorf("function %q: %w", name, errdefs.ErrNotFound)
		}
		if err := bucket(tx, bucketProvision).Delete([]byte(name)); err != nil {
			return err
		}
		if err := deleteTriggers(bucket(tx, bucketTriggers), name); err != nil {
			return err
		}
		if err := deleteVersioning(tx, name); err != nil {
			return err
		}
		if err := b.Delete([]byte(name)); err != nil {
			return err
		}
		return emit(api.Event{Op: api.OpDelete, Kind: api.KindFunction, Function: name})
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
type ProvisionConfig = api.ProvisionConfig

// PutProvisionConfig stores the provisioned target of an existing function.
func (s *Store) PutProvisionConfig(ctx context.Context, name string, pc ProvisionConfig) error {
	return s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		if bucket(tx, bucketFunctions).Get([]byte(name)) == nil {
			return fmt.Errorf("function %q: %w", name, errdefs.ErrNotFound)
		}
		if err := putJSON(bucket(tx, bucketProvision), name, pc); err != nil {
			return err
		}
		return emit(api.Event{Op: api.OpPut, Kind: api.KindProvision, Function: name, ProvisionValue: &pc})
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
	return s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		b := bucket(tx, bucketProvision)
		if b.Get([]byte(name)) == nil {
			return nil
		}
		if err := b.Delete([]byte(name)); err != nil {
			return err
		}
		return emit(api.Event{Op: api.OpDelete, Kind: api.KindProvision, Function: name})
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

func triggerKey(function, trigger string) []byte {
	return []byte(function + "/" + trigger)
}

// CreateTrigger stores a trigger of an existing function. A function has
// at most one HTTP trigger. Errors: errdefs.ErrNotFound (no function),
// errdefs.ErrAlreadyExists (name in use, or an HTTP trigger exists).
func (s *Store) CreateTrigger(ctx context.Context, function string, t *api.Trigger) error {
	return s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		if bucket(tx, bucketFunctions).Get([]byte(function)) == nil {
			return fmt.Errorf("function %q: %w", function, errdefs.ErrNotFound)
		}
		b := bucket(tx, bucketTriggers)
		if b.Get(triggerKey(function, t.TriggerName)) != nil {
			return fmt.Errorf("trigger %q of function %q: %w", t.TriggerName, function, errdefs.ErrAlreadyExists)
		}
		existing, err := listTriggers(b, function)
		if err != nil {
			return err
		}
		for _, e := range existing {
			if e.TriggerType == t.TriggerType {
				return fmt.Errorf("function %q already has %s trigger %q: %w", function, e.TriggerType, e.TriggerName, errdefs.ErrAlreadyExists)
			}
		}
		if err := putJSON(b, string(triggerKey(function, t.TriggerName)), t); err != nil {
			return err
		}
		return emitTrigger(emit, b, function, t.TriggerName)
	})
}

// GetTrigger returns a trigger or errdefs.ErrNotFound.
func (s *Store) GetTrigger(ctx context.Context, function, name string) (*api.Trigger, error) {
	var t api.Trigger
	err := s.db.View(func(tx *bolt.Tx) error {
		return getJSON(bucket(tx, bucketTriggers), string(triggerKey(function, name)), &t)
	})
	if err != nil {
		return nil, fmt.Errorf("trigger %q of function %q: %w", name, function, err)
	}
	return &t, nil
}

// UpdateTrigger applies change to a trigger in one transaction.
func (s *Store) UpdateTrigger(ctx context.Context, function, name string, change func(*api.Trigger) (*api.Trigger, error)) (*api.Trigger, error) {
	var updated *api.Trigger
	err := s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		b := bucket(tx, bucketTriggers)
		var t api.Trigger
		if err := getJSON(b, string(triggerKey(function, name)), &t); err != nil {
			return fmt.Errorf("trigger %q of function %q: %w", name, function, err)
		}
		n, err := change(&t)
		if err != nil {
			return err
		}
		updated = n
		if err := putJSON(b, string(triggerKey(function, name)), n); err != nil {
			return err
		}
		return emitTrigger(emit, b, function, name)
	})
	return updated, err
}

// DeleteTrigger removes a trigger or returns errdefs.ErrNotFound.
func (s *Store) DeleteTrigger(ctx context.Context, function, name string) error {
	return s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		b := bucket(tx, bucketTriggers)
		if b.Get(triggerKey(function, name)) == nil {
			return fmt.Errorf("trigger %q of function %q: %w", name, function, errdefs.ErrNotFound)
		}
		if err := b.Delete(triggerKey(function, name)); err != nil {
			return err
		}
		return emit(api.Event{Op: api.OpDelete, Kind: api.KindTrigger, Function: function, TriggerName: name})
	})
}

// ListTriggers returns a function's triggers by name.
func (s *Store) ListTriggers(ctx context.Context, function string) ([]*api.Trigger, error) {
	var out []*api.Trigger
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = listTriggers(bucket(tx, bucketTriggers), function)
		return err
	})
	return out, err
}

func listTriggers(b *bolt.Bucket, function string) ([]*api.Trigger, error) {
	var out []*api.Trigger
	prefix := []byte(function + "/")
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var t api.Trigger
		if err := json.Unmarshal(v, &t); err != nil {
			return nil, fmt.Errorf("decode trigger %q: %w", k, err)
		}
		out = append(out, &t)
	}
	return out, nil
}

func deleteTriggers(b *bolt.Bucket, function string) error {
	prefix := []byte(function + "/")
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
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

// emitFunction emits the put of the named function, with a copy decoded
// from its record: the caller keeps what it stored, and each may change
// its copy.
func emitFunction(emit func(api.Event) error, b *bolt.Bucket, name string) error {
	f, err := getFunction(b, name)
	if err != nil {
		return err
	}
	return emit(api.Event{Op: api.OpPut, Kind: api.KindFunction, Function: name, FunctionValue: f})
}

// emitTrigger is emitFunction for a trigger.
func emitTrigger(emit func(api.Event) error, b *bolt.Bucket, function, name string) error {
	var t api.Trigger
	if err := getJSON(b, string(triggerKey(function, name)), &t); err != nil {
		return err
	}
	return emit(api.Event{Op: api.OpPut, Kind: api.KindTrigger, Function: function, TriggerName: name, TriggerValue: &t})
}
