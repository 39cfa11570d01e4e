package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/api"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fcd.db")
	s, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func fn(name string) *api.Function {
	return &api.Function{FunctionName: name, Runtime: api.RuntimeCustomContainer, MemorySize: 512,
		CustomContainerConfig: &api.CustomContainerConfig{Image: "r/i:t"}}
}

func TestFunctionCRUD(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	if err := s.CreateFunction(ctx, fn("a")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFunction(ctx, fn("a")); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("duplicate create: got %v, want ErrAlreadyExists", err)
	}
	got, err := s.GetFunction(ctx, "a")
	if err != nil || got.CustomContainerConfig.Image != "r/i:t" {
		t.Fatalf("get: got %+v, %v", got, err)
	}
	if _, err := s.GetFunction(ctx, "missing"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("get missing: got %v, want ErrNotFound", err)
	}
	u, err := s.UpdateFunction(ctx, "a", func(f *api.Function) (*api.Function, error) {
		f.MemorySize = 1024
		return f, nil
	})
	if err != nil || u.MemorySize != 1024 {
		t.Fatalf("update: got %+v, %v", u, err)
	}
	if reread, _ := s.GetFunction(ctx, "a"); reread.Revision != u.Revision || u.Revision <= got.Revision {
		t.Fatalf("revisions: created %d, updated %d, read back %d; want growing and persisted", got.Revision, u.Revision, reread.Revision)
	}
	boom := errors.New("boom")
	if _, err := s.UpdateFunction(ctx, "a", func(f *api.Function) (*api.Function, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("aborted update: got %v, want boom", err)
	}
	if got, _ := s.GetFunction(ctx, "a"); got.MemorySize != 1024 {
		t.Fatalf("aborted update changed the function: memory %d", got.MemorySize)
	}
	if _, err := s.UpdateFunction(ctx, "missing", func(f *api.Function) (*api.Function, error) { return f, nil }); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("update missing: got %v, want ErrNotFound", err)
	}
	if err := s.PutProvisionConfig(ctx, "a", ProvisionConfig{Target: 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFunction(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFunction(ctx, "a"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second delete: got %v, want ErrNotFound", err)
	}
	if _, err := s.GetProvisionConfig(ctx, "a"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("provision config outlived its function: %v", err)
	}
}

func TestListFunctionsPages(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	for i := 0; i < 7; i++ {
		if err := s.CreateFunction(ctx, fn(fmt.Sprintf("f%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateFunction(ctx, fn("other")); err != nil {
		t.Fatal(err)
	}
	var names []string
	start := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		fns, next, err := s.ListFunctions(ctx, "f", start, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fns {
			names = append(names, f.FunctionName)
		}
		if next == "" {
			break
		}
		start = next
	}
	if got, want := fmt.Sprint(names), "[f0 f1 f2 f3 f4 f5 f6]"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestReopenKeepsFunctions(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if err := s.CreateFunction(ctx, fn("keep")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.GetFunction(ctx, "keep"); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

func TestMigrations(t *testing.T) {
	t.Run("fresh store reaches the newest version", func(t *testing.T) {
		s, _ := openTemp(t)
		var v uint64
		s.db.View(func(tx *bolt.Tx) error { v = schemaVersion(tx); return nil })
		if v != SchemaVersion() {
			t.Fatalf("got version %d, want %d", v, SchemaVersion())
		}
	})
	t.Run("v2 adds the triggers bucket to a v1 store", func(t *testing.T) {
		db, err := bolt.Open(filepath.Join(t.TempDir(), "m.db"), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		err = schema.Migrate(db, 1)
		if err == nil {
			err = schema.Migrate(db, 2)
		}
		if err != nil {
			t.Fatal(err)
		}
		db.View(func(tx *bolt.Tx) error {
			if tx.Bucket(bucketRoot).Bucket(bucketTriggers) == nil {
				t.Error("bucket triggers missing")
			}
			return nil
		})
	})
	t.Run("v1 creates the buckets", func(t *testing.T) {
		db, err := bolt.Open(filepath.Join(t.TempDir(), "m.db"), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		err = schema.Migrate(db, 1)
		if err != nil {
			t.Fatal(err)
		}
		db.View(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketMeta, bucketFunctions, bucketProvision} {
				if tx.Bucket(bucketRoot).Bucket(b) == nil {
					t.Errorf("bucket %s missing", b)
				}
			}
			return nil
		})
	})
	t.Run("newer schema is refused", func(t *testing.T) {
		s, path := openTemp(t)
		s.db.Update(func(tx *bolt.Tx) error { return schema.SetVersion(tx, SchemaVersion()+1) })
		s.Close()
		if _, err := Open(path, 0); err == nil {
			t.Fatal("got nil, want an error for a newer schema")
		}
	})
}

func TestTriggers(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	trig := &api.Trigger{TriggerName: "web", TriggerType: api.TriggerTypeHTTP, TriggerConfig: "{}"}
	if err := s.CreateTrigger(ctx, "nofn", trig); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("trigger of a missing function: got %v, want ErrNotFound", err)
	}
	for _, name := range []string{"a", "ab"} {
		if err := s.CreateFunction(ctx, fn(name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateTrigger(ctx, "a", trig); err != nil {
		t.Fatal(err)
	}
	second := &api.Trigger{TriggerName: "web2", TriggerType: api.TriggerTypeHTTP, TriggerConfig: "{}"}
	if err := s.CreateTrigger(ctx, "a", second); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second http trigger: got %v, want ErrAlreadyExists", err)
	}
	if err := s.CreateTrigger(ctx, "ab", second); err != nil {
		t.Fatal(err)
	}
	// "a" must not see the triggers of "ab", whose name it prefixes.
	if ts, _ := s.ListTriggers(ctx, "a"); len(ts) != 1 || ts[0].TriggerName != "web" {
		t.Fatalf("triggers of a: got %v", ts)
	}
	if _, err := s.UpdateTrigger(ctx, "a", "web", func(t *api.Trigger) (*api.Trigger, error) {
		t.Description = "d"
		return t, nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetTrigger(ctx, "a", "web"); got.Description != "d" {
		t.Fatalf("update lost: %+v", got)
	}
	if err := s.DeleteFunction(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if ts, _ := s.ListTriggers(ctx, "a"); len(ts) != 0 {
		t.Fatalf("triggers outlived their function: %v", ts)
	}
	if ts, _ := s.ListTriggers(ctx, "ab"); len(ts) != 1 {
		t.Fatalf("deleting a removed the triggers of ab: %v", ts)
	}
	if err := s.DeleteTrigger(ctx, "ab", "web2"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTrigger(ctx, "ab", "web2"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second delete: got %v, want ErrNotFound", err)
	}
}
