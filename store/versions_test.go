package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/api"
)

func TestVersionsAndAliases(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	events := s.Watch(t.Context())
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	if _, err := s.PublishVersion(ctx, "missing", "", now); !errdefs.IsNotFound(err) {
		t.Fatalf("publish of a missing function: got %v, want NotFound", err)
	}
	if err := s.CreateFunction(ctx, fn("a")); err != nil {
		t.Fatal(err)
	}
	v1, err := s.PublishVersion(ctx, "a", "first", now)
	if err != nil || v1.VersionID != "1" {
		t.Fatalf("publish: got %+v, %v; want version 1", v1, err)
	}
	if _, err := s.UpdateFunction(ctx, "a", func(f *api.Function) (*api.Function, error) { f.MemorySize = 1024; return f, nil }); err != nil {
		t.Fatal(err)
	}
	v2, err := s.PublishVersion(ctx, "a", "second", now)
	if err != nil || v2.VersionID != "2" {
		t.Fatalf("publish: got %+v, %v; want version 2", v2, err)
	}
	_, f1, err := s.GetVersion(ctx, "a", "1")
	if err != nil || f1.MemorySize != 512 {
		t.Fatalf("version 1: got %+v, %v; want the frozen memorySize 512", f1, err)
	}
	if _, _, err := s.GetVersion(ctx, "a", "9"); !errors.Is(err, api.ErrVersionNotFound) {
		t.Fatalf("missing version: got %v, want ErrVersionNotFound", err)
	}

	bad := &api.Alias{AliasName: "prod", VersionID: "1", AdditionalVersionWeight: map[string]float32{"7": 0.2}}
	if err := s.CreateAlias(ctx, "a", bad); !errors.Is(err, api.ErrVersionNotFound) {
		t.Fatalf("alias to a missing version: got %v, want ErrVersionNotFound", err)
	}
	prod := &api.Alias{AliasName: "prod", VersionID: "1", AdditionalVersionWeight: map[string]float32{"2": 0.2}}
	if err := s.CreateAlias(ctx, "a", prod); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAlias(ctx, "a", prod); !errors.Is(err, api.ErrAliasExists) {
		t.Fatalf("duplicate alias: got %v, want ErrAliasExists", err)
	}
	for _, id := range []string{"1", "2"} {
		if err := s.DeleteVersion(ctx, "a", id); !errors.Is(err, api.ErrVersionInUse) {
			t.Fatalf("delete version %s used by prod: got %v, want ErrVersionInUse", id, err)
		}
	}
	if _, err := s.UpdateAlias(ctx, "a", "prod", func(a *api.Alias) (*api.Alias, error) {
		a.AdditionalVersionWeight = nil
		return a, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteVersion(ctx, "a", "2"); err != nil {
		t.Fatalf("delete version 2, no longer used: %v", err)
	}
	if vs, err := s.ListVersions(ctx, "a"); err != nil || len(vs) != 1 || vs[0].VersionID != "1" {
		t.Fatalf("list versions: got %v, %v; want [1]", vs, err)
	}
	v3, err := s.PublishVersion(ctx, "a", "", now)
	if err != nil || v3.VersionID != "3" {
		t.Fatalf("publish after a delete: got %+v, %v; want 3 (ids are not reused)", v3, err)
	}
	if err := s.PutConcurrencyConfig(ctx, "a", api.ConcurrencyConfig{ReservedConcurrency: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetInvocationRestriction(ctx, "a", &api.InvocationRestriction{Disable: true, Reason: "r"}); err != nil {
		t.Fatal(err)
	}

	want := []api.Kind{api.KindFunction, api.KindVersion, api.KindFunction, api.KindVersion, api.KindAlias, api.KindAlias, api.KindVersion, api.KindVersion, api.KindConcurrency, api.KindRestriction}
	for i, k := range want {
		if e := <-events; e.Kind != k {
			t.Fatalf("event %d: got kind %d, want %d", i, e.Kind, k)
		}
	}

	// Reopened, everything is there; deleting the function takes it all.
	s.Close()
	s2, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if a, err := s2.GetAlias(ctx, "a", "prod"); err != nil || a.VersionID != "1" {
		t.Fatalf("alias after reopen: got %+v, %v", a, err)
	}
	if r, err := s2.InvocationRestriction(ctx, "a"); err != nil || r == nil || r.Reason != "r" {
		t.Fatalf("restriction after reopen: got %+v, %v", r, err)
	}
	if err := s2.DeleteFunction(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s2.CreateFunction(ctx, fn("a")); err != nil {
		t.Fatal(err)
	}
	if vs, _ := s2.ListVersions(ctx, "a"); len(vs) != 0 {
		t.Fatalf("versions of a re-created function: got %d, want 0", len(vs))
	}
	if _, err := s2.GetAlias(ctx, "a", "prod"); !errors.Is(err, api.ErrAliasNotFound) {
		t.Fatalf("alias of a re-created function: got %v, want ErrAliasNotFound", err)
	}
	if _, err := s2.GetConcurrencyConfig(ctx, "a"); !errdefs.IsNotFound(err) {
		t.Fatalf("concurrency of a re-created function: got %v, want NotFound", err)
	}
	if r, _ := s2.InvocationRestriction(ctx, "a"); r != nil {
		t.Fatalf("restriction of a re-created function: got %+v, want none", r)
	}
}

// TestMigrationV3: a version 2 store, with a function in it, gains the
// versioning buckets and keeps its data.
func TestMigrationV3(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Migrate(db, 2); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return putFunction(bucket(tx, bucketFunctions), fn("old")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.db.View(func(tx *bolt.Tx) error {
		if v := schemaVersion(tx); v < 3 {
			t.Errorf("schema version: got %d, want at least 3", v)
		}
		for _, b := range [][]byte{bucketVersions, bucketAliases, bucketConcurrency, bucketRestrictions, bucketProvisionQ} {
			if tx.Bucket(bucketRoot).Bucket(b) == nil {
				t.Errorf("bucket %s missing", b)
			}
		}
		return nil
	})
	if v, err := s.PublishVersion(context.Background(), "old", "", time.Now()); err != nil || v.VersionID != "1" {
		t.Fatalf("publish a version of a function from v2: got %+v, %v", v, err)
	}
}

// TestPublishUnchanged: publishing twice without an update between is
// refused; an update, or deleting the newest version, allows it again; a
// version record from before revisions were kept never counts as the same.
func TestPublishUnchanged(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	if err := s.CreateFunction(ctx, fn("a")); err != nil {
		t.Fatal(err)
	}
	publish := func(want string) {
		t.Helper()
		v, err := s.PublishVersion(ctx, "a", "", now)
		if err != nil || v.VersionID != want {
			t.Fatalf("publish: got %+v, %v; want version %s", v, err, want)
		}
	}
	unchanged := func(what string) {
		t.Helper()
		if _, err := s.PublishVersion(ctx, "a", "", now); !errors.Is(err, api.ErrVersionUnchanged) {
			t.Fatalf("publish %s: got %v, want ErrVersionUnchanged", what, err)
		}
	}
	publish("1")
	unchanged("right after version 1")
	if _, err := s.UpdateFunctionTags(ctx, "a", func(*api.Function) ([]api.Tag, error) { return []api.Tag{{Key: "k", Value: "v"}}, nil }); err != nil {
		t.Fatal(err)
	}
	unchanged("after tagging only")
	if _, err := s.UpdateFunction(ctx, "a", func(f *api.Function) (*api.Function, error) { f.MemorySize = 1024; return f, nil }); err != nil {
		t.Fatal(err)
	}
	publish("2")
	unchanged("right after version 2")
	if err := s.DeleteVersion(ctx, "a", "2"); err != nil {
		t.Fatal(err)
	}
	publish("3") // version 1 froze another revision

	// A record written before revisions were kept: no revision.
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketVersions).Bucket([]byte("a"))
		return b.Put(versionKey(3), []byte(`{"version":{"versionId":"3"},"function":{"functionName":"a"}}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	publish("4")
}
