package async

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/api"
)

func getConfig(b *bolt.Bucket, function string) (api.AsyncConfig, error) {
	var c api.AsyncConfig
	data := b.Get([]byte(function))
	if data == nil {
		return c, ErrConfigNotFound
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("async config of %s: %w", function, err)
	}
	return c, nil
}

// PutConfig sets function's async invoke config. change receives the
// current one (nil when there is none) and returns the new one.
func (q *Queue) PutConfig(ctx context.Context, function string, change func(prev *api.AsyncConfig) (api.AsyncConfig, error)) (api.AsyncConfig, error) {
	var c api.AsyncConfig
	err := q.db.Update(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketConfigs)
		var prev *api.AsyncConfig
		if p, err := getConfig(b, function); err == nil {
			prev = &p
		}
		var err error
		if c, err = change(prev); err != nil {
			return err
		}
		data, err := json.Marshal(c)
		if err != nil {
			return err
		}
		return b.Put([]byte(function), data)
	})
	return c, err
}

// Config returns function's async invoke config, or ErrConfigNotFound.
func (q *Queue) Config(ctx context.Context, function string) (api.AsyncConfig, error) {
	var c api.AsyncConfig
	err := q.db.View(func(tx *bolt.Tx) error {
		var err error
		c, err = getConfig(bucket(tx, bucketConfigs), function)
		return err
	})
	if err != nil {
		return c, fmt.Errorf("function %s: %w", function, err)
	}
	return c, nil
}

// DeleteConfig removes function's async invoke config, or returns
// ErrConfigNotFound.
func (q *Queue) DeleteConfig(ctx context.Context, function string) error {
	return q.db.Update(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketConfigs)
		if b.Get([]byte(function)) == nil {
			return fmt.Errorf("function %s: %w", function, ErrConfigNotFound)
		}
		return b.Delete([]byte(function))
	})
}

// ListConfigs returns up to limit configs of functions whose names start
// with prefix, from start on (inclusive), and the name to start the next
// page at ("" at the end).
func (q *Queue) ListConfigs(ctx context.Context, prefix, start string, limit int) ([]api.AsyncConfig, string, error) {
	var out []api.AsyncConfig
	var next string
	err := q.db.View(func(tx *bolt.Tx) error {
		c := bucket(tx, bucketConfigs).Cursor()
		from := max(prefix, start)
		for k, v := c.Seek([]byte(from)); k != nil && strings.HasPrefix(string(k), prefix); k, v = c.Next() {
			if len(out) == limit {
				next = string(k)
				return nil
			}
			var cfg api.AsyncConfig
			if err := json.Unmarshal(v, &cfg); err != nil {
				return fmt.Errorf("async config of %s: %w", k, err)
			}
			out = append(out, cfg)
		}
		return nil
	})
	return out, next, err
}
