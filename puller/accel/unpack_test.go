package accel

import (
	"context"
	"crypto/sha256"
	"fmt"
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
			ref := host + "/unpack/" + tc.name + ":v1"
			src := tc.img(t)
			push(t, ref, src)
			res, err := NewConverter(Options{TempDir: t.TempDir()}).Convert(context.Background(), Request{Ref: ref, Mode: ModeFull, Prefetch: []string{"/app/", "/etc/motd"}})
			if err != nil {
				t.Fatal(err)
			}
			orig, acc := t.TempDir(), t.TempDir()
			unpack(t, pull(t, ref), orig)
			unpack(t, pull(t, res.Target), acc)
			want, got := dirTree(t, orig), dirTree(t, acc)
			if len(got) != len(want) {
				t.Errorf("got %d paths, want %d", len(got), len(want))
			}
			for p, w := range want {
				if got[p] != w {
					t.Errorf("%s: got %q, want %q", p, got[p], w)
				}
			}
		})
	}
}
