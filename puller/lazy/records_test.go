package lazy

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

func openDB(t *testing.T, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestRecords keeps a record across a reopen of the file, finds it by its
// image and by the image it was converted from, and replaces it.
func TestRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fcd.db")
	db := openDB(t, path)
	rs, err := OpenRecords(db)
	if err != nil {
		t.Fatal(err)
	}
	img, src := digest.FromString("accelerated"), digest.FromString("source")
	if _, ok, err := rs.Get(img); ok || err != nil {
		t.Fatalf("Get of an unknown image: %v, %v", ok, err)
	}
	rec := Record{Image: img, Source: src, Layers: []digest.Digest{digest.FromString("l0")}, Reads: []Read{
		{File: "usr/lib/b.so", Off: 0, N: 8192},
		{File: "app/main.py", Off: 0, N: 100},
		{File: "usr/lib/b.so", Off: 65536, N: 4096},
	}}
	if err := rs.Put(rec); err != nil {
		t.Fatal(err)
	}
	db.Close()
	rs, err = OpenRecords(openDB(t, path))
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := rs.Get(img)
	if !ok || err != nil || fmt.Sprint(got.Reads) != fmt.Sprint(rec.Reads) || got.Source != src {
		t.Fatalf("got %+v, %v, %v after reopen; want %+v", got, ok, err, rec)
	}
	for _, d := range []digest.Digest{src, img} {
		files, err := rs.StartupFiles(context.Background(), d.String())
		if want := "[/usr/lib/b.so /app/main.py]"; err != nil || fmt.Sprint(files) != want {
			t.Errorf("StartupFiles(%s) = %q, %v; want %s", d, files, err, want)
		}
	}
	rec.Reads = rec.Reads[1:2]
	if err := rs.Put(rec); err != nil {
		t.Fatal(err)
	}
	if files, _ := rs.StartupFiles(context.Background(), src.String()); fmt.Sprint(files) != "[/app/main.py]" {
		t.Errorf("after a new record, StartupFiles = %q, want the new one's", files)
	}
	if files, err := rs.StartupFiles(context.Background(), digest.FromString("other").String()); files != nil || err != nil {
		t.Errorf("StartupFiles of an image without a record = %q, %v", files, err)
	}
}

func TestRecordsMigrations(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "fcd.db"))
	if _, err := OpenRecords(db); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bolt.Tx) error {
		if v := schema.Version(tx); v != schema.Latest() {
			t.Errorf("got version %d, want %d", v, schema.Latest())
		}
		for _, b := range [][]byte{bucketRecords, bucketSources} {
			if tx.Bucket(bucketRoot).Bucket(b) == nil {
				t.Errorf("bucket %s missing", b)
			}
		}
		return nil
	})
	db.Update(func(tx *bolt.Tx) error { return schema.SetVersion(tx, schema.Latest()+1) })
	if _, err := OpenRecords(db); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("got %v, want a newer schema refused", err)
	}
}

// TestRecorderNote: reads are kept in the order first made; a read that
// continues a recorded read of its file extends it, one inside it is left
// out.
func TestRecorderNote(t *testing.T) {
	r := &startupRecorder{byFile: make(map[fileKey][]int)}
	for _, rd := range []Read{
		{0, "a", 0, 4096},
		{1, "b", 8192, 4096},
		{0, "a", 4096, 4096}, // continues a
		{0, "a", 0, 1024},    // inside a
		{1, "b", 0, 4096},    // before b: a new read
		{1, "a", 0, 4096},    // another layer's a
		{1, "b", 8192, 8192}, // overlaps b's end
	} {
		r.note(rd.Layer, rd.File, rd.Off, rd.N)
	}
	want := []Read{{0, "a", 0, 8192}, {1, "b", 8192, 8192}, {1, "b", 0, 4096}, {1, "a", 0, 4096}}
	if fmt.Sprint(r.reads) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", r.reads, want)
	}
}

func TestLeafNames(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{nil, []string{}},
		{[]string{"usr", "usr/lib", "usr/lib/node", "usr/lib/x.js", "etc", "missing"}, []string{"usr/lib/node", "usr/lib/x.js", "etc", "missing"}},
		{[]string{"a/b/c", "a", "a/b"}, []string{"a/b/c"}},
		{[]string{"ab", "a/b"}, []string{"ab", "a/b"}},
	} {
		if got := leafNames(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("leafNames(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
