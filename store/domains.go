package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/api"
)

// CreateCustomDomain stores a new custom domain; errdefs.ErrAlreadyExists
// when one of that name exists.
func (s *Store) CreateCustomDomain(ctx context.Context, d *api.CustomDomain) error {
	return s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		b := bucket(tx, bucketDomains)
		if b.Get([]byte(d.DomainName)) != nil {
			return fmt.Errorf("custom domain %q: %w", d.DomainName, errdefs.ErrAlreadyExists)
		}
		return putDomain(b, d, emit)
	})
}

// GetCustomDomain returns the named custom domain or errdefs.ErrNotFound.
func (s *Store) GetCustomDomain(ctx context.Context, name string) (*api.CustomDomain, error) {
	var d api.CustomDomain
	err := s.db.View(func(tx *bolt.Tx) error {
		return getJSON(bucket(tx, bucketDomains), name, &d)
	})
	if err != nil {
		return nil, fmt.Errorf("custom domain %q: %w", name, err)
	}
	return &d, nil
}

// UpdateCustomDomain applies change to the named domain in one
// transaction; an error from change aborts it and is returned as is.
func (s *Store) UpdateCustomDomain(ctx context.Context, name string, change func(*api.CustomDomain) (*api.CustomDomain, error)) (*api.CustomDomain, error) {
	var updated *api.CustomDomain
	err := s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		b := bucket(tx, bucketDomains)
		var d api.CustomDomain
		if err := getJSON(b, name, &d); err != nil {
			return fmt.Errorf("custom domain %q: %w", name, err)
		}
		n, err := change(&d)
		if err != nil {
			return err
		}
		updated = n
		return putDomain(b, n, emit)
	})
	return updated, err
}

// DeleteCustomDomain removes the named domain or returns
// errdefs.ErrNotFound.
func (s *Store) DeleteCustomDomain(ctx context.Context, name string) error {
	return s.update(func(tx *bolt.Tx, emit func(api.Event) error) error {
		b := bucket(tx, bucketDomains)
		if b.Get([]byte(name)) == nil {
			return fmt.Errorf("custom domain %q: %w", name, errdefs.ErrNotFound)
		}
		if err := b.Delete([]byte(name)); err != nil {
			return err
		}
		return emit(api.Event{Op: api.OpDelete, Kind: api.KindCustomDomain, DomainName: name})
	})
}

// ListCustomDomains returns up to limit domains whose names start with
// prefix, in name order from start (inclusive); next starts the
// following page, empty when there is none.
func (s *Store) ListCustomDomains(ctx context.Context, prefix, start string, limit int) (ds []*api.CustomDomain, next string, err error) {
	if start < prefix {
		start = prefix
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		c := bucket(tx, bucketDomains).Cursor()
		for k, v := c.Seek([]byte(start)); k != nil && strings.HasPrefix(string(k), prefix); k, v = c.Next() {
			if limit > 0 && len(ds) == limit {
				next = string(k)
				return nil
			}
			var d api.CustomDomain
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode custom domain %q: %w", k, err)
			}
			ds = append(ds, &d)
		}
		return nil
	})
	return ds, next, err
}

func putDomain(b *bolt.Bucket, d *api.CustomDomain, emit func(api.Event) error) error {
	if err := putJSON(b, d.DomainName, d); err != nil {
		return err
	}
	return emit(api.Event{Op: api.OpPut, Kind: api.KindCustomDomain, DomainName: d.DomainName})
}
