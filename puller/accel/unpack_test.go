package accel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/containerd/containerd/archive"
	cdcompression "github.com/containerd/containerd/archive/compression"
	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/fcd-dev/fcd/internal/testenv"
)

// unpack applies img's layers in order into dir with containerd's layer
// applier (the code containerd's unpacker runs: decompression, whiteouts,
// ownership, modes, links).
func unpack(t *testing.T, img v1.Image, dir string) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		ds, err := cdcompression.DecompressStream(rc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := archive.Apply(context.Background(), dir, ds); err != nil {
			t.Fatalf("apply layer %d: %v", i, err)
		}
		ds.Close()
		rc.Close()
	}
}

// dirTree describes every path under dir: type, mode, owner, link target,
// content hash. eStargz's own entries are left out.
func dirTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." || rel == estargz.PrefetchLandmark || rel == estargz.NoPrefetchLandmark || rel == estargz.TOCTarName {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %x nlink=%d", sha256.Sum256(data), st.Nlink)
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFullModeUnpacksLikeTheOriginal unpacks the original and the
// accelerated image with containerd's applier and compares the trees.
func TestFullModeUnpacksLikeTheOriginal(t *testing.T) {
	testenv.RequireRoot(t)
	host := testRegistry(t)
	for _, tc := range append(testImages(), testImage{"generated-zstd", func(t testing.TB) v1.Image {
		return generatedImage(t, compression.ZStd, types.OCILayerZStd)
	}}) {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.img(t)
			orig := t.TempDir()
			unpack(t, src, orig)
			want := dirTree(t, orig)
			// With a prefetch list the layers are reordered from a file;
			// without one they stream.
			for tag, prefetch := range map[string][]string{"listed": {"/app/", "/etc/motd"}, "streamed": nil} {
				ref := host + "/unpack/" + tc.name + ":" + tag
				push(t, ref, src)
				res, err := NewConverter(Options{TempDir: t.TempDir()}).Convert(context.Background(), Request{Ref: ref, Mode: ModeFull, Prefetch: prefetch})
				if err != nil {
					t.Fatal(err)
				}
				img := pull(t, res.Target)
				if err := validate.Image(img); err != nil {
					t.Fatalf("%s: %v", tag, err)
				}
				acc := t.TempDir()
				unpack(t, img, acc)
				got := dirTree(t, acc)
				if len(got) != len(want) {
					t.Errorf("%s: got %d paths, want %d", tag, len(got), len(want))
				}
				for p, w := range want {
					if got[p] != w {
						t.Errorf("%s: %s: got %q, want %q", tag, p, got[p], w)
					}
				}
				if prefetch == nil {
					checkNoPrefetch(t, img)
				}
			}
		})
	}
}

// checkNoPrefetch checks that every layer is eStargz opening with the
// no-prefetch landmark.
func checkNoPrefetch(t *testing.T, img v1.Image) {
	t.Helper()
	layers, _ := img.Layers()
	for i, l := range layers {
		rc, _ := l.Compressed()
		blob, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		r, err := estargz.Open(io.NewSectionReader(bytes.NewReader(blob), 0, int64(len(blob))))
		if err != nil {
			t.Fatalf("layer %d: not eStargz: %v", i, err)
		}
		lm, ok := r.Lookup(estargz.NoPrefetchLandmark)
		if !ok {
			t.Fatalf("layer %d: no no-prefetch landmark", i)
		}
		for _, name := range []string{"app/echo", "etc/os-release", "app/main", "data/model.bin"} {
			if e, has := r.Lookup(name); has && e.Offset <= lm.Offset {
				t.Errorf("layer %d: %s at %d, before the landmark at %d", i, name, e.Offset, lm.Offset)
			}
		}
	}
}
