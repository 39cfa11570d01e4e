package lazyfs

import (
	"archive/tar"
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fcd-dev/fcd/internal/testenv"
)

func requireFUSE(t *testing.T) { testenvFUSE(t) }

func testenvFUSE(t testing.TB) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireFile(t, "/dev/fuse", "fuse3")
}

// mountLayer mounts src under a temporary directory and unmounts it when
// the test ends.
func mountLayer(t *testing.T, src Source, opts MountOptions) *Layer {
	t.Helper()
	dir := t.TempDir()
	if opts.Logger == nil {
		// Kernel readahead may still be served as the test returns:
		// collect the log and hand it to t after the unmount.
		w := &syncBuffer{}
		opts.Logger = slog.New(slog.NewTextHandler(w, nil))
		t.Cleanup(func() {
			if s := w.String(); s != "" {
				t.Log(s)
			}
		})
	}
	if opts.Name == "" {
		opts.Name = t.Name()
	}
	l, err := Mount(dir, src, opts)
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Unmount(); err != nil {
			t.Errorf("Unmount: %v", err)
		}
	})
	return l
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestLayerFidelity mounts the feature layer through each source and
// compares the tree with a full unpack of the same layer with overlayfs
// whiteout conversion.
func TestLayerFidelity(t *testing.T) {
	requireFUSE(t)
	entries := featureLayer()
	ref := t.TempDir()
	applyReference(t, ref, true, entries)
	want := takeSnapshot(t, ref, explicitNames(entries))
	b := buildLayer(t, entries)
	for mode, src := range b.sources(t) {
		t.Run(mode, func(t *testing.T) {
			l := mountLayer(t, src, MountOptions{})
			compareSnapshots(t, takeSnapshot(t, l.Dir(), explicitNames(entries)), want)
		})
	}
}

// TestLayerNoXattrs checks a layer without any extended attribute: the
// mount disables xattr requests, and the tree still matches.
func TestLayerNoXattrs(t *testing.T) {
	requireFUSE(t)
	entries := []tarEntry{dirE("d/", 0o755, 0, 0), fileE("d/f", 0o644, []byte("x")), linkE(tar.TypeSymlink, "s", "d/f")}
	ref := t.TempDir()
	applyReference(t, ref, true, entries)
	b := buildLayer(t, entries)
	for mode, src := range b.sources(t) {
		t.Run(mode, func(t *testing.T) {
			l := mountLayer(t, src, MountOptions{})
			compareSnapshots(t, takeSnapshot(t, l.Dir(), explicitNames(entries)), takeSnapshot(t, ref, explicitNames(entries)))
			_, err := unix.Getxattr(filepath.Join(l.Dir(), "d/f"), "user.x", make([]byte, 10))
			if err != unix.ENOTSUP && err != unix.ENODATA {
				t.Errorf("getxattr: got %v, want ENOTSUP or ENODATA", err)
			}
		})
	}
}

// overlayLayers exercise deletions across layers: whiteouts of files and
// directories, an opaque directory, a file replaced by a directory.
func overlayLayers() [][]tarEntry {
	base := []tarEntry{
		dirE("etc/", 0o755, 0, 0),
		fileE("etc/old.conf", 0o644, []byte("old")),
		fileE("etc/keep.conf", 0o644, []byte("keep")),
		dirE("opaque/", 0o755, 0, 0),
		fileE("opaque/lower-file", 0o644, []byte("hidden by opaque")),
		dirE("gone/", 0o755, 0, 0),
		fileE("gone/deep", 0o644, []byte("deleted dir")),
		fileE("becomes-dir", 0o644, []byte("file first")),
		fileE("bin/tool", 0o755, pseudoRandom(5, 150<<10)),
	}
	mid := []tarEntry{
		tarEntry{Header: tar.Header{Typeflag: tar.TypeReg, Name: "etc/.wh.old.conf", ModTime: epoch}},
		tarEntry{Header: tar.Header{Typeflag: tar.TypeReg, Name: ".wh.gone", ModTime: epoch}},
		tarEntry{Header: tar.Header{Typeflag: tar.TypeReg, Name: ".wh.becomes-dir", ModTime: epoch}},
		dirE("becomes-dir/", 0o711, 5, 6),
		fileE("becomes-dir/x", 0o644, []byte("now a dir")),
		fileE("etc/new.conf", 0o600, []byte("new")),
	}
	top := []tarEntry{
		dirE("opaque/", 0o755, 0, 0),
		tarEntry{Header: tar.Header{Typeflag: tar.TypeReg, Name: "opaque/.wh..wh..opq", ModTime: epoch}},
		fileE("opaque/upper-file", 0o644, []byte("visible")),
		fileE("bin/tool", 0o4755, pseudoRandom(6, 90<<10)),
		linkE(tar.TypeLink, "bin/tool-link", "bin/tool"),
	}
	return [][]tarEntry{base, mid, top}
}

// TestOverlayFidelity mounts a read-only overlayfs over FUSE layers (in
// each source mode) and compares it with a full unpack of all layers.
func TestOverlayFidelity(t *testing.T) {
	requireFUSE(t)
	layers := overlayLayers()
	ref := t.TempDir()
	applyReference(t, ref, false, layers...)
	explicit := explicitNames(layers...)
	for name := range explicit {
		if _, err := os.Lstat(filepath.Join(ref, name)); err != nil {
			delete(explicit, name)
		}
	}
	// A directory that a later layer changes keeps the time of the
	// last entry; one touched only by deletions is not comparable.
	delete(explicit, "etc")
	want := takeSnapshot(t, ref, explicit)
	built := make([]*builtLayer, len(layers))
	for i, entries := range layers {
		built[i] = buildLayer(t, entries)
	}
	for _, mode := range []string{"estargz", "gzindex"} {
		t.Run(mode, func(t *testing.T) {
			var lower []string
			for _, b := range built {
				lower = append([]string{mountLayer(t, b.sources(t)[mode], MountOptions{}).Dir()}, lower...)
			}
			mnt := t.TempDir()
			if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(lower, ":")); err != nil {
				t.Fatalf("mount overlay: %v", err)
			}
			defer func() {
				if err := unix.Unmount(mnt, 0); err != nil {
					t.Errorf("unmount overlay: %v", err)
				}
			}()
			compareSnapshots(t, takeSnapshot(t, mnt, explicit), want)
		})
	}
}

// TestCloseSendsNoFlush opens and closes files of a layer, directly and
// through an overlay, as a starting process does thousands of times: each
// open is one round trip to the daemon, and no close is another.
func TestCloseSendsNoFlush(t *testing.T) {
	requireFUSE(t)
	entries := featureLayer()
	files := wantFiles(entries)
	b := buildLayer(t, entries)
	l := mountLayer(t, b.sources(t)["gzindex"], MountOptions{})
	mnt := t.TempDir()
	// A read-only overlay needs two lower directories.
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, "lowerdir="+l.Dir()+":"+t.TempDir()); err != nil {
		t.Fatalf("mount overlay: %v", err)
	}
	defer unix.Unmount(mnt, 0)
	var opened int64
	for name, want := range files {
		for _, root := range []string{l.Dir(), mnt} {
			got, err := os.ReadFile(filepath.Join(root, name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s under %s differs", name, root)
			}
			opened++
		}
	}
	if st := l.Stats(); st.Opens != opened || st.Flushes != 0 {
		t.Errorf("%d files opened and closed: got %d opens and %d flushes, want %d and 0", opened, st.Opens, st.Flushes, opened)
	}
}
