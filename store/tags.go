package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/api"
)

// UpdateFunctionTags replaces the tags of the named function with what
// change returns, keeping the function's Revision: tags label a function
// and are no part of its configuration, so its instances do not drain.
// The write still takes a store revision and reaches Watch as a function
// event. An error from change aborts it and is returned as is.
func (s *Store) UpdateFunctionTags(ctx context.Context, name string, change func(*api.Function) ([]api.Tag, error)) (*api.Function, error) {
	var updated *api.Function
	err := s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		b := bucket(tx, bucketFunctions)
		f, err := getFunction(b, name)
		if err != nil {
			return fmt.Errorf("function %q: %w", name, err)
		}
		tags, err := change(f)
		if err != nil {
			return err
		}
		f.Tags = tags
		if err := putJSON(b, name, functionRecord{Function: f, Revision: f.Revision}); err != nil {
			return err
		}
		updated = f
		return emitFunction(emit, b, name)
	})
	return updated, err
}
