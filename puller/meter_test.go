package puller_test

import (
	"context"
	"sync"
	"testing"

	"github.com/fcd-dev/fcd/billing"
	"github.com/fcd-dev/fcd/instance/image"
	"github.com/fcd-dev/fcd/puller"
)

// recordingMeter is a puller.Meter that keeps what it is given.
type recordingMeter struct {
	mu      sync.Mutex
	records []billing.PullRecord
}

func (m *recordingMeter) MeterPull(_ context.Context, r billing.PullRecord) (billing.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records = append(m.records, r)
	return billing.Record{}, nil
}

func (m *recordingMeter) take() []billing.PullRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.records
	m.records = nil
	return r
}

// TestPrepareMeters checks that a pull is metered once, when its instance
// is ready, and not at all when it never is; a cached image is a free
// cache hit.
func TestPrepareMeters(t *testing.T) {
	c := setup(t)
	host := newRegistry(t, nil)
	ref := host + "/test/metered:v1"
	push(t, ref, randomImage(t, 4096, 2))
	var meter recordingMeter
	p := newPuller(t, c, puller.Options{Meter: &meter})
	ctx := context.Background()
	opts := func(id string) image.Options {
		return image.Options{Key: "meter-" + id, Function: "fn", InstanceID: id, MemoryMB: 256}
	}

	cold, err := p.Prepare(ctx, ref, opts("cold"))
	if err != nil {
		t.Fatal(err)
	}
	defer cold.Release(ctx)
	if got := meter.take(); len(got) != 0 {
		t.Fatalf("before Ready: got %d records, want none", len(got))
	}
	for range 2 {
		if err := cold.Ready(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := meter.take()
	if len(got) != 1 {
		t.Fatalf("after Ready twice: got %d records, want 1", len(got))
	}
	r, st := got[0], cold.Stats()
	if r.Function != "fn" || r.InstanceID != "cold" || r.MemoryMB != 256 || r.Image != ref {
		t.Errorf("record: got %+v, want function fn, instance cold, 256 MB, image %s", r, ref)
	}
	if r.CacheHit || r.Bytes != st.BytesFetched || r.Bytes == 0 || r.End.Sub(r.Start) != st.Duration {
		t.Errorf("record: got %+v, want a paid pull of %d bytes lasting %s", r, st.BytesFetched, st.Duration)
	}

	failed, err := p.Prepare(ctx, ref, opts("failed"))
	if err != nil {
		t.Fatal(err)
	}
	if err := failed.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if got := meter.take(); len(got) != 0 {
		t.Errorf("released without Ready: got %+v, want no record", got)
	}

	warm, err := p.Prepare(ctx, ref, opts("warm"))
	if err != nil {
		t.Fatal(err)
	}
	defer warm.Release(ctx)
	if err := warm.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if got := meter.take(); len(got) != 1 || !got[0].CacheHit || got[0].Bytes != 0 {
		t.Errorf("cached image: got %+v, want one free cache hit", got)
	}
}
