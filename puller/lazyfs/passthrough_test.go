package lazyfs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fcd-dev/fcd/internal/testenv"
)

// readCold reads a file of the mount after dropping its pages from the
// page cache, so that the read reaches FUSE (or its passthrough file).
func readCold(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatalf("fadvise: %v", err)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return buf.Bytes()
}

// TestPassthrough reads files once through the daemon, lets them be
// materialized, and reads them again: with a cache directory the second
// read never reaches the daemon (passthrough); without one it does, which
// shows the first case is not the page cache.
func TestPassthrough(t *testing.T) {
	requireFUSE(t)
	entries := featureLayer()
	files := wantFiles(entries)
	b := buildLayer(t, entries)
	for mode, src := range b.sources(t) {
		for _, cached := range []bool{true, false} {
			name := mode + "/no-cache"
			if cached {
				name = mode + "/cache"
			}
			t.Run(name, func(t *testing.T) {
				opts := MountOptions{}
				if cached {
					opts.CacheDir = t.TempDir()
				}
				l := mountLayer(t, src, opts)
				for _, f := range []string{"big/random", "bin/ping", "etc/passwd"} {
					if got := readCold(t, filepath.Join(l.Dir(), f)); !bytes.Equal(got, files[f]) {
						t.Fatalf("%s: first read differs", f)
					}
				}
				l.bg.wait() // background materialization
				waitReleased(t, l)
				before := l.Stats()
				for _, f := range []string{"big/random", "bin/ping", "etc/passwd"} {
					if got := readCold(t, filepath.Join(l.Dir(), f)); !bytes.Equal(got, files[f]) {
						t.Fatalf("%s: second read differs", f)
					}
				}
				after := l.Stats()
				reads := after.Reads - before.Reads
				if cached {
					if before.Materialized != 3 {
						t.Errorf("materialized %d files, want 3", before.Materialized)
					}
					if reads != 0 || after.PassthroughOpens < 3 {
						t.Errorf("after materialization: %d daemon reads, %d passthrough opens; want 0 and >= 3", reads, after.PassthroughOpens)
					}
				} else if reads == 0 {
					t.Errorf("without a cache dir: 0 daemon reads on a cold read, want > 0")
				}
			})
		}
	}
}

// TestPassthroughRefused makes the kernel refuse the backing file (a
// directory): go-fuse then turns passthrough off for the mount, and reads
// must still be served, from the local copy, through the daemon.
func TestPassthroughRefused(t *testing.T) {
	requireFUSE(t)
	entries := featureLayer()
	files := wantFiles(entries)
	b := buildLayer(t, entries)
	src := b.sources(t)["gzindex"]
	cache := t.TempDir()
	l := mountLayer(t, src, MountOptions{CacheDir: cache})
	dirFd, err := os.Open(cache)
	if err != nil {
		t.Fatal(err)
	}
	defer dirFd.Close()
	hook := func(*os.File) int { return int(dirFd.Fd()) }
	l.backingFdHook.Store(&hook)
	p := filepath.Join(l.Dir(), "etc/passwd")
	readCold(t, p) // small: materialized at the first read
	for range 2 {
		if got := readCold(t, p); !bytes.Equal(got, files["etc/passwd"]) {
			t.Fatalf("read after a refused passthrough: got %q", got)
		}
	}
	if l.passthrough() {
		t.Errorf("passthrough still on after the kernel refused a backing file")
	}
	if got := readCold(t, filepath.Join(l.Dir(), "big/random")); !bytes.Equal(got, files["big/random"]) {
		t.Errorf("big/random differs")
	}
}

// TestReadFailure fails every fetch: reads get EIO, the mount stays up,
// and once the registry is back the same read succeeds.
func TestReadFailure(t *testing.T) {
	requireFUSE(t)
	entries := featureLayer()
	files := wantFiles(entries)
	b := buildLayer(t, entries)
	for mode, src := range b.sources(t) {
		t.Run(mode, func(t *testing.T) {
			l := mountLayer(t, src, MountOptions{CacheDir: t.TempDir()})
			blob := b.gz
			if mode == "estargz" {
				blob = b.esgz
			}
			blob.setFailing(errors.New("registry down"))
			p := filepath.Join(l.Dir(), "big/medium")
			_, err := os.ReadFile(p)
			if !errors.Is(err, syscall.EIO) {
				t.Fatalf("read while fetches fail: got %v, want EIO", err)
			}
			if _, err := os.Stat(filepath.Join(l.Dir(), "etc/passwd")); err != nil {
				t.Fatalf("mount gone after a failed read: %v", err)
			}
			blob.setFailing(nil)
			got, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(got, files["big/medium"]) {
				t.Fatalf("read after recovery: %d bytes, %v", len(got), err)
			}
		})
	}
}

// TestReadInterrupted kills a process blocked in a read: the kernel sends
// FUSE_INTERRUPT, and the fetch's context is cancelled. The reader uses
// O_DIRECT, whose reads are synchronous requests the kernel interrupts
// (page-cache readahead is sent in the background and is not).
func TestReadInterrupted(t *testing.T) {
	requireFUSE(t)
	dd := testenv.RequireCommand(t, "dd", "coreutils")
	entries := featureLayer()
	files := wantFiles(entries)
	b := buildLayer(t, entries)
	src := b.sources(t)["gzindex"]
	l := mountLayer(t, src, MountOptions{})
	held := make(chan context.Context, 16)
	b.gz.mu.Lock()
	b.gz.held = held
	b.gz.mu.Unlock()
	p := filepath.Join(l.Dir(), "big/medium")
	cmd := exec.Command(dd, "if="+p, "of=/dev/null", "bs=4096", "count=1", "iflag=direct")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	bound := time.After(time.Minute) // a hang bound, not a timing assertion
	var fetch context.Context
	select {
	case fetch = <-held:
	case <-bound:
		t.Fatal("no fetch started")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fetch.Done():
	case <-bound:
		t.Fatal("fetch not cancelled after the reader was killed")
	}
	cmd.Wait()
	b.gz.mu.Lock()
	b.gz.held = nil
	b.gz.mu.Unlock()
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, files["big/medium"]) {
		t.Fatalf("read after interrupt: %d bytes, %v", len(got), err)
	}
}

// TestPrefetch prefetches the start-up files (eStargz: before the
// landmark; index: a recorded list): they are local before the first
// read, which then never reaches the daemon.
func TestPrefetch(t *testing.T) {
	requireFUSE(t)
	entries := featureLayer()
	files := wantFiles(entries)
	startup := []string{"etc/passwd", "big/medium"}
	b := buildLayer(t, entries, startup...)
	es, err := OpenEStargz(context.Background(), b.esgz, int64(len(b.esgz.data)), EStargzOptions{TOCDigest: digestOf(b.tocDgst)})
	if err != nil {
		t.Fatal(err)
	}
	gs, err := NewGzIndex(b.index, b.gz, startup)
	if err != nil {
		t.Fatal(err)
	}
	for mode, src := range map[string]Source{"estargz": es, "gzindex": gs} {
		t.Run(mode, func(t *testing.T) {
			l := mountLayer(t, src, MountOptions{CacheDir: t.TempDir()})
			if err := l.Prefetch(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := l.Stats().Materialized; got != int64(len(startup)) {
				t.Errorf("materialized %d files, want %d", got, len(startup))
			}
			for _, f := range startup {
				if got := readCold(t, filepath.Join(l.Dir(), f)); !bytes.Equal(got, files[f]) {
					t.Fatalf("%s differs", f)
				}
			}
			if st := l.Stats(); st.Reads != 0 || st.PassthroughOpens != int64(len(startup)) {
				t.Errorf("reading prefetched files: %d daemon reads, %d passthrough opens; want 0 and %d", st.Reads, st.PassthroughOpens, len(startup))
			}
		})
	}
}

// lyingSource reports a wrong digest for one file.
type lyingSource struct {
	Source
	entries []Entry
}

func lieAbout(src Source, name string) Source {
	es := slices.Clone(src.Entries())
	for i := range es {
		if es[i].Name == name {
			es[i].Digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
		}
	}
	return lyingSource{src, es}
}

func (s lyingSource) Entries() []Entry { return s.entries }

// TestMaterializeVerifies gives a file a digest its bytes do not match:
// it is never materialized nor served by passthrough, and reads still
// return the source's (chunk-verified) bytes.
func TestMaterializeVerifies(t *testing.T) {
	requireFUSE(t)
	entries := featureLayer()
	files := wantFiles(entries)
	b := buildLayer(t, entries)
	for mode, src := range b.sources(t) {
		t.Run(mode, func(t *testing.T) {
			l := mountLayer(t, lieAbout(src, "big/medium"), MountOptions{CacheDir: t.TempDir()})
			for range 2 {
				if got := readCold(t, filepath.Join(l.Dir(), "big/medium")); !bytes.Equal(got, files["big/medium"]) {
					t.Fatal("big/medium differs")
				}
				l.bg.wait()
			}
			if st := l.Stats(); st.Materialized != 0 || st.PassthroughOpens != 0 {
				t.Errorf("a file failing its digest: %d materialized, %d passthrough opens; want 0, 0", st.Materialized, st.PassthroughOpens)
			}
		})
	}
}

// TestOverlayPassthrough reads a materialized file through an overlayfs
// on top of the layer, as a container does: passthrough still serves it
// (overlayfs over a passthrough FUSE mount stays within the kernel's
// stacking depth).
func TestOverlayPassthrough(t *testing.T) {
	requireFUSE(t)
	entries := featureLayer()
	files := wantFiles(entries)
	b := buildLayer(t, entries)
	l := mountLayer(t, b.sources(t)["gzindex"], MountOptions{CacheDir: t.TempDir()})
	if got := readCold(t, filepath.Join(l.Dir(), "big/random")); !bytes.Equal(got, files["big/random"]) {
		t.Fatal("first read differs")
	}
	l.bg.wait()
	waitReleased(t, l)
	mnt := t.TempDir()
	// A read-only overlay needs two lower directories.
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, "lowerdir="+l.Dir()+":"+t.TempDir()); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	defer unix.Unmount(mnt, 0)
	before := l.Stats()
	if got := readCold(t, filepath.Join(mnt, "big/random")); !bytes.Equal(got, files["big/random"]) {
		t.Fatal("read through overlay differs")
	}
	after := l.Stats()
	if reads := after.Reads - before.Reads; reads != 0 || after.PassthroughOpens == before.PassthroughOpens {
		t.Errorf("through overlay: %d daemon reads, %d new passthrough opens; want 0 and 1", reads, after.PassthroughOpens-before.PassthroughOpens)
	}
}

// TestFetchAll fetches a whole layer in the background: afterwards every
// file is local and reading the tree makes no fetch.
func TestFetchAll(t *testing.T) {
	requireFUSE(t)
	entries := featureLayer()
	files := wantFiles(entries)
	b := buildLayer(t, entries)
	for mode, src := range b.sources(t) {
		t.Run(mode, func(t *testing.T) {
			blob := map[string]*memBlob{"estargz": b.esgz, "gzindex": b.gz}[mode]
			l := mountLayer(t, src, MountOptions{CacheDir: t.TempDir()})
			if err := l.FetchAll(context.Background()); err != nil {
				t.Fatal(err)
			}
			requests := blob.requests.Load()
			for name, data := range files {
				if got := readCold(t, filepath.Join(l.Dir(), name)); !bytes.Equal(got, data) {
					t.Fatalf("%s differs", name)
				}
			}
			if got := blob.requests.Load() - requests; got != 0 {
				t.Errorf("%d fetches after FetchAll, want 0", got)
			}
			if st := l.Stats(); st.Reads != 0 {
				t.Errorf("%d daemon reads after FetchAll, want 0", st.Reads)
			}
		})
	}
}

// TestPassthroughWhileOpen opens a file again after it was materialized
// while an earlier open, served through the daemon, is still open: the
// kernel fails a passthrough open of an inode that has such an open with
// EIO, so the new open must go through the daemon too, and only opens
// after the last of those is closed use passthrough.
func TestPassthroughWhileOpen(t *testing.T) {
	requireFUSE(t)
	entries := featureLayer()
	files := wantFiles(entries)
	b := buildLayer(t, entries)
	for mode, src := range b.sources(t) {
		t.Run(mode, func(t *testing.T) {
			l := mountLayer(t, src, MountOptions{CacheDir: t.TempDir()})
			path := filepath.Join(l.Dir(), "etc/passwd")
			first, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			var buf bytes.Buffer
			if _, err := buf.ReadFrom(first); err != nil || !bytes.Equal(buf.Bytes(), files["etc/passwd"]) {
				t.Fatalf("first read: %v, or content differs", err)
			}
			l.bg.wait() // background materialization
			if got := l.Stats().Materialized; got != 1 {
				t.Fatalf("materialized %d files, want 1", got)
			}
			if got := readCold(t, path); !bytes.Equal(got, files["etc/passwd"]) {
				t.Fatal("read while the first open is open differs")
			}
			if got := l.Stats().PassthroughOpens; got != 0 {
				t.Errorf("%d passthrough opens while a daemon open is open, want 0", got)
			}
			first.Close()
			waitReleased(t, l)
			if got := readCold(t, path); !bytes.Equal(got, files["etc/passwd"]) {
				t.Fatal("read after the first open is closed differs")
			}
			if got := l.Stats().PassthroughOpens; got != 1 {
				t.Errorf("%d passthrough opens after every daemon open closed, want 1", got)
			}
		})
	}
}

// waitReleased waits until the daemon has seen every open of l served
// through it released. close(2) returns before the daemon hears of it
// (FUSE RELEASE is asynchronous), and a file is opened for passthrough
// only once no such open is left (inode.Open).
func waitReleased(t testing.TB, l *Layer) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); l.cachedOpens() != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d opens served through the daemon never released", l.cachedOpens())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cachedOpens counts the open handles served through the daemon.
func (l *Layer) cachedOpens() int {
	n := 0
	for _, tn := range l.tree.nodes {
		tn.mu.Lock()
		n += tn.cached
		tn.mu.Unlock()
	}
	return n
}

// TestPushHeld prefetches small files while an instance starts
// (DeferSmall): they are held in memory, and their first open stores them
// in the kernel's page cache, directly and through an overlay, so reading
// them reaches the daemon no more; the reads are observed all the same.
func TestPushHeld(t *testing.T) {
	requireFUSE(t)
	entries := featureLayer()
	files := wantFiles(entries)
	startup := []string{"etc/passwd", "home/user/.profile", "opaque/kept"}
	b := buildLayer(t, entries)
	for mode, src := range b.sources(t) {
		t.Run(mode, func(t *testing.T) {
			l := mountLayer(t, src, MountOptions{CacheDir: t.TempDir(), DeferSmall: true})
			var mu sync.Mutex
			seen := map[string]bool{}
			defer l.Observe(func(file string, off, n int64) {
				mu.Lock()
				seen[file] = true
				mu.Unlock()
			})()
			for _, f := range startup {
				if err := l.PrefetchRange(context.Background(), f, 0, int64(len(files[f]))); err != nil {
					t.Fatal(err)
				}
			}
			mnt := t.TempDir()
			if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, "lowerdir="+l.Dir()+":"+t.TempDir()); err != nil {
				t.Fatalf("mount overlay: %v", err)
			}
			defer unix.Unmount(mnt, 0)
			for i, f := range startup {
				root := l.Dir()
				if i%2 == 1 {
					root = mnt
				}
				for range 2 {
					got, err := os.ReadFile(filepath.Join(root, f))
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, files[f]) {
						t.Fatalf("%s differs", f)
					}
				}
			}
			st := l.Stats()
			if st.Reads != 0 || st.Pushed != int64(len(startup)) || st.Materialized != 0 {
				t.Errorf("reading %d held files twice: %d daemon reads, %d pushed, %d materialized; want 0, %d, 0", len(startup), st.Reads, st.Pushed, st.Materialized, len(startup))
			}
			mu.Lock()
			defer mu.Unlock()
			for _, f := range startup {
				if !seen[f] {
					t.Errorf("read of %s not observed", f)
				}
			}
		})
	}
}

// TestPrefetchRangeWhole prefetches a large file whole while an instance
// starts: it is made local at once, and reading it is served by
// passthrough; a part of one is not.
func TestPrefetchRangeWhole(t *testing.T) {
	requireFUSE(t)
	entries := featureLayer()
	files := wantFiles(entries)
	b := buildLayer(t, entries)
	for mode, src := range b.sources(t) {
		t.Run(mode, func(t *testing.T) {
			l := mountLayer(t, src, MountOptions{CacheDir: t.TempDir(), DeferSmall: true})
			if err := l.PrefetchRange(context.Background(), "big/medium", 0, 100<<10); err != nil {
				t.Fatal(err)
			}
			if got := l.Stats().Materialized; got != 0 {
				t.Fatalf("part of big/medium prefetched: %d files materialized, want 0", got)
			}
			if err := l.PrefetchRange(context.Background(), "big/random", 0, int64(len(files["big/random"]))); err != nil {
				t.Fatal(err)
			}
			if got := readCold(t, filepath.Join(l.Dir(), "big/random")); !bytes.Equal(got, files["big/random"]) {
				t.Fatal("big/random differs")
			}
			if st := l.Stats(); st.Materialized != 1 || st.Reads != 0 || st.PassthroughOpens != 1 {
				t.Errorf("big/random prefetched whole, then read: %d materialized, %d daemon reads, %d passthrough opens; want 1, 0, 1", st.Materialized, st.Reads, st.PassthroughOpens)
			}
		})
	}
}
