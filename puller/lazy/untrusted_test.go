package lazy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/containerd/containerd/remotes/docker"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/fcd-dev/fcd/instance/image"
	"github.com/fcd-dev/fcd/internal/regtest"
	"github.com/fcd-dev/fcd/internal/testenv"
	"github.com/fcd-dev/fcd/puller"
	"github.com/fcd-dev/fcd/puller/gzindex"
	"github.com/fcd-dev/fcd/puller/remote"
)

// TestPrepareRefusesForeignURLs: a blob that names URLs to fetch it from
// refuses the image, and the URLs, here a loopback server that would
// serve the right bytes, are never requested. containerd's fetcher, which
// reads the manifest and config, would have asked that server for the
// config before the registry.
func TestPrepareRefusesForeignURLs(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireFile(t, "/dev/fuse", "fuse3")
	reg := regtest.New(t)
	cfg := configJSON()
	layer := gz(t, testLayers(t)[0])
	var hits atomic.Int32
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/config" {
			w.Write(cfg)
		} else {
			w.Write(layer)
		}
	}))
	t.Cleanup(origin.Close)

	cd := reg.AddBlob(cfg)
	cd.MediaType = ocispec.MediaTypeImageConfig
	ld := reg.AddBlob(layer)
	ld.MediaType = ocispec.MediaTypeImageLayerGzip
	foreignConfig, foreignLayer := cd, ld
	foreignConfig.URLs = []string{origin.URL + "/config"}
	foreignLayer.URLs = []string{origin.URL + "/layer"}
	putManifest(t, reg, "foreign", "config", manifestOf(foreignConfig, ld))
	putManifest(t, reg, "foreign", "layer", manifestOf(cd, foreignLayer))

	for _, tag := range []string{"config", "layer"} {
		t.Run(tag, func(t *testing.T) {
			hits.Store(0)
			imgs, m := newImages(t, reg)
			_, err := imgs.Prepare(context.Background(), reg.Ref("foreign")+":"+tag, image.Options{Key: "k"})
			if !errors.Is(err, puller.ErrForeignURLs) {
				t.Errorf("Prepare: got %v, want ErrForeignURLs", err)
			}
			if n := hits.Load(); n != 0 {
				t.Errorf("the blob's URL was requested %d times, want never", n)
			}
			if len(m.Mounted()) != 0 {
				t.Errorf("Mounted() = %v after a refused image", m.Mounted())
			}
		})
	}
}

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

// TestPrepareAddressPolicy prepares images through the hosts of a full
// puller that refuses loopback but for the registry's address, as fcd
// wires them: the registry's image mounts and its chunks are read, and
// an image naming another loopback service is refused before that
// service gets a request.
func TestPrepareAddressPolicy(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireFile(t, "/dev/fuse", "fuse3")
	reg := regtest.New(t)
	ref, _ := pushIndexOnly(t, reg, "guarded", testLayers(t))
	var hits atomic.Int32
	forbidden := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(forbidden.Close)

	full, err := puller.New(nil, puller.Options{Namespace: "unused", Addresses: &puller.AddressPolicy{
		Refused:      puller.DefaultRefused,
		AllowedAddrs: []netip.AddrPort{netip.MustParseAddrPort(reg.Host)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	imgs, _ := newImages(t, reg)
	imgs.opts.Hosts = func(creds remote.Credentials) docker.RegistryHosts { return full.RegistryHosts(creds) }

	img, err := imgs.Prepare(context.Background(), ref, image.Options{Key: "allowed"})
	if err != nil {
		t.Fatalf("Prepare from the allowed registry: %v", err)
	}
	defer img.Release(context.Background())
	mnt := t.TempDir()
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(img.LowerDirs(), ":")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(mnt, "etc/a"))
	unix.Unmount(mnt, 0)
	if err != nil || string(got) != "top a" {
		t.Errorf("etc/a = %q, %v; want the top layer's", got, err)
	}

	host := strings.TrimPrefix(forbidden.URL, "http://")
	if _, err := imgs.Prepare(context.Background(), host+"/guarded:v1_accelerated", image.Options{Key: "refused"}); !errors.Is(err, puller.ErrAddressRefused) {
		t.Errorf("Prepare from %s: got %v, want ErrAddressRefused", host, err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the refused service got %d requests, want none", n)
	}
}
