// Package storetest is the conformance suite of fcd's metadata store: any
// implementation (bbolt today, etcd later) must pass Run.
//
// The contract it holds an implementation to:
//
//   - CRUD of functions, triggers and provision configs, with
//     errdefs.ErrNotFound and errdefs.ErrAlreadyExists as documented on
//     package store's Store.
//   - Every committed change takes the next store revision; Revision
//     reports the last one, and revisions keep increasing across a
//     restart (reopening the same data).
//   - Watch delivers every change committed after it was called, once, in
//     strictly increasing revision order, to every watcher, with the
//     record as written on puts; its channel closes when its context ends.
//     There is no replay of history: a watch after a restart sees only
//     what is committed after it.
//   - Concurrent writers each get their change committed and watched once.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/fcd-dev/fcd/api"
)

// Store is what the suite exercises.
type Store interface {
	CreateFunction(ctx context.Context, f *api.Function) error
	GetFunction(ctx context.Context, name string) (*api.Function, error)
	UpdateFunction(ctx context.Context, name string, change func(*api.Function) (*api.Function, error)) (*api.Function, error)
	DeleteFunction(ctx context.Context, name string) error
	ListFunctions(ctx context.Context, prefix, start string, limit int) ([]*api.Function, string, error)

	CreateTrigger(ctx context.Context, function string, t *api.Trigger) error
	GetTrigger(ctx context.Context, function, name string) (*api.Trigger, error)
	UpdateTrigger(ctx context.Context, function, name string, change func(*api.Trigger) (*api.Trigger, error)) (*api.Trigger, error)
	DeleteTrigger(ctx context.Context, function, name string) error
	ListTriggers(ctx context.Context, function string) ([]*api.Trigger, error)

	PutProvisionConfig(ctx context.Context, name string, pc api.ProvisionConfig) error
	GetProvisionConfig(ctx context.Context, name string) (api.ProvisionConfig, error)
	DeleteProvisionConfig(ctx context.Context, name string) error

	Revision(ctx context.Context) (uint64, error)
	Watch(ctx context.Context) <-chan api.Event
	Close() error
}

// Open opens the implementation's store whose data lives in dir; opening
// the same dir again after Close is a restart.
type Open func(t *testing.T, dir string) Store

// Run runs the suite.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, Open)
	}{
		{"Functions", testFunctions},
		{"Triggers", testTriggers},
		{"Provision", testProvision},
		{"Revisions", testRevisions},
		{"Watch", testWatch},
		{"WatchAfterRestart", testWatchAfterRestart},
		{"WatchClosesWithContext", testWatchCloses},
		{"ConcurrentWriters", testConcurrentWriters},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

func openStore(t *testing.T, open Open, dir string) Store {
	t.Helper()
	s := open(t, dir)
	t.Cleanup(func() { s.Close() })
	return s
}

func newFunction(t *testing.T, name string) *api.Function {
	t.Helper()
	rt, img := api.RuntimeCustomContainer, "r/i:t"
	f, err := api.NewFunction(&api.Input{FunctionName: &name, Runtime: &rt, CustomContainerConfig: &api.ContainerInput{Image: &img}}, "id-"+name, "local", "1", time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func newTrigger(t *testing.T, name string) *api.Trigger {
	t.Helper()
	typ, cfg := api.TriggerTypeHTTP, `{"authType":"anonymous","methods":["GET"]}`
	tr, err := api.NewTrigger(&api.TriggerInput{TriggerName: &name, TriggerType: &typ, TriggerConfig: &cfg}, "tid-"+name, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantCategory(t *testing.T, what string, err, cat error) {
	t.Helper()
	if !errors.Is(err, cat) {
		t.Errorf("%s: got %v, want %v", what, err, cat)
	}
}

func testFunctions(t *testing.T, open Open) {
	ctx := context.Background()
	s := openStore(t, open, t.TempDir())
	f := newFunction(t, "a")
	must(t, s.CreateFunction(ctx, f))
	wantCategory(t, "create twice", s.CreateFunction(ctx, newFunction(t, "a")), errdefs.ErrAlreadyExists)
	got, err := s.GetFunction(ctx, "a")
	must(t, err)
	if got.FunctionName != "a" || got.Revision != f.Revision || f.Revision == 0 {
		t.Errorf("get: got %s revision %d, want a revision %d (non-zero)", got.FunctionName, got.Revision, f.Revision)
	}
	_, err = s.GetFunction(ctx, "nope")
	wantCategory(t, "get missing", err, errdefs.ErrNotFound)

	up, err := s.UpdateFunction(ctx, "a", func(f *api.Function) (*api.Function, error) {
		f.Description = "changed"
		return f, nil
	})
	must(t, err)
	if up.Revision <= f.Revision || up.Description != "changed" {
		t.Errorf("update: got revision %d %q, want > %d and the change", up.Revision, up.Description, f.Revision)
	}
	boom := errors.New("refused")
	if _, err := s.UpdateFunction(ctx, "a", func(*api.Function) (*api.Function, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("update refused by change: got %v, want its error", err)
	}
	_, err = s.UpdateFunction(ctx, "nope", func(f *api.Function) (*api.Function, error) { return f, nil })
	wantCategory(t, "update missing", err, errdefs.ErrNotFound)

	for _, n := range []string{"b1", "b2", "b3", "c"} {
		must(t, s.CreateFunction(ctx, newFunction(t, n)))
	}
	page, next, err := s.ListFunctions(ctx, "b", "", 2)
	must(t, err)
	if len(page) != 2 || page[0].FunctionName != "b1" || page[1].FunctionName != "b2" || next != "b3" {
		t.Errorf("list b, 2: got %d functions, next %q; want b1 b2, next b3", len(page), next)
	}
	page, next, err = s.ListFunctions(ctx, "b", next, 2)
	must(t, err)
	if len(page) != 1 || page[0].FunctionName != "b3" || next != "" {
		t.Errorf("list b from b3: got %d functions, next %q; want b3 alone", len(page), next)
	}

	must(t, s.DeleteFunction(ctx, "a"))
	wantCategory(t, "delete twice", s.DeleteFunction(ctx, "a"), errdefs.ErrNotFound)
	_, err = s.GetFunction(ctx, "a")
	wantCategory(t, "get deleted", err, errdefs.ErrNotFound)
}

func testTriggers(t *testing.T, open Open) {
	ctx := context.Background()
	s := openStore(t, open, t.TempDir())
	wantCategory(t, "trigger of a missing function", s.CreateTrigger(ctx, "fn", newTrigger(t, "h")), errdefs.ErrNotFound)
	must(t, s.CreateFunction(ctx, newFunction(t, "fn")))
	must(t, s.CreateTrigger(ctx, "fn", newTrigger(t, "h")))
	wantCategory(t, "create twice", s.CreateTrigger(ctx, "fn", newTrigger(t, "h")), errdefs.ErrAlreadyExists)
	wantCategory(t, "a second HTTP trigger", s.CreateTrigger(ctx, "fn", newTrigger(t, "h2")), errdefs.ErrAlreadyExists)
	got, err := s.GetTrigger(ctx, "fn", "h")
	must(t, err)
	if got.TriggerName != "h" {
		t.Errorf("get: got %q, want h", got.TriggerName)
	}
	_, err = s.UpdateTrigger(ctx, "fn", "h", func(tr *api.Trigger) (*api.Trigger, error) {
		tr.Description = "changed"
		return tr, nil
	})
	must(t, err)
	if got, _ := s.GetTrigger(ctx, "fn", "h"); got == nil || got.Description != "changed" {
		t.Errorf("update: got %+v, want the change", got)
	}
	list, err := s.ListTriggers(ctx, "fn")
	must(t, err)
	if len(list) != 1 {
		t.Errorf("list: got %d triggers, want 1", len(list))
	}
	must(t, s.DeleteTrigger(ctx, "fn", "h"))
	wantCategory(t, "delete twice", s.DeleteTrigger(ctx, "fn", "h"), errdefs.ErrNotFound)
	_, err = s.GetTrigger(ctx, "fn", "h")
	wantCategory(t, "get deleted", err, errdefs.ErrNotFound)

	must(t, s.CreateTrigger(ctx, "fn", newTrigger(t, "h")))
	must(t, s.DeleteFunction(ctx, "fn"))
	must(t, s.CreateFunction(ctx, newFunction(t, "fn")))
	if list, _ := s.ListTriggers(ctx, "fn"); len(list) != 0 {
		t.Errorf("triggers of a deleted function: got %d, want none", len(list))
	}
}

func testProvision(t *testing.T, open Open) {
	ctx := context.Background()
	s := openStore(t, open, t.TempDir())
	wantCategory(t, "provision of a missing function", s.PutProvisionConfig(ctx, "fn", api.ProvisionConfig{Target: 1}), errdefs.ErrNotFound)
	must(t, s.CreateFunction(ctx, newFunction(t, "fn")))
	_, err := s.GetProvisionConfig(ctx, "fn")
	wantCategory(t, "get unset", err, errdefs.ErrNotFound)
	must(t, s.PutProvisionConfig(ctx, "fn", api.ProvisionConfig{Target: 3}))
	pc, err := s.GetProvisionConfig(ctx, "fn")
	must(t, err)
	if pc.Target != 3 {
		t.Errorf("get: got %d, want 3", pc.Target)
	}
	must(t, s.DeleteProvisionConfig(ctx, "fn"))
	must(t, s.DeleteProvisionConfig(ctx, "fn")) // removing none is no error
	_, err = s.GetProvisionConfig(ctx, "fn")
	wantCategory(t, "get deleted", err, errdefs.ErrNotFound)
}

func revision(t *testing.T, s Store) uint64 {
	t.Helper()
	rev, err := s.Revision(context.Background())
	must(t, err)
	return rev
}

func testRevisions(t *testing.T, open Open) {
	ctx := context.Background()
	s := openStore(t, open, t.TempDir())
	last := revision(t, s)
	writes := []func() error{
		func() error { return s.CreateFunction(ctx, newFunction(t, "fn")) },
		func() error { return s.CreateTrigger(ctx, "fn", newTrigger(t, "h")) },
		func() error { return s.PutProvisionConfig(ctx, "fn", api.ProvisionConfig{Target: 1}) },
		func() error {
			_, err := s.UpdateFunction(ctx, "fn", func(f *api.Function) (*api.Function, error) { return f, nil })
			return err
		},
		func() error { return s.DeleteFunction(ctx, "fn") },
	}
	for i, w := range writes {
		must(t, w())
		rev := revision(t, s)
		if rev <= last {
			t.Errorf("write %d: revision %d, want > %d", i, rev, last)
		}
		last = rev
	}
	// A refused write takes no revision.
	_ = s.DeleteFunction(ctx, "fn")
	if rev := revision(t, s); rev != last {
		t.Errorf("after a failed write: revision %d, want %d", rev, last)
	}
}

// collect reads n events from ch, failing after 10 s.
func collect(t *testing.T, ch <-chan api.Event, n int) []api.Event {
	t.Helper()
	var out []api.Event
	for len(out) < n {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("watch closed after %d of %d events", len(out), n)
			}
			out = append(out, e)
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d of %d events", len(out), n)
		}
	}
	return out
}

func describe(e api.Event) string {
	op := map[api.Op]string{api.OpPut: "put", api.OpDelete: "delete"}[e.Op]
	kind := map[api.Kind]string{api.KindFunction: "function", api.KindTrigger: "trigger", api.KindProvision: "provision"}[e.Kind]
	s := op + " " + kind + " " + e.Function
	if e.TriggerName != "" {
		s += "/" + e.TriggerName
	}
	switch {
	case e.Op == api.OpPut && e.Kind == api.KindFunction && e.FunctionValue != nil:
		s += fmt.Sprintf(" %q", e.FunctionValue.Description)
	case e.Op == api.OpPut && e.Kind == api.KindTrigger && e.TriggerValue != nil:
		s += " " + e.TriggerValue.TriggerName
	case e.Op == api.OpPut && e.Kind == api.KindProvision && e.ProvisionValue != nil:
		s += fmt.Sprintf(" %d", e.ProvisionValue.Target)
	}
	return s
}

func testWatch(t *testing.T, open Open) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openStore(t, open, t.TempDir())
	must(t, s.CreateFunction(ctx, newFunction(t, "before"))) // not watched
	w1 := s.Watch(ctx)
	must(t, s.CreateFunction(ctx, newFunction(t, "fn")))
	_, err := s.UpdateFunction(ctx, "fn", func(f *api.Function) (*api.Function, error) {
		f.Description = "v2"
		return f, nil
	})
	must(t, err)
	w2 := s.Watch(ctx) // sees only what follows
	must(t, s.CreateTrigger(ctx, "fn", newTrigger(t, "h")))
	_, err = s.UpdateTrigger(ctx, "fn", "h", func(tr *api.Trigger) (*api.Trigger, error) { return tr, nil })
	must(t, err)
	must(t, s.PutProvisionConfig(ctx, "fn", api.ProvisionConfig{Target: 2}))
	must(t, s.DeleteProvisionConfig(ctx, "fn"))
	must(t, s.DeleteTrigger(ctx, "fn", "h"))
	must(t, s.DeleteFunction(ctx, "fn"))
	// A refused write is no change.
	_ = s.DeleteFunction(ctx, "fn")
	must(t, s.CreateFunction(ctx, newFunction(t, "last")))

	want := []string{
		`put function fn ""`,
		`put function fn "v2"`,
		"put trigger fn/h h",
		"put trigger fn/h h",
		"put provision fn 2",
		"delete provision fn",
		"delete trigger fn/h",
		"delete function fn",
		`put function last ""`,
	}
	check := func(name string, got []api.Event, want []string) {
		t.Helper()
		var last uint64
		for i, e := range got {
			if d := describe(e); d != want[i] {
				t.Errorf("%s event %d: got %s, want %s", name, i, d, want[i])
			}
			if e.Revision <= last {
				t.Errorf("%s event %d: revision %d after %d, want increasing", name, i, e.Revision, last)
			}
			last = e.Revision
		}
		if rev := revision(t, s); last != rev {
			t.Errorf("%s: last event's revision %d, store's %d; want equal", name, last, rev)
		}
	}
	check("first watcher", collect(t, w1, len(want)), want)
	check("second watcher", collect(t, w2, len(want)-2), want[2:])
}

func testWatchAfterRestart(t *testing.T, open Open) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	s := open(t, dir)
	must(t, s.CreateFunction(ctx, newFunction(t, "fn")))
	before := revision(t, s)
	must(t, s.Close())

	s = openStore(t, open, dir)
	if rev := revision(t, s); rev != before {
		t.Errorf("revision after restart: got %d, want %d", rev, before)
	}
	w := s.Watch(ctx)
	must(t, s.DeleteFunction(ctx, "fn"))
	e := collect(t, w, 1)[0]
	if describe(e) != "delete function fn" || e.Revision <= before {
		t.Errorf("first event after restart: got %s at %d, want delete function fn after %d (no replay)", describe(e), e.Revision, before)
	}
}

func testWatchCloses(t *testing.T, open Open) {
	s := openStore(t, open, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	w := s.Watch(ctx)
	must(t, s.CreateFunction(context.Background(), newFunction(t, "fn")))
	cancel()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-w:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the watch did not close when its context ended")
		}
	}
}

func testConcurrentWriters(t *testing.T, open Open) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openStore(t, open, t.TempDir())
	w := s.Watch(ctx)
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				name := fmt.Sprintf("f%d-%d", i, j)
				f := newFunction(t, name)
				if err := s.CreateFunction(ctx, f); err != nil {
					errs <- err
				}
				if _, err := s.UpdateFunction(ctx, "shared", func(f *api.Function) (*api.Function, error) { return f, nil }); err != nil && !errdefs.IsNotFound(err) {
					errs <- err
				}
			}
		}()
	}
	must(t, s.CreateFunction(ctx, newFunction(t, "shared")))
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write: %v", err)
	}
	rev := revision(t, s)
	seen := map[string]bool{}
	var last uint64
	for last < rev {
		e := collect(t, w, 1)[0]
		if e.Revision <= last {
			t.Fatalf("revision %d after %d, want increasing", e.Revision, last)
		}
		last = e.Revision
		if e.Function != "shared" {
			if seen[e.Function] {
				t.Errorf("%s created twice", e.Function)
			}
			seen[e.Function] = true
		}
	}
	if len(seen) != writers*each {
		t.Errorf("watched %d creations, want %d", len(seen), writers*each)
	}
}
