package store

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/api"
)

// ListProvisionConfigs returns up to limit provision configs in function
// name order, beginning at the name start (inclusive; empty means the
// first). next is the name to pass as start for the following page, or
// empty when there is none.
func (s *Store) ListProvisionConfigs(ctx context.Context, start string, limit int) (pcs []api.NamedProvisionConfig, next string, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		c := bucket(tx, bucketProvision).Cursor()
		for k, v := c.Seek([]byte(start)); k != nil; k, v = c.Next() {
			if len(pcs) == limit {
				next = string(k)
				return nil
			}
			pc := api.NamedProvisionConfig{Function: string(k)}
			if err := json.Unmarshal(v, &pc.ProvisionConfig); err != nil {
				return fmt.Errorf("decode provision config %q: %w", k, err)
			}
			pcs = append(pcs, pc)
		}
		return nil
	})
	return pcs, next, err
}
