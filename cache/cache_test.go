package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
)

// tickClock is a fake clock that moves one second forward on every read,
// so every access gets a distinct time and LRU order on disk is exact.
type tickClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTickClock() *tickClock {
	return &tickClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *tickClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// blob returns size deterministic bytes distinct per seed, and their digest.
func blob(seed, size int) ([]byte, digest.Digest) {
	b := make([]byte, size)
	x := uint32(seed*2654435761 + 1)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b, digest.FromBytes(b)
}

func openCache(t testing.TB, dir string, opts Options) *Cache {
	t.Helper()
	c, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func mustPut(t testing.TB, c *Cache, b []byte, d digest.Digest) {
	t.Helper()
	if err := c.Put(context.Background(), d, bytes.NewReader(b)); err != nil {
		t.Fatalf("Put(%s): %v", d, err)
	}
}

// dirNames lists the names in dir, sorted.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	sort.Strings(names)
	return names
}

func TestPutOpenRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, 4097, 1 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			c := openCache(t, dir, Options{})
			b, d := blob(size, size)
			mustPut(t, c, b, d)

			r, err := c.Open(ctx, d)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer r.Close()
			if r.Size() != int64(size) {
				t.Errorf("Size: got %d, want %d", r.Size(), size)
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, b) {
				t.Errorf("ReadAll: got %d bytes, want the %d put", len(got), len(b))
			}
			if size > 10 {
				p := make([]byte, 7)
				if _, err := r.ReadAt(p, 3); err != nil || !bytes.Equal(p, b[3:10]) {
					t.Errorf("ReadAt(3): got %x, %v, want %x", p, err, b[3:10])
				}
				if n, err := c.ReadAt(ctx, d, p, int64(size-2)); n != 2 || err != io.EOF {
					t.Errorf("Cache.ReadAt at end: got %d, %v, want 2, EOF", n, err)
				}
			}
			if _, err := r.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			if err := r.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := r.Close(); err != nil {
				t.Errorf("second Close: got %v, want nil", err)
			}
			onDisk, err := os.ReadFile(filepath.Join(dir, "sha256", d.Encoded()))
			if err != nil || !bytes.Equal(onDisk, b) {
				t.Errorf("file sha256/%s: got %d bytes, %v, want the blob", d.Encoded(), len(onDisk), err)
			}
			if names := dirNames(t, filepath.Join(dir, "tmp")); len(names) != 0 {
				t.Errorf("tmp: got %v, want empty", names)
			}
			// A second Put of a stored digest reads nothing and succeeds.
			if err := c.Put(ctx, d, iotestErrReader{}); err != nil {
				t.Errorf("Put of stored digest: got %v, want nil", err)
			}
			if st := c.Stats(); st.Entries != 1 || st.Bytes != int64(size) || st.Hits < 1 {
				t.Errorf("Stats: got %+v, want 1 entry of %d bytes and hits", st, size)
			}
		})
	}
}

// iotestErrReader fails every read; it stands for a body that must not be read.
type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("read called") }

func TestPutRefused(t *testing.T) {
	good, goodD := blob(1, 1000)
	other, _ := blob(2, 1000)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		d       digest.Digest
		data    []byte
		max     int64
		wantErr error
		wantCat func(error) bool
	}{
		{"mismatch", context.Background(), goodD, other, 0, ErrDigestMismatch, errdefs.IsInvalidArgument},
		{"truncated", context.Background(), goodD, good[:999], 0, ErrDigestMismatch, errdefs.IsInvalidArgument},
		{"sha512", context.Background(), digest.Digest("sha512:" + strings.Repeat("ab", 64)), good, 0, ErrInvalidDigest, errdefs.IsInvalidArgument},
		{"malformed", context.Background(), digest.Digest("sha256:xyz"), good, 0, ErrInvalidDigest, errdefs.IsInvalidArgument},
		{"too large", context.Background(), goodD, good, 999, ErrTooLarge, errdefs.IsResourceExhausted},
		{"canceled", canceled, goodD, good, 0, context.Canceled, func(error) bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c := openCache(t, dir, Options{MaxBytes: tt.max})
			err := c.Put(tt.ctx, tt.d, bytes.NewReader(tt.data))
			if !errors.Is(err, tt.wantErr) || !tt.wantCat(err) {
				t.Fatalf("Put: got %v, want %v", err, tt.wantErr)
			}
			if c.Has(tt.d) {
				t.Errorf("Has after refused Put: got true, want false")
			}
			for _, sub := range []string{"sha256", "tmp"} {
				if names := dirNames(t, filepath.Join(dir, sub)); len(names) != 0 {
					t.Errorf("%s: got %v, want empty", sub, names)
				}
			}
			if st := c.Stats(); st.Entries != 0 || st.Bytes != 0 {
				t.Errorf("Stats: got %+v, want empty", st)
			}
		})
	}
}

func TestConcurrentPutSameDigest(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, Options{})
	b, d := blob(7, 256<<10)
	const n = 8
	errs := make(chan error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs <- c.Put(context.Background(), d, bytes.NewReader(b))
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Put: got %v, want nil", err)
		}
	}
	if st := c.Stats(); st.Entries != 1 || st.Bytes != int64(len(b)) {
		t.Errorf("Stats: got %+v, want 1 entry of %d bytes", st, len(b))
	}
	if names := dirNames(t, filepath.Join(dir, "tmp")); len(names) != 0 {
		t.Errorf("tmp: got %v, want empty", names)
	}
	got, err := os.ReadFile(filepath.Join(dir, "sha256", d.Encoded()))
	if err != nil || !bytes.Equal(got, b) {
		t.Errorf("entry file: got %d bytes, %v, want the blob", len(got), err)
	}
}

// op is one step of an eviction scenario: "put:x" or "open:x" (open and
// close at once), with x a letter naming a blob.
type op string

func runOps(t *testing.T, c *Cache, blobs map[string][]byte, ops []op) {
	t.Helper()
	for _, o := range ops {
		verb, name, _ := strings.Cut(string(o), ":")
		b := blobs[name]
		d := digest.FromBytes(b)
		switch verb {
		case "put":
			mustPut(t, c, b, d)
		case "open":
			r, err := c.Open(context.Background(), d)
			if err != nil {
				t.Fatalf("%s: %v", o, err)
			}
			r.Close()
		default:
			t.Fatalf("bad op %q", o)
		}
	}
}

func TestEvictionLRU(t *testing.T) {
	const size = 1000
	blobs := map[string][]byte{}
	for i, name := range []string{"a", "b", "c", "d", "e"} {
		blobs[name], _ = blob(100+i, size)
	}
	tests := []struct {
		name          string
		max           int64
		ops           []op
		want          string // stored blobs, in any order
		wantEvictions uint64
	}{
		{"under budget", 3 * size, []op{"put:a", "put:b", "put:c"}, "abc", 0},
		{"oldest put goes", 3 * size, []op{"put:a", "put:b", "put:c", "put:d"}, "bcd", 1},
		{"open refreshes", 3 * size, []op{"put:a", "put:b", "put:c", "open:a", "put:d"}, "acd", 1},
		{"re-put refreshes", 3 * size, []op{"put:a", "put:b", "put:c", "put:a", "put:d"}, "acd", 1},
		{"several go", 2*size + size/2, []op{"put:a", "put:b", "open:a", "put:c", "put:d", "put:e"}, "de", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openCache(t, t.TempDir(), Options{MaxBytes: tt.max, Now: newTickClock().Now})
			runOps(t, c, blobs, tt.ops)
			var got string
			for _, name := range []string{"a", "b", "c", "d", "e"} {
				if c.Has(digest.FromBytes(blobs[name])) {
					got += name
				}
			}
			if got != tt.want {
				t.Errorf("stored: got %q, want %q", got, tt.want)
			}
			st := c.Stats()
			if st.Evictions != tt.wantEvictions || st.Bytes != int64(len(tt.want)*size) || st.Bytes > tt.max {
				t.Errorf("Stats: got %+v, want %d evictions, %d bytes", st, tt.wantEvictions, len(tt.want)*size)
			}
		})
	}
}

func TestPinnedSurvivesEviction(t *testing.T) {
	ctx := context.Background()
	const size = 1000
	c := openCache(t, t.TempDir(), Options{MaxBytes: 2 * size, Now: newTickClock().Now})
	var bs [5][]byte
	var ds [5]digest.Digest
	for i := range bs {
		bs[i], ds[i] = blob(200+i, size)
	}
	mustPut(t, c, bs[0], ds[0])
	pinned, err := c.Open(ctx, ds[0])
	if err != nil {
		t.Fatal(err)
	}
	// Each Put must evict, and the pinned, least recently used entry must
	// not be the one to go.
	for i := 1; i < 4; i++ {
		mustPut(t, c, bs[i], ds[i])
	}
	if !c.Has(ds[0]) {
		t.Fatalf("pinned entry evicted")
	}
	if info, _ := c.Stat(ds[0]); info.Pinned != 1 {
		t.Errorf("Stat.Pinned: got %d, want 1", info.Pinned)
	}
	got, err := io.ReadAll(pinned)
	if err != nil || !bytes.Equal(got, bs[0]) {
		t.Errorf("read pinned: got %d bytes, %v, want the blob", len(got), err)
	}

	// Pin a second entry so the budget cannot be met: the store goes over
	// budget rather than evict a pinned entry, and catches up on Close.
	second, err := c.Open(ctx, ds[3])
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, c, bs[4], ds[4])
	if st := c.Stats(); st.Bytes != 3*size {
		t.Errorf("bytes with two pinned: got %d, want %d", st.Bytes, 3*size)
	}
	for i, d := range []digest.Digest{ds[0], ds[3], ds[4]} {
		if !c.Has(d) {
			t.Errorf("entry %d: gone, want stored (pinned or just put)", i)
		}
	}
	if err := pinned.Close(); err != nil {
		t.Fatal(err)
	}
	if c.Has(ds[0]) {
		t.Errorf("least recently used entry kept after its Reader closed over budget")
	}
	if st := c.Stats(); st.Bytes != 2*size {
		t.Errorf("bytes after Close: got %d, want %d", st.Bytes, 2*size)
	}
	second.Close()
}

// corruptFile flips a byte of the entry's file in place.
func corruptFile(t *testing.T, dir string, d digest.Digest) {
	t.Helper()
	p := filepath.Join(dir, "sha256", d.Encoded())
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{0xff ^ 0x5a}, 10); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := openCache(t, dir, Options{})
	good, goodD := blob(300, 4096)
	bad, badD := blob(301, 4096)
	short, shortD := blob(302, 4096)
	mustPut(t, c, good, goodD)
	mustPut(t, c, bad, badD)
	mustPut(t, c, short, shortD)
	corruptFile(t, dir, badD)
	if bad[10] == 0xff^0x5a {
		t.Fatal("test blob already holds the corrupting byte")
	}
	if err := os.Truncate(filepath.Join(dir, "sha256", shortD.Encoded()), 100); err != nil {
		t.Fatal(err)
	}
	_, absent := blob(303, 10)

	tests := []struct {
		name     string
		d        digest.Digest
		wantErr  error
		wantKept bool
	}{
		{"intact", goodD, nil, true},
		{"flipped byte", badD, ErrCorrupt, false},
		{"truncated", shortD, ErrCorrupt, false},
		{"absent", absent, errdefs.ErrNotFound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Verify(ctx, tt.d)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Verify: got %v, want %v", err, tt.wantErr)
			}
			if c.Has(tt.d) != tt.wantKept {
				t.Errorf("Has: got %v, want %v", !tt.wantKept, tt.wantKept)
			}
			_, statErr := os.Stat(filepath.Join(dir, "sha256", tt.d.Encoded()))
			if (statErr == nil) != tt.wantKept {
				t.Errorf("file exists: got %v, want %v", statErr == nil, tt.wantKept)
			}
		})
	}
	if st := c.Stats(); st.Corrupted != 2 || st.Entries != 1 || st.Bytes != int64(len(good)) {
		t.Errorf("Stats: got %+v, want 2 corrupted, 1 entry of %d bytes", st, len(good))
	}
	// A dropped entry can be put again.
	mustPut(t, c, bad, badD)
	if err := c.Verify(ctx, badD); err != nil {
		t.Errorf("Verify after re-Put: %v", err)
	}
}

func TestOpenVerifies(t *testing.T) {
	tests := []struct {
		name    string
		mode    VerifyMode
		reopen  bool // corrupt while closed, then reopen the Cache
		wantBad bool // Open reports the corruption
	}{
		{"recovered after reopen", VerifyRecovered, true, true},
		{"recovered, own put trusted", VerifyRecovered, false, false},
		{"always", VerifyAlways, false, true},
		{"never", VerifyNever, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			opts := Options{Verify: tt.mode}
			c, err := Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			b, d := blob(400, 2048)
			mustPut(t, c, b, d)
			corruptFile(t, dir, d)
			if tt.reopen {
				c.Close()
				c = openCache(t, dir, opts)
			} else {
				t.Cleanup(func() { c.Close() })
			}
			r, err := c.Open(ctx, d)
			if tt.wantBad {
				if !errors.Is(err, ErrCorrupt) || !errdefs.IsNotFound(err) {
					t.Fatalf("Open: got %v, want ErrCorrupt and ErrNotFound", err)
				}
				if c.Has(d) {
					t.Errorf("corrupt entry still stored")
				}
				if st := c.Stats(); st.Misses != 1 || st.Hits != 0 || st.Corrupted != 1 {
					t.Errorf("Stats: got %+v, want 1 miss, 0 hits, 1 corrupted", st)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: got %v, want nil (mode does not verify)", err)
			}
			r.Close()
		})
	}
}

func TestReopen(t *testing.T) {
	const size = 1000
	dir := t.TempDir()
	clock := newTickClock()
	c, err := Open(dir, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	blobs := map[string][]byte{}
	for i, name := range []string{"a", "b", "c"} {
		blobs[name], _ = blob(500+i, size)
	}
	// Last use order, oldest first: b, c, a.
	runOps(t, c, blobs, []op{"put:a", "put:b", "put:c", "open:a"})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Leftovers of a crash, and a file the store did not write.
	for _, name := range []string{"tmp/" + digest.FromBytes(blobs["a"]).Encoded() + "-123", "tmp/x-9"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "sha256", "README"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Reopen with a budget of two: the least recently used (b) goes.
	c = openCache(t, dir, Options{MaxBytes: 2 * size, Now: clock.Now})
	if names := dirNames(t, filepath.Join(dir, "tmp")); len(names) != 0 {
		t.Errorf("tmp after reopen: got %v, want empty", names)
	}
	var got string
	for _, name := range []string{"a", "b", "c"} {
		d := digest.FromBytes(blobs[name])
		if info, err := c.Stat(d); err == nil {
			got += name
			if info.Size != size {
				t.Errorf("Stat(%s).Size: got %d, want %d", name, info.Size, size)
			}
		}
	}
	if got != "ac" {
		t.Errorf("stored after reopen: got %q, want %q", got, "ac")
	}
	if st := c.Stats(); st.Entries != 2 || st.Bytes != 2*size || st.Evictions != 1 {
		t.Errorf("Stats: got %+v, want 2 entries, %d bytes, 1 eviction", st, 2*size)
	}
	// The recovered order carries on: c is now older than a.
	runOps(t, c, map[string][]byte{"b": blobs["b"]}, []op{"put:b"})
	if c.Has(digest.FromBytes(blobs["c"])) || !c.Has(digest.FromBytes(blobs["a"])) {
		t.Errorf("after put:b: got c kept or a evicted, want c evicted and a kept")
	}
}

func TestHasStatNotFound(t *testing.T) {
	ctx := context.Background()
	c := openCache(t, t.TempDir(), Options{})
	b, d := blob(600, 123)
	mustPut(t, c, b, d)
	_, absent := blob(601, 123)
	tests := []struct {
		name string
		d    digest.Digest
		has  bool
	}{
		{"stored", d, true},
		{"absent", absent, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.Has(tt.d); got != tt.has {
				t.Errorf("Has: got %v, want %v", got, tt.has)
			}
			info, err := c.Stat(tt.d)
			if tt.has {
				if err != nil || info.Digest != tt.d || info.Size != int64(len(b)) || info.Pinned != 0 || info.LastAccess.IsZero() {
					t.Errorf("Stat: got %+v, %v, want %s of %d bytes", info, err, tt.d, len(b))
				}
			} else if !errdefs.IsNotFound(err) {
				t.Errorf("Stat: got %v, want ErrNotFound", err)
			}
			r, err := c.Open(ctx, tt.d)
			if tt.has {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				r.Close()
			} else if !errdefs.IsNotFound(err) {
				t.Errorf("Open: got %v, want ErrNotFound", err)
			}
			if _, err := c.ReadAt(ctx, tt.d, make([]byte, 1), 0); (err == nil) != tt.has {
				t.Errorf("ReadAt: got %v, want error %v", err, !tt.has)
			}
		})
	}
	// Has and Stat do not count; Open and ReadAt do.
	if st := c.Stats(); st.Hits != 2 || st.Misses != 2 {
		t.Errorf("Stats: got %d hits, %d misses, want 2, 2", st.Hits, st.Misses)
	}
	// A file removed behind the store's back is a miss, and forgotten.
	if err := os.Remove(filepath.Join(c.dir, "sha256", d.Encoded())); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Open(ctx, d); !errdefs.IsNotFound(err) {
		t.Errorf("Open of removed file: got %v, want ErrNotFound", err)
	}
	if c.Has(d) {
		t.Errorf("Has of removed file: got true, want false")
	}
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, Options{})
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) || !errdefs.IsUnavailable(err) {
		t.Fatalf("second Open: got %v, want ErrLocked", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	b, d := blob(700, 10)
	if err := c.Put(context.Background(), d, bytes.NewReader(b)); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close: got %v, want ErrClosed", err)
	}
	c2 := openCache(t, dir, Options{})
	if c2.Has(d) {
		t.Errorf("Put after Close left an entry")
	}
	if _, err := Open(dir, Options{MaxBytes: -1}); err == nil {
		t.Errorf("Open with negative MaxBytes: got nil error")
	}
}
