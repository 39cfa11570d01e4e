package lazy_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/fcd-dev/fcd/cache"
	"github.com/fcd-dev/fcd/instance/image"
	"github.com/fcd-dev/fcd/instance/image/imagetest"
	"github.com/fcd-dev/fcd/internal/testenv"
	"github.com/fcd-dev/fcd/puller/accel"
	"github.com/fcd-dev/fcd/puller/lazy"
	"github.com/fcd-dev/fcd/puller/lazyfs"
	"github.com/fcd-dev/fcd/puller/remote"
)

// TestConformance holds the lazy pull to the image.Images contract in
// both acceleration modes: the suite pushes plain gzip images, the
// converter writes their <tag>_accelerated image (eStargz, or an
// index-only artifact whose subject is the original) and the suite
// prepares that.
func TestConformance(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireFile(t, "/dev/fuse", "fuse3")
	for _, mode := range []accel.Mode{accel.ModeFull, accel.ModeIndexOnly} {
		t.Run(string(mode), func(t *testing.T) {
			imagetest.RunWith(t, imagetest.Options{
				NewImages:  newImages,
				Accelerate: accelerate(mode),
			})
		})
	}
}

// accelerate converts the suite's images with puller/accel in mode.
func accelerate(mode accel.Mode) func(*testing.T, string, imagetest.Credentials) (imagetest.Accelerated, error) {
	return func(t *testing.T, ref string, creds imagetest.Credentials) (imagetest.Accelerated, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := accel.NewConverter(accel.Options{Credentials: accel.Credentials(creds), TempDir: t.TempDir()})
		res, err := c.Convert(ctx, accel.Request{Ref: ref, Mode: mode})
		if err != nil {
			return imagetest.Accelerated{}, err
		}
		if want := ref + accel.TagSuffix; res.Target != want {
			t.Errorf("Convert %s: target %s, want %s", ref, res.Target, want)
		}
		// An eStargz image replaces the original; an index-only artifact
		// only points at it, and the image is the original.
		d := res.TargetDigest
		if mode == accel.ModeIndexOnly {
			d = res.SourceDigest
		}
		return imagetest.Accelerated{Ref: res.Target, Digest: digest.Digest(d)}, nil
	}
}

// newImages builds lazy.Images as fcd does (cmd/fcd/lazy.go): a verified
// chunk cache, the range fetcher, one FUSE mount per layer with
// passthrough files on the test's disk (ext4, not tmpfs), and the default
// registry hosts (plain HTTP to the suite's registry on 127.0.0.1, basic
// auth from the call's credentials). Every mount is gone when t ends.
func newImages(t *testing.T) image.Images {
	chunks, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := chunks.Close(); err != nil {
			t.Errorf("close chunk cache: %v", err)
		}
	})
	fetcher := remote.New(remote.Options{Cache: chunks})
	t.Cleanup(func() {
		if err := fetcher.Close(); err != nil {
			t.Errorf("close fetcher: %v", err)
		}
	})
	root := t.TempDir()
	layers, err := lazyfs.NewManager(lazyfs.ManagerOptions{Root: root, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := layers.Close(); err != nil {
			t.Errorf("close layer manager: %v", err)
		}
		if m := mountsUnder(t, root); len(m) != 0 {
			t.Errorf("still mounted after Manager.Close: %q", m)
		}
	})
	imgs, err := lazy.New(lazy.Options{Fetcher: fetcher, Layers: layers, Chunks: chunks})
	if err != nil {
		t.Fatal(err)
	}
	return imgs
}

// mountsUnder lists the mount points at or below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}
