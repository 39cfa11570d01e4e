package billing

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"
)

func openDB(t *testing.T, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openLedger(t *testing.T, db *bolt.DB) *Ledger {
	t.Helper()
	l, err := Open(db)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// seed writes the ledger of two cold starts of one image (the first pulls,
// the second finds it cached), an invocation of it, and one of another
// function.
func seed(t *testing.T, l *Ledger) []Record {
	t.Helper()
	ctx := context.Background()
	var out []Record
	add := func(r Record, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	add(l.MeterPull(ctx, PullRecord{Function: "hello", Image: "127.0.0.1:5000/examples/hello:v1", InstanceID: "i1",
		MemoryMB: 2048, Start: t0, End: t0.Add(3 * time.Second), Bytes: 1 << 20}))
	add(l.MeterPull(ctx, PullRecord{Function: "hello", Image: "127.0.0.1:5000/examples/hello:v1", InstanceID: "i2",
		MemoryMB: 2048, Start: t0.Add(time.Minute), End: t0.Add(time.Minute + 10*time.Millisecond), CacheHit: true}))
	add(l.MeterInvocation(ctx, InvocationRecord{Function: "hello", RequestID: "r1", InstanceID: "i1",
		MemoryMB: 512, Start: t0.Add(2 * time.Minute), End: t0.Add(2*time.Minute + 500*time.Millisecond)}))
	add(l.MeterInvocation(ctx, InvocationRecord{Function: "other", RequestID: "r2", InstanceID: "i3",
		MemoryMB: 1024, Start: t0.Add(3 * time.Minute), End: t0.Add(3*time.Minute + 2*time.Second)}))
	return out
}

func TestMeterPricing(t *testing.T) {
	recs := seed(t, openLedger(t, openDB(t, filepath.Join(t.TempDir(), "fcd.db"))))
	tests := []struct {
		name     string
		got      Record
		wantGBs  float64
		wantSecs float64
		wantHit  bool
	}{
		{"first cold start pulls", recs[0], 6, 3, false},
		{"second cold start is a cache hit", recs[1], 0, 0.01, true},
		{"invocation", recs[2], 0.25, 0.5, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got.GBSeconds != tt.wantGBs || tt.got.Seconds != tt.wantSecs || tt.got.CacheHit != tt.wantHit {
				t.Errorf("got GBSeconds %v, Seconds %v, CacheHit %v; want %v, %v, %v",
					tt.got.GBSeconds, tt.got.Seconds, tt.got.CacheHit, tt.wantGBs, tt.wantSecs, tt.wantHit)
			}
		})
	}
	for i, r := range recs {
		if r.ID != uint64(i+1) {
			t.Errorf("record %d has ID %d, want %d", i, r.ID, i+1)
		}
	}
}

func TestQuery(t *testing.T) {
	l := openLedger(t, openDB(t, filepath.Join(t.TempDir(), "fcd.db")))
	seed(t, l)
	tests := []struct {
		name    string
		filter  Filter
		wantIDs []uint64
		want    Totals
	}{
		{"all", Filter{}, []uint64{1, 2, 3, 4}, Totals{Records: 4, ColdStarts: 2, CacheHits: 1, PullSeconds: 3.01, PullGBSeconds: 6,
			PullBytes: 1 << 20, Invocations: 2, InvocationSeconds: 2.5, InvocationGBSeconds: 2.25, GBSeconds: 8.25}},
		{"function", Filter{Function: "hello"}, []uint64{1, 2, 3}, Totals{Records: 3, ColdStarts: 2, CacheHits: 1, PullSeconds: 3.01,
			PullGBSeconds: 6, PullBytes: 1 << 20, Invocations: 1, InvocationSeconds: 0.5, InvocationGBSeconds: 0.25, GBSeconds: 6.25}},
		{"kind pull", Filter{Kind: KindPull}, []uint64{1, 2}, Totals{Records: 2, ColdStarts: 2, CacheHits: 1, PullSeconds: 3.01,
			PullGBSeconds: 6, PullBytes: 1 << 20, GBSeconds: 6}},
		{"since", Filter{Since: t0.Add(2 * time.Minute)}, []uint64{3, 4}, Totals{Records: 2, Invocations: 2, InvocationSeconds: 2.5,
			InvocationGBSeconds: 2.25, GBSeconds: 2.25}},
		{"until", Filter{Until: t0.Add(time.Minute)}, []uint64{1}, Totals{Records: 1, ColdStarts: 1, PullSeconds: 3, PullGBSeconds: 6,
			PullBytes: 1 << 20, GBSeconds: 6}},
		{"limit keeps newest, totals all", Filter{Function: "hello", Limit: 1}, []uint64{3}, Totals{Records: 3, ColdStarts: 2, CacheHits: 1,
			PullSeconds: 3.01, PullGBSeconds: 6, PullBytes: 1 << 20, Invocations: 1, InvocationSeconds: 0.5, InvocationGBSeconds: 0.25, GBSeconds: 6.25}},
		{"unknown function", Filter{Function: "nope"}, nil, Totals{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, totals, err := l.Query(context.Background(), tt.filter)
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			var ids []uint64
			for _, r := range recs {
				ids = append(ids, r.ID)
			}
			if !equalIDs(ids, tt.wantIDs) {
				t.Errorf("got IDs %v, want %v", ids, tt.wantIDs)
			}
			if !approxTotals(totals, tt.want) {
				t.Errorf("got totals %+v, want %+v", totals, tt.want)
			}
		})
	}
}

func TestInvalidRecords(t *testing.T) {
	l := openLedger(t, openDB(t, filepath.Join(t.TempDir(), "fcd.db")))
	ctx := context.Background()
	tests := []struct {
		name string
		p    PullRecord
	}{
		{"no function", PullRecord{MemoryMB: 128, Start: t0, End: t0}},
		{"no memory", PullRecord{Function: "f", Start: t0, End: t0}},
		{"no start", PullRecord{Function: "f", MemoryMB: 128}},
		{"end before start", PullRecord{Function: "f", MemoryMB: 128, Start: t0, End: t0.Add(-time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.MeterPull(ctx, tt.p)
			if !errors.Is(err, ErrInvalidRecord) || !errdefs.IsInvalidArgument(err) {
				t.Errorf("MeterPull(%+v) error = %v, want ErrInvalidRecord", tt.p, err)
			}
		})
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.MeterInvocation(cctx, InvocationRecord{Function: "f", MemoryMB: 128, Start: t0, End: t0}); !errors.Is(err, context.Canceled) {
		t.Errorf("MeterInvocation with canceled ctx error = %v, want context.Canceled", err)
	}
	if _, totals, _ := l.Query(ctx, Filter{}); totals.Records != 0 {
		t.Errorf("ledger has %d records after only refused writes, want 0", totals.Records)
	}
}

// TestDurableAcrossReopen is the restart case: records written, the file
// closed (as fcd stops), reopened: everything is still there and new IDs
// continue after the old ones.
func TestDurableAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fcd.db")
	db := openDB(t, path)
	want := seed(t, openLedger(t, db))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	l := openLedger(t, openDB(t, path))
	got, totals, err := l.Query(context.Background(), Filter{Function: "hello", Kind: KindPull})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || totals.PullGBSeconds != 6 || totals.CacheHits != 1 {
		t.Fatalf("after reopen got %d pull records, %v GB-s, %d cache hits; want 2, 6, 1", len(got), totals.PullGBSeconds, totals.CacheHits)
	}
	if !got[0].Start.Equal(want[0].Start) || got[0].Image != want[0].Image || got[1].CacheHit != true {
		t.Errorf("after reopen got %+v, want %+v", got[:2], want[:2])
	}
	r, err := l.MeterInvocation(context.Background(), InvocationRecord{Function: "hello", MemoryMB: 128, Start: t0, End: t0})
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != uint64(len(want)+1) {
		t.Errorf("first ID after reopen = %d, want %d", r.ID, len(want)+1)
	}
}

func TestMigration1(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "fcd.db"))
	if err := migrate(db, 1); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketRoot)
		if got := schemaVersion(tx); got != 1 {
			t.Errorf("version = %d, want 1", got)
		}
		if root.Bucket(bucketRecords) == nil || root.Bucket(bucketMeta) == nil {
			t.Error("records or meta bucket missing after migration 1")
		}
		if root.Bucket(bucketFunctions) != nil {
			t.Error("functions bucket exists after migration 1 alone, want it from migration 2")
		}
		return nil
	})
}

// TestMigration2 writes records as a version-1 ledger held them (no
// index), migrates, and checks the index answers per-function queries.
func TestMigration2(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "fcd.db"))
	if err := migrate(db, 1); err != nil {
		t.Fatal(err)
	}
	v1 := []Record{
		{ID: 1, Kind: KindPull, Function: "a", Start: t0, End: t0.Add(time.Second), Seconds: 1, MemoryMB: 1024, GBSeconds: 1},
		{ID: 2, Kind: KindInvocation, Function: "b", Start: t0, End: t0.Add(time.Second), Seconds: 1, MemoryMB: 2048, GBSeconds: 2},
		{ID: 3, Kind: KindInvocation, Function: "a", Start: t0, End: t0.Add(time.Second), Seconds: 1, MemoryMB: 512, GBSeconds: 0.5},
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRoot).Bucket(bucketRecords)
		for _, r := range v1 {
			data, _ := json.Marshal(r)
			if err := b.Put(idKey(r.ID), data); err != nil {
				return err
			}
		}
		return b.SetSequence(3)
	}); err != nil {
		t.Fatal(err)
	}

	l := openLedger(t, db) // runs migration 2
	db.View(func(tx *bolt.Tx) error {
		if got := schemaVersion(tx); got != 2 {
			t.Errorf("version = %d, want 2", got)
		}
		return nil
	})
	recs, totals, err := l.Query(context.Background(), Filter{Function: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].ID != 1 || recs[1].ID != 3 || totals.GBSeconds != 1.5 {
		t.Errorf("function a after migration: %d records, GB-s %v; want IDs [1 3], 1.5", len(recs), totals.GBSeconds)
	}
	if got, want := SchemaVersion(), uint64(len(migrations)); got != want {
		t.Errorf("SchemaVersion = %d, want %d", got, want)
	}
}

func equalIDs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// approxTotals compares totals, allowing float rounding in sums.
func approxTotals(a, b Totals) bool {
	near := func(x, y float64) bool { d := x - y; return d < 1e-9 && d > -1e-9 }
	return a.Records == b.Records && a.ColdStarts == b.ColdStarts && a.CacheHits == b.CacheHits &&
		a.PullBytes == b.PullBytes && a.Invocations == b.Invocations &&
		near(a.PullSeconds, b.PullSeconds) && near(a.PullGBSeconds, b.PullGBSeconds) &&
		near(a.InvocationSeconds, b.InvocationSeconds) && near(a.InvocationGBSeconds, b.InvocationGBSeconds) &&
		near(a.GBSeconds, b.GBSeconds)
}
