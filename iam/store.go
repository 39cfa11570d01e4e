package iam

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// AccountID is the account part of role ARNs
	// (acs:ram::<AccountID>:role/<name>). Zero means the empty account,
	// acs:ram:::role/<name>; use the same value fcd reports as
	// x-fc-account-id.
	AccountID string
	// Now is the clock for CreatedTime and session expiry checks. Nil
	// means time.Now.
	Now func() time.Time
}

// Store keeps roles in fcd's bbolt file and signs and verifies session
// tokens. It is safe for concurrent use. It does not own the *bolt.DB:
// closing the database is the caller's job, after the last use.
type Store struct {
	db      *bolt.DB
	account string
	now     func() time.Time
	keys    sessionKeys
}

// Open returns a Store over db, creating or migrating its iam/v1 buckets
// and, on first use, the session signing key. Open is idempotent.
func Open(db *bolt.DB, opts Options) (*Store, error) {
	if err := migrate(db); err != nil {
		return nil, err
	}
	var master []byte
	if err := db.View(func(tx *bolt.Tx) error {
		master = append([]byte(nil), bucket(tx, bucketMeta).Get(keySessionKey)...)
		return nil
	}); err != nil {
		return nil, err
	}
	if len(master) != sessionKeySize {
		return nil, fmt.Errorf("iam: session key in iam/v1/meta has %d bytes, want %d", len(master), sessionKeySize)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, account: opts.AccountID, now: now, keys: deriveKeys(master)}, nil
}

// AccountID returns the account part of this store's role ARNs.
func (s *Store) AccountID() string { return s.account }

// roleRecord is the stored form of a Role.
type roleRecord struct {
	Name         string    `json:"name"`
	Repositories []string  `json:"repositories"`
	Description  string    `json:"description,omitempty"`
	CreatedTime  time.Time `json:"createdTime"`
}

func (s *Store) role(rec roleRecord) Role {
	return Role{
		Name:         rec.Name,
		ARN:          RoleARN(s.account, rec.Name),
		Repositories: rec.Repositories,
		Description:  rec.Description,
		CreatedTime:  rec.CreatedTime,
	}
}

// CreateRole stores r, setting its ARN and CreatedTime, and returns it. It
// fails with ErrInvalidRole for a bad name or pattern and ErrRoleExists for
// a name in use.
func (s *Store) CreateRole(ctx context.Context, r Role) (Role, error) {
	if err := r.validate(); err != nil {
		return Role{}, err
	}
	rec := roleRecord{
		Name:         r.Name,
		Repositories: append([]string{}, r.Repositories...),
		Description:  r.Description,
		CreatedTime:  s.now().UTC(),
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return Role{}, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketRoles)
		if b.Get([]byte(r.Name)) != nil {
			return fmt.Errorf("role %s: %w", r.Name, ErrRoleExists)
		}
		return b.Put([]byte(r.Name), data)
	})
	if err != nil {
		return Role{}, err
	}
	return s.role(rec), nil
}

// GetRole returns the role called name, or ErrRoleNotFound.
func (s *Store) GetRole(ctx context.Context, name string) (Role, error) {
	var rec roleRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		data := bucket(tx, bucketRoles).Get([]byte(name))
		if data == nil {
			return fmt.Errorf("role %s: %w", name, ErrRoleNotFound)
		}
		return json.Unmarshal(data, &rec)
	})
	if err != nil {
		return Role{}, err
	}
	return s.role(rec), nil
}

// GetRoleByARN returns the role an ARN names. A malformed ARN gives
// ErrInvalidRole; a well-formed one of another account or of a role that
// does not exist gives ErrRoleNotFound. fcd's API uses this to refuse an
// unknown role on CreateFunction and UpdateFunction.
func (s *Store) GetRoleByARN(ctx context.Context, arn string) (Role, error) {
	account, name, err := ParseRoleARN(arn)
	if err != nil {
		return Role{}, err
	}
	if account != s.account {
		return Role{}, fmt.Errorf("role %s: account %q is not %q: %w", arn, account, s.account, ErrRoleNotFound)
	}
	return s.GetRole(ctx, name)
}

// ListRoles returns every role, ordered by name.
func (s *Store) ListRoles(ctx context.Context) ([]Role, error) {
	var roles []Role
	err := s.db.View(func(tx *bolt.Tx) error {
		return bucket(tx, bucketRoles).ForEach(func(k, v []byte) error {
			var rec roleRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("role %s: %w", k, err)
			}
			roles = append(roles, s.role(rec))
			return nil
		})
	})
	return roles, err
}

// DeleteRole removes the role called name, or returns ErrRoleNotFound.
// Credentials already issued for it stop granting repositories at once:
// PullPatterns looks the role up on every call.
func (s *Store) DeleteRole(ctx context.Context, name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketRoles)
		if b.Get([]byte(name)) == nil {
			return fmt.Errorf("role %s: %w", name, ErrRoleNotFound)
		}
		return b.Delete([]byte(name))
	})
}
