package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/api"
)

// Versions, aliases, reserved concurrency and the invocation switch of a
// function. They belong to the function: DeleteFunction removes them in
// its transaction, without events of their own.

// versionRecord is how a published version is stored: its API form, the
// function's configuration it froze and that configuration's revision
// (0 in records from before it was kept).
type versionRecord struct {
	Version  *api.FunctionVersion `json:"version"`
	Function *api.Function        `json:"function"`
	Revision uint64               `json:"revision,omitempty"`
}

func versionKey(id uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], id)
	return b[:]
}

func parseVersionID(id string) (uint64, error) {
	if !api.IsVersionID(id) {
		return 0, fmt.Errorf("version %q: %w", id, api.ErrVersionNotFound)
	}
	n, _ := strconv.ParseUint(id, 10, 64)
	return n, nil
}

func requireFunction(tx *bolt.Tx, name string) error {
	if bucket(tx, bucketFunctions).Get([]byte(name)) == nil {
		return fmt.Errorf("function %q: %w", name, errdefs.ErrNotFound)
	}
	return nil
}

// PublishVersion freezes the function's current configuration as its next
// version. Errors: errdefs.ErrNotFound (no function),
// api.ErrVersionUnchanged (the function's revision is the one its newest
// version froze: no UpdateFunction since; tags do not count).
func (s *Store) PublishVersion(ctx context.Context, function, description string, now time.Time) (*api.FunctionVersion, error) {
	var v *api.FunctionVersion
	err := s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		f, err := getFunction(bucket(tx, bucketFunctions), function)
		if err != nil {
			return fmt.Errorf("function %q: %w", function, err)
		}
		b, err := bucket(tx, bucketVersions).CreateBucketIfNotExists([]byte(function))
		if err != nil {
			return err
		}
		if err := checkChanged(b, function, f.Revision); err != nil {
			return err
		}
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		ts := api.Timestamp(now)
		v = &api.FunctionVersion{VersionID: strconv.FormatUint(id, 10), Description: description, CreatedTime: ts, LastModifiedTime: ts}
		data, err := json.Marshal(versionRecord{Version: v, Function: f, Revision: f.Revision})
		if err != nil {
			return err
		}
		if err := b.Put(versionKey(id), data); err != nil {
			return err
		}
		return emit(api.Event{Op: api.OpPut, Kind: api.KindVersion, Function: function, Qualifier: v.VersionID})
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// checkChanged refuses to publish revision rev of function when the
// newest version b holds froze the same one.
func checkChanged(b *bolt.Bucket, function string, rev uint64) error {
	_, data := b.Cursor().Last()
	if data == nil {
		return nil
	}
	var last versionRecord
	if err := json.Unmarshal(data, &last); err != nil {
		return fmt.Errorf("decode newest version of %q: %w", function, err)
	}
	if last.Revision != 0 && last.Revision == rev {
		return fmt.Errorf("%w: function %q is unchanged since version %s", api.ErrVersionUnchanged, function, last.Version.VersionID)
	}
	return nil
}

func getVersion(tx *bolt.Tx, function, id string) (*versionRecord, error) {
	n, err := parseVersionID(id)
	if err != nil {
		return nil, fmt.Errorf("function %q: %w", function, err)
	}
	var data []byte
	if b := bucket(tx, bucketVersions).Bucket([]byte(function)); b != nil {
		data = b.Get(versionKey(n))
	}
	if data == nil {
		return nil, fmt.Errorf("version %s of function %q: %w", id, function, api.ErrVersionNotFound)
	}
	var rec versionRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("decode version %s of %q: %w", id, function, err)
	}
	return &rec, nil
}

// GetVersion returns a published version and the configuration it froze
// (with the Revision the function had then). Errors: errdefs.ErrNotFound
// (no function), api.ErrVersionNotFound.
func (s *Store) GetVersion(ctx context.Context, function, id string) (*api.FunctionVersion, *api.Function, error) {
	var rec *versionRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := requireFunction(tx, function); err != nil {
			return err
		}
		var err error
		rec, err = getVersion(tx, function, id)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return rec.Version, rec.Function, nil
}

// ListVersions returns the function's published versions, oldest first.
func (s *Store) ListVersions(ctx context.Context, function string) ([]*api.FunctionVersion, error) {
	var out []*api.FunctionVersion
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := requireFunction(tx, function); err != nil {
			return err
		}
		b := bucket(tx, bucketVersions).Bucket([]byte(function))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var rec versionRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode version of %q: %w", function, err)
			}
			out = append(out, rec.Version)
			return nil
		})
	})
	return out, err
}

// DeleteVersion removes a published version. Errors: errdefs.ErrNotFound
// (no function), api.ErrVersionNotFound, api.ErrVersionInUse (an alias
// routes to it).
func (s *Store) DeleteVersion(ctx context.Context, function, id string) error {
	return s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		if err := requireFunction(tx, function); err != nil {
			return err
		}
		if _, err := getVersion(tx, function, id); err != nil {
			return err
		}
		aliases, err := listAliases(bucket(tx, bucketAliases), function)
		if err != nil {
			return err
		}
		for _, a := range aliases {
			for _, v := range a.Versions() {
				if v == id {
					return fmt.Errorf("version %s of function %q: %w %q", id, function, api.ErrVersionInUse, a.AliasName)
				}
			}
		}
		n, _ := parseVersionID(id)
		if err := bucket(tx, bucketVersions).Bucket([]byte(function)).Delete(versionKey(n)); err != nil {
			return err
		}
		if err := emit(api.Event{Op: api.OpDelete, Kind: api.KindVersion, Function: function, Qualifier: id}); err != nil {
			return err
		}
		return deleteQualifiedProvision(tx, emit, function, id)
	})
}

// checkAliasVersions fails with api.ErrVersionNotFound unless every
// version a routes to is published.
func checkAliasVersions(tx *bolt.Tx, function string, a *api.Alias) error {
	for _, v := range a.Versions() {
		if _, err := getVersion(tx, function, v); err != nil {
			return err
		}
	}
	return nil
}

// CreateAlias stores a new alias. Errors: errdefs.ErrNotFound (no
// function), api.ErrVersionNotFound, api.ErrAliasExists.
func (s *Store) CreateAlias(ctx context.Context, function string, a *api.Alias) error {
	return s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		if err := requireFunction(tx, function); err != nil {
			return err
		}
		b := bucket(tx, bucketAliases)
		key := triggerKey(function, a.AliasName)
		if b.Get(key) != nil {
			return fmt.Errorf("alias %q of function %q: %w", a.AliasName, function, api.ErrAliasExists)
		}
		if err := checkAliasVersions(tx, function, a); err != nil {
			return err
		}
		if err := putJSON(b, string(key), a); err != nil {
			return err
		}
		return emit(api.Event{Op: api.OpPut, Kind: api.KindAlias, Function: function, Qualifier: a.AliasName, AliasValue: a})
	})
}

// GetAlias returns an alias. Errors: errdefs.ErrNotFound (no function),
// api.ErrAliasNotFound.
func (s *Store) GetAlias(ctx context.Context, function, name string) (*api.Alias, error) {
	var a api.Alias
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := requireFunction(tx, function); err != nil {
			return err
		}
		return getAlias(tx, function, name, &a)
	})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

func getAlias(tx *bolt.Tx, function, name string, a *api.Alias) error {
	err := getJSON(bucket(tx, bucketAliases), string(triggerKey(function, name)), a)
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("alias %q of function %q: %w", name, function, api.ErrAliasNotFound)
	}
	return err
}

// UpdateAlias applies change to an alias in one transaction; the versions
// the result routes to must be published.
func (s *Store) UpdateAlias(ctx context.Context, function, name string, change func(*api.Alias) (*api.Alias, error)) (*api.Alias, error) {
	var updated *api.Alias
	err := s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		if err := requireFunction(tx, function); err != nil {
			return err
		}
		var a api.Alias
		if err := getAlias(tx, function, name, &a); err != nil {
			return err
		}
		n, err := change(&a)
		if err != nil {
			return err
		}
		if err := checkAliasVersions(tx, function, n); err != nil {
			return err
		}
		updated = n
		if err := putJSON(bucket(tx, bucketAliases), string(triggerKey(function, name)), n); err != nil {
			return err
		}
		return emit(api.Event{Op: api.OpPut, Kind: api.KindAlias, Function: function, Qualifier: name, AliasValue: n})
	})
	return updated, err
}

// DeleteAlias removes an alias. Errors: errdefs.ErrNotFound (no
// function), api.ErrAliasNotFound.
func (s *Store) DeleteAlias(ctx context.Context, function, name string) error {
	return s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		if err := requireFunction(tx, function); err != nil {
			return err
		}
		b := bucket(tx, bucketAliases)
		key := triggerKey(function, name)
		if b.Get(key) == nil {
			return fmt.Errorf("alias %q of function %q: %w", name, function, api.ErrAliasNotFound)
		}
		if err := b.Delete(key); err != nil {
			return err
		}
		if err := emit(api.Event{Op: api.OpDelete, Kind: api.KindAlias, Function: function, Qualifier: name}); err != nil {
			return err
		}
		return deleteQualifiedProvision(tx, emit, function, name)
	})
}

// ListAliases returns the function's aliases by name.
func (s *Store) ListAliases(ctx context.Context, function string) ([]*api.Alias, error) {
	var out []*api.Alias
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := requireFunction(tx, function); err != nil {
			return err
		}
		var err error
		out, err = listAliases(bucket(tx, bucketAliases), function)
		return err
	})
	return out, err
}

func listAliases(b *bolt.Bucket, function string) ([]*api.Alias, error) {
	var out []*api.Alias
	prefix := []byte(function + "/")
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var a api.Alias
		if err := json.Unmarshal(v, &a); err != nil {
			return nil, fmt.Errorf("decode alias %q: %w", k, err)
		}
		out = append(out, &a)
	}
	return out, nil
}

// PutConcurrencyConfig sets a function's reserved concurrency.
func (s *Store) PutConcurrencyConfig(ctx context.Context, function string, cc api.ConcurrencyConfig) error {
	return s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		if err := requireFunction(tx, function); err != nil {
			return err
		}
		if err := putJSON(bucket(tx, bucketConcurrency), function, cc); err != nil {
			return err
		}
		return emit(api.Event{Op: api.OpPut, Kind: api.KindConcurrency, Function: function, ConcurrencyValue: &cc})
	})
}

// GetConcurrencyConfig returns a function's reserved concurrency, or
// errdefs.ErrNotFound when none is set.
func (s *Store) GetConcurrencyConfig(ctx context.Context, function string) (api.ConcurrencyConfig, error) {
	var cc api.ConcurrencyConfig
	err := s.db.View(func(tx *bolt.Tx) error {
		return getJSON(bucket(tx, bucketConcurrency), function, &cc)
	})
	if err != nil {
		return cc, fmt.Errorf("concurrency config of %q: %w", function, err)
	}
	return cc, nil
}

// DeleteConcurrencyConfig removes a function's reserved concurrency;
// removing none is not an error.
func (s *Store) DeleteConcurrencyConfig(ctx context.Context, function string) error {
	return s.deleteSetting(bucketConcurrency, api.KindConcurrency, function)
}

// ConcurrencyConfigs returns every reserved concurrency by function name.
func (s *Store) ConcurrencyConfigs(ctx context.Context) (map[string]api.ConcurrencyConfig, error) {
	out := map[string]api.ConcurrencyConfig{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return bucket(tx, bucketConcurrency).ForEach(func(k, v []byte) error {
			var cc api.ConcurrencyConfig
			if err := json.Unmarshal(v, &cc); err != nil {
				return fmt.Errorf("decode concurrency config %q: %w", k, err)
			}
			out[string(k)] = cc
			return nil
		})
	})
	return out, err
}

// SetInvocationRestriction stores a function's invocation switch; nil
// (or Disable false) removes it, enabling invocations.
func (s *Store) SetInvocationRestriction(ctx context.Context, function string, r *api.InvocationRestriction) error {
	if r == nil || !r.Disable {
		return s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
			if err := requireFunction(tx, function); err != nil {
				return err
			}
			return deleteSettingTx(tx, emit, bucketRestrictions, api.KindRestriction, function)
		})
	}
	return s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		if err := requireFunction(tx, function); err != nil {
			return err
		}
		if err := putJSON(bucket(tx, bucketRestrictions), function, r); err != nil {
			return err
		}
		return emit(api.Event{Op: api.OpPut, Kind: api.KindRestriction, Function: function, RestrictionValue: r})
	})
}

// InvocationRestriction returns a function's invocation switch, nil when
// invocations are enabled.
func (s *Store) InvocationRestriction(ctx context.Context, function string) (*api.InvocationRestriction, error) {
	var r api.InvocationRestriction
	err := s.db.View(func(tx *bolt.Tx) error {
		return getJSON(bucket(tx, bucketRestrictions), function, &r)
	})
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("invocation restriction of %q: %w", function, err)
	}
	return &r, nil
}

func (s *Store) deleteSetting(name []byte, kind api.Kind, function string) error {
	return s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		return deleteSettingTx(tx, emit, name, kind, function)
	})
}

func deleteSettingTx(tx *bolt.Tx, emit func(api.Event) error, name []byte, kind api.Kind, function string) error {
	b := bucket(tx, name)
	if b.Get([]byte(function)) == nil {
		return nil
	}
	if err := b.Delete([]byte(function)); err != nil {
		return err
	}
	return emit(api.Event{Op: api.OpDelete, Kind: kind, Function: function})
}

// deleteVersioning removes a function's versions, aliases and settings,
// inside DeleteFunction's transaction.
func deleteVersioning(tx *bolt.Tx, function string) error {
	vb := bucket(tx, bucketVersions)
	if vb.Bucket([]byte(function)) != nil {
		if err := vb.DeleteBucket([]byte(function)); err != nil {
			return err
		}
	}
	if err := deleteTriggers(bucket(tx, bucketAliases), function); err != nil {
		return err
	}
	if err := deleteTriggers(bucket(tx, bucketProvisionQ), function); err != nil {
		return err
	}
	for _, name := range [][]byte{bucketConcurrency, bucketRestrictions} {
		if err := bucket(tx, name).Delete([]byte(function)); err != nil {
			return err
		}
	}
	return nil
}

// PutQualifiedProvision stores the provisioned target of a version or an
// alias of a function. Errors: errdefs.ErrNotFound (no function),
// api.ErrVersionNotFound, api.ErrAliasNotFound. Deleting the version or
// alias deletes it.
func (s *Store) PutQualifiedProvision(ctx context.Context, function, qualifier string, pc ProvisionConfig) error {
	return s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		if err := requireFunction(tx, function); err != nil {
			return err
		}
		if api.IsVersionID(qualifier) {
			if _, err := getVersion(tx, function, qualifier); err != nil {
				return err
			}
		} else if err := getAlias(tx, function, qualifier, &api.Alias{}); err != nil {
			return err
		}
		if err := putJSON(bucket(tx, bucketProvisionQ), string(triggerKey(function, qualifier)), pc); err != nil {
			return err
		}
		return emit(api.Event{Op: api.OpPut, Kind: api.KindQualifiedProvision, Function: function, Qualifier: qualifier, ProvisionValue: &pc})
	})
}

// GetQualifiedProvision returns the provisioned target of a version or an
// alias, or errdefs.ErrNotFound.
func (s *Store) GetQualifiedProvision(ctx context.Context, function, qualifier string) (ProvisionConfig, error) {
	var pc ProvisionConfig
	err := s.db.View(func(tx *bolt.Tx) error {
		return getJSON(bucket(tx, bucketProvisionQ), string(triggerKey(function, qualifier)), &pc)
	})
	if err != nil {
		return pc, fmt.Errorf("provision config of %s:%s: %w", function, qualifier, err)
	}
	return pc, nil
}

// DeleteQualifiedProvision removes the provisioned target of a version or
// an alias; removing none is not an error.
func (s *Store) DeleteQualifiedProvision(ctx context.Context, function, qualifier string) error {
	return s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		return deleteQualifiedProvision(tx, emit, function, qualifier)
	})
}

func deleteQualifiedProvision(tx *bolt.Tx, emit func(api.Event) error, function, qualifier string) error {
	b := bucket(tx, bucketProvisionQ)
	key := triggerKey(function, qualifier)
	if b.Get(key) == nil {
		return nil
	}
	if err := b.Delete(key); err != nil {
		return err
	}
	return emit(api.Event{Op: api.OpDelete, Kind: api.KindQualifiedProvision, Function: function, Qualifier: qualifier})
}

// QualifiedProvisions returns the provisioned targets of every version and
// alias, by function and qualifier.
func (s *Store) QualifiedProvisions(ctx context.Context) (map[string]map[string]ProvisionConfig, error) {
	out := map[string]map[string]ProvisionConfig{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return bucket(tx, bucketProvisionQ).ForEach(func(k, v []byte) error {
			function, qualifier, _ := bytes.Cut(k, []byte("/"))
			var pc ProvisionConfig
			if err := json.Unmarshal(v, &pc); err != nil {
				return fmt.Errorf("decode provision config %q: %w", k, err)
			}
			if out[string(function)] == nil {
				out[string(function)] = map[string]ProvisionConfig{}
			}
			out[string(function)][string(qualifier)] = pc
			return nil
		})
	})
	return out, err
}
