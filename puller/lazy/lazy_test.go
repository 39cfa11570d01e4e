package lazy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/fcd-dev/fcd/instance/image"
	"github.com/fcd-dev/fcd/internal/regtest"
	"github.com/fcd-dev/fcd/internal/testenv"
	"github.com/fcd-dev/fcd/puller/gzindex"
	"github.com/fcd-dev/fcd/puller/lazyfs"
	"github.com/fcd-dev/fcd/puller/remote"
)

type file struct {
	name, body string
	mode       int64
}

func tarLayer(t *testing.T, files ...file) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, f.body)
	}
	tw.Close()
	return buf.Bytes()
}

func gz(t *testing.T, b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// layers: the base has a and b; the top replaces a and deletes b.
func testLayers(t *testing.T) [][]byte {
	return [][]byte{
		tarLayer(t, file{"etc/", "", 0o755}, file{"etc/a", "base a", 0o644}, file{"etc/b", "base b", 0o644}),
		tarLayer(t, file{"etc/a", "top a", 0o600}, file{"etc/.wh.b", "", 0o644}),
	}
}

func putManifest(t *testing.T, reg *regtest.Registry, repo, tag string, m any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	mt := ocispec.MediaTypeImageManifest
	req, _ := http.NewRequest(http.MethodPut, reg.URL+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(b))
	req.Header.Set("Content-Type", mt)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("put manifest %s:%s: %s", repo, tag, resp.Status)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
}

// configJSON is the test images' config: linux/amd64, running /bin/app.
func configJSON() []byte {
	b, _ := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Config:   ocispec.ImageConfig{Entrypoint: []string{"/bin/app"}},
		RootFS:   ocispec.RootFS{Type: "layers"},
	})
	return b
}

func config(t *testing.T, reg *regtest.Registry) ocispec.Descriptor {
	d := reg.AddBlob(configJSON())
	d.MediaType = ocispec.MediaTypeImageConfig
	return d
}

func manifestOf(cfg ocispec.Descriptor, layers ...ocispec.Descriptor) ocispec.Manifest {
	return ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: layers}
}

// pushEStargz pushes the layers converted to eStargz as repo:v1_accelerated.
func pushEStargz(t *testing.T, reg *regtest.Registry, repo string, layers [][]byte) string {
	var descs []ocispec.Descriptor
	for _, l := range layers {
		eb, err := estargz.Build(io.NewSectionReader(bytes.NewReader(l), 0, int64(len(l))))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(eb)
		eb.Close()
		d := reg.AddBlob(b)
		d.Annotations = map[string]string{estargz.TOCJSONDigestAnnotation: eb.TOCDigest().String()}
		descs = append(descs, d)
	}
	putManifest(t, reg, repo, "v1_accelerated", manifestOf(config(t, reg), descs...))
	return reg.Ref(repo) + ":v1_accelerated"
}

// pushIndexOnly pushes the original gzip image as repo:v1 and an
// index-only artifact for it as repo:v1_accelerated.
func pushIndexOnly(t *testing.T, reg *regtest.Registry, repo string, layers [][]byte) (string, digest.Digest) {
	return pushIndexOnlyWith(t, reg, repo, layers, gzindex.Options{})
}

// pushIndexOnlyWith is pushIndexOnly with index options (the start-up
// tests use small chunks and spans, so that files map to chunks of their
// own).
func pushIndexOnlyWith(t *testing.T, reg *regtest.Registry, repo string, layers [][]byte, opts gzindex.Options) (string, digest.Digest) {
	var descs, indexes []ocispec.Descriptor
	for _, l := range layers {
		blob := gz(t, l)
		d := reg.AddBlob(blob)
		x, err := gzindex.Build(context.Background(), bytes.NewReader(blob), opts)
		if err != nil {
			t.Fatal(err)
		}
		ib, err := x.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		id := reg.AddBlob(ib)
		id.MediaType, id.Annotations = "application/vnd.fcd.gzindex.v1", map[string]string{annotationLayer: d.Digest.String()}
		if opts.Version >= 3 {
			n, err := gzindex.HeadSize(ib)
			if err != nil {
				t.Fatal(err)
			}
			id.Annotations[annotationIndexHead] = fmt.Sprintf("%d@%s", n, digest.FromBytes(ib[:n]))
		}
		descs, indexes = append(descs, d), append(indexes, id)
	}
	orig := putManifest(t, reg, repo, "v1", manifestOf(config(t, reg), descs...))
	empty := reg.AddBlob([]byte("{}"))
	empty.MediaType = ocispec.MediaTypeEmptyJSON
	art := manifestOf(empty, indexes...)
	art.ArtifactType, art.Subject = artifactTypeGzindex, &orig
	putManifest(t, reg, repo, "v1_accelerated", art)
	return reg.Ref(repo) + ":v1_accelerated", orig.Digest
}

func newImages(t *testing.T, reg *regtest.Registry) (*Images, *lazyfs.Manager) {
	f := remote.New(remote.Options{})
	t.Cleanup(func() { f.Close() })
	m, err := lazyfs.NewManager(lazyfs.ManagerOptions{Root: t.TempDir(), CacheDir: t.TempDir(), IdleTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	imgs, err := New(Options{Fetcher: f, Layers: m, Hosts: authHosts(reg)})
	if err != nil {
		t.Fatal(err)
	}
	return imgs, m
}

// authHosts is reg's hosts with containerd's token authorizer fed by the
// call's credentials.
func authHosts(reg *regtest.Registry) func(remote.Credentials) docker.RegistryHosts {
	return func(creds remote.Credentials) docker.RegistryHosts {
		return func(host string) ([]docker.RegistryHost, error) {
			hs, err := reg.Hosts()(host)
			for i := range hs {
				if creds != nil {
					hs[i].Authorizer = docker.NewDockerAuthorizer(docker.WithAuthCreds(creds), docker.WithAuthClient(hs[i].Client))
				}
			}
			return hs, err
		}
	}
}

// TestPrepare prepares both accelerated forms of one image and reads the
// overlay of their LowerDirs: the top layer's file wins and its whiteout
// hides the base's.
func TestPrepare(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireFile(t, "/dev/fuse", "fuse3")
	reg := regtest.New(t)
	layers := testLayers(t)
	esRef := pushEStargz(t, reg, "app-es", layers)
	ioRef, origDigest := pushIndexOnly(t, reg, "app-io", layers)
	// Version 3 indexes are read by their heads, their windows by range.
	headRef, _ := pushIndexOnlyWith(t, reg, "app-head", layers, gzindex.Options{Version: 3, Span: 1, MaxSpan: 1})
	for _, tc := range []struct{ name, ref string }{{"estargz", esRef}, {"index-only", ioRef}, {"index-only-head", headRef}} {
		t.Run(tc.name, func(t *testing.T) {
			imgs, m := newImages(t, reg)
			img, err := imgs.Prepare(context.Background(), tc.ref, image.Options{Key: "k", Function: "f"})
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if tc.name != "estargz" && img.Digest() != origDigest {
				t.Errorf("Digest() = %s, want the original manifest %s", img.Digest(), origDigest)
			}
			if got := img.Config().Entrypoint; len(got) != 1 || got[0] != "/bin/app" {
				t.Errorf("Entrypoint = %q", got)
			}
			lower := img.LowerDirs()
			if len(lower) != 2 {
				t.Fatalf("LowerDirs() = %q, want 2", lower)
			}
			mnt := t.TempDir()
			if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(lower, ":")); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(mnt, "etc/a"))
			if err != nil || string(got) != "top a" {
				t.Errorf("etc/a = %q, %v; want the top layer's", got, err)
			}
			if _, err := os.Stat(filepath.Join(mnt, "etc/b")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("etc/b: %v, want deleted by the top layer", err)
			}
			if err := unix.Unmount(mnt, 0); err != nil {
				t.Fatal(err)
			}
			if err := img.Ready(context.Background()); err != nil {
				t.Fatal(err)
			}
			if st := img.Stats(); st.BytesFetched == 0 || st.Cached {
				t.Errorf("Stats() = %+v, want bytes fetched", st)
			}
			if err := img.Release(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(m.Mounted()) != 2 {
				t.Errorf("Mounted() = %v after release, want kept while idle", m.Mounted())
			}
		})
	}
}

// TestPrepareNotLazy refuses a plain image.
func TestPrepareNotLazy(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireFile(t, "/dev/fuse", "fuse3")
	reg := regtest.New(t)
	d := reg.AddBlob(gz(t, testLayers(t)[0]))
	putManifest(t, reg, "plain", "v1", manifestOf(config(t, reg), d))
	imgs, m := newImages(t, reg)
	_, err := imgs.Prepare(context.Background(), reg.Ref("plain")+":v1", image.Options{Key: "k"})
	if !errors.Is(err, ErrNotLazy) {
		t.Fatalf("got %v, want ErrNotLazy", err)
	}
	if len(m.Mounted()) != 0 {
		t.Errorf("Mounted() = %v after a refused image", m.Mounted())
	}
}

// TestPrepareAuth prepares an image from a registry that requires tokens:
// two uses share the layer mounts; wrong or missing credentials are
// image.ErrUnauthorized.
func TestPrepareAuth(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireFile(t, "/dev/fuse", "fuse3")
	reg := regtest.New(t)
	ref, _ := pushIndexOnly(t, reg, "private", testLayers(t))
	reg.SetCredentials("fc", "secret")
	reg.SetFaults(regtest.Faults{Auth: true, ExpiredStatus: 403})
	imgs, _ := newImages(t, reg)
	good := func(string) (string, string, error) { return "fc", "secret", nil }
	var lower [][]string
	for _, key := range []string{"a", "b"} {
		img, err := imgs.Prepare(context.Background(), ref, image.Options{Key: key, Credentials: good, Role: "r"})
		if err != nil {
			t.Fatalf("Prepare %s: %v", key, err)
		}
		defer img.Release(context.Background())
		lower = append(lower, img.LowerDirs())
		reg.ExpireTokens()
		mnt := t.TempDir()
		if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(img.LowerDirs(), ":")); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(mnt, "etc/a"))
		unix.Unmount(mnt, 0)
		if err != nil || string(got) != "top a" {
			t.Fatalf("etc/a = %q, %v", got, err)
		}
	}
	if strings.Join(lower[0], ":") != strings.Join(lower[1], ":") {
		t.Errorf("two uses of one image: LowerDirs %q and %q, want the same mounts", lower[0], lower[1])
	}
	wrong := func(string) (string, string, error) { return "fc", "wrong", nil }
	for name, creds := range map[string]func(string) (string, string, error){"wrong": wrong, "none": nil} {
		_, err := imgs.Prepare(context.Background(), ref, image.Options{Key: "c", Credentials: creds, Role: "role/x"})
		if !errors.Is(err, image.ErrUnauthorized) {
			t.Errorf("%s credentials: got %v, want image.ErrUnauthorized", name, err)
		}
	}
}
