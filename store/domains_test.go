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

func TestMigrationV4AddsDomains(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "m.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := schema.Migrate(db, 3); err != nil {
		t.Fatal(err)
	}
	if err := schema.Migrate(db, 4); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRoot).Bucket(bucketDomains) == nil {
			t.Error("bucket domains missing")
		}
		return nil
	})
}

func TestCustomDomains(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := s.Watch(wctx)
	d := func(name string) *api.CustomDomain {
		return &api.CustomDomain{DomainName: name, Protocol: api.ProtocolHTTP,
			RouteConfig: &api.RouteConfig{Routes: []api.PathConfig{{Path: "/*", FunctionName: "f"}}}}
	}
	for _, name := range []string{"a.example.com", "b.example.com", "c.other.com"} {
		if err := s.CreateCustomDomain(ctx, d(name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateCustomDomain(ctx, d("a.example.com")); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("duplicate: got %v, want AlreadyExists", err)
	}
	page, next, err := s.ListCustomDomains(ctx, "", "", 2)
	if err != nil || len(page) != 2 || next != "c.other.com" {
		t.Fatalf("first page: got %d, next %q, %v; want 2, c.other.com", len(page), next, err)
	}
	if page, _, _ := s.ListCustomDomains(ctx, "b.", "", 0); len(page) != 1 || page[0].DomainName != "b.example.com" {
		t.Errorf("prefix b.: got %v", page)
	}
	got, err := s.UpdateCustomDomain(ctx, "a.example.com", func(d *api.CustomDomain) (*api.CustomDomain, error) {
		d.RouteConfig = nil
		return d, nil
	})
	if err != nil || got.RouteConfig != nil {
		t.Fatalf("update: got %+v, %v", got, err)
	}
	if err := s.DeleteCustomDomain(ctx, "a.example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetCustomDomain(ctx, "a.example.com"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("get after delete: got %v, want NotFound", err)
	}
	if err := s.DeleteCustomDomain(ctx, "a.example.com"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second delete: got %v, want NotFound", err)
	}
	// Three creates, an update and a delete reach the watch.
	want := []api.Op{api.OpPut, api.OpPut, api.OpPut, api.OpPut, api.OpDelete}
	for i, op := range want {
		select {
		case e := <-events:
			if e.Kind != api.KindCustomDomain || e.Op != op || e.DomainName == "" {
				t.Errorf("event %d: got %+v, want a %v of a custom domain", i, e, op)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d never came", i)
		}
	}
}
