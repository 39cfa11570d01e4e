package scheduler

import (
	"context"
	"errors"
	"testing"
)

// TestVersionPools: each version of a function has instances of its own,
// an update of the latest configuration does not drain a version, and
// Remove takes every version.
func TestVersionPools(t *testing.T) {
	st := &fakeStarter{}
	s := newTest(t, st, Options{})
	ctx := context.Background()
	latest := echoFn(1)
	v1 := latest
	v1.Version, v1.Revision = "1", "v1"
	for _, fn := range []Function{latest, v1} {
		l, err := s.Acquire(ctx, fn)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.Instance().(*fakeInstance).fn.Version; got != fn.Version {
			t.Errorf("lease for version %q: instance runs %q", fn.Version, got)
		}
		l.Release()
	}
	if got := st.attempted(); got != 2 {
		t.Fatalf("starts: got %d, want 2 (one per version)", got)
	}
	infos := s.Instances("echo")
	if len(infos) != 2 || infos[0].Version != "" || infos[1].Version != "1" {
		t.Fatalf("Instances: got %+v, want the latest's then version 1's", infos)
	}

	updated := latest
	updated.Revision = "r2"
	s.Update(updated)
	eventually(t, "the latest's old instance stopped", func() bool { return st.started()[0].stopped.Load() })
	if st.started()[1].stopped.Load() {
		t.Fatal("updating the latest configuration stopped version 1's instance")
	}
	s.Remove("echo")
	eventually(t, "version 1's instance stopped", func() bool { return st.started()[1].stopped.Load() })
	if got := s.Instances("echo"); len(got) != 0 {
		t.Fatalf("Instances after Remove: got %+v, want none", got)
	}
}

// TestConcurrencyLimit: a function's reserved concurrency caps its leases
// over all versions; past it Acquire fails at once; 0 refuses every
// request; lifting it lets requests through again.
func TestConcurrencyLimit(t *testing.T) {
	st := &fakeStarter{}
	s := newTest(t, st, Options{})
	ctx := context.Background()
	latest := echoFn(10)
	v1 := latest
	v1.Version = "1"
	s.SetConcurrencyLimit("echo", 2)
	a, err := s.Acquire(ctx, latest)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Acquire(ctx, v1)
	if err != nil {
		t.Fatal(err)
	}
	var le *LimitError
	if _, err := s.Acquire(ctx, latest); !errors.As(err, &le) || le.Limit != 2 {
		t.Fatalf("third request over a limit of 2: got %v, want a LimitError", err)
	}
	other := echoFn(1)
	other.Name = "other"
	if l, err := s.Acquire(ctx, other); err != nil {
		t.Fatalf("another function is not limited: %v", err)
	} else {
		l.Release()
	}
	a.Release()
	a.Release() // a second end is a no-op and gives nothing back twice
	c, err := s.Acquire(ctx, v1)
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if _, err := s.Acquire(ctx, v1); !errors.As(err, &le) {
		t.Fatalf("at the limit again: got %v, want a LimitError", err)
	}
	b.Fail(errors.New("broke"))
	c.Release()

	s.SetConcurrencyLimit("echo", 0)
	if _, err := s.Acquire(ctx, latest); !errors.As(err, &le) || le.Limit != 0 {
		t.Fatalf("limit 0: got %v, want a LimitError", err)
	}
	s.SetConcurrencyLimit("echo", -1)
	for range 3 {
		l, err := s.Acquire(ctx, latest)
		if err != nil {
			t.Fatalf("limit lifted: %v", err)
		}
		defer l.Release()
	}
}
