package lazy

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/fcd-dev/fcd/instance/image"
	"github.com/fcd-dev/fcd/internal/regtest"
	"github.com/fcd-dev/fcd/internal/testenv"
	"github.com/fcd-dev/fcd/puller/gzindex"
)

// TestIndexOnlyMountPerIndex: two index-only artifacts name other indexes
// for the same layers (here another span, an image creator's own index in
// general, which decides the layer's file table). Each image gets mounts
// of its own index; images of the same artifact share theirs.
func TestIndexOnlyMountPerIndex(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireFile(t, "/dev/fuse", "fuse3")
	reg := regtest.New(t)
	layers := testLayers(t)
	mine, _ := pushIndexOnly(t, reg, "mine", layers)
	theirs, _ := pushIndexOnlyWith(t, reg, "theirs", layers, gzindex.Options{Version: 3, Span: 1, MaxSpan: 1})
	imgs, m := newImages(t, reg)
	ctx := context.Background()
	prep := func(ref, key string) image.Image {
		img, err := imgs.Prepare(ctx, ref, image.Options{Key: key, Function: "f"})
		if err != nil {
			t.Fatalf("Prepare %s: %v", ref, err)
		}
		t.Cleanup(func() { img.Release(ctx) })
		return img
	}
	a := prep(theirs, "a")
	b := prep(mine, "b")
	if got := len(m.Mounted()); got != 2*len(layers) {
		t.Fatalf("Mounted() = %d mounts after two artifacts with other indexes of %d layers, want %d", got, len(layers), 2*len(layers))
	}
	for i, lower := range b.LowerDirs() {
		if lower == a.LowerDirs()[i] {
			t.Errorf("lower dir %d of both images is %s, want a mount per index", i, lower)
		}
	}
	got, err := os.ReadFile(filepath.Join(b.LowerDirs()[0], "etc/a"))
	if err != nil || string(got) != "top a" {
		t.Errorf("etc/a of the top layer = %q, %v", got, err)
	}
	c := prep(mine, "c")
	if got := len(m.Mounted()); got != 2*len(layers) {
		t.Errorf("Mounted() = %d mounts after a second image of the same artifact, want the %d shared", got, 2*len(layers))
	}
	for i, lower := range c.LowerDirs() {
		if lower != b.LowerDirs()[i] {
			t.Errorf("lower dir %d: %s and %s for one artifact, want it shared", i, lower, b.LowerDirs()[i])
		}
	}
}
