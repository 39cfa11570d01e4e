package accel

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// tamperingRegistry serves go-containerregistry's in-memory registry on
// loopback, but answers GETs of the blobs in swap with other bytes, as a
// registry the image's creator controls may. It returns its host:port.
func tamperingRegistry(t testing.TB, swap map[v1.Hash][]byte) string {
	mem := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for d, data := range swap {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+d.String()) {
				w.Header().Set("Docker-Content-Digest", d.String())
				w.Write(data)
				return
			}
		}
		mem.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// gzipTar returns files as a gzip-compressed tar.
func gzipTar(t testing.TB, files []tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: f.mode, Linkname: f.link}
		if f.typ == tar.TypeReg {
			h.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// imageOf returns a linux/amd64 OCI image of the given compressed layers.
func imageOf(t testing.TB, blobs ...[]byte) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, b := range blobs {
		var err error
		if img, err = mutate.AppendLayers(img, static.NewLayer(b, types.OCILayer)); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// TestConvertVerifiesSource: a registry that serves other bytes than the
// layer digest the manifest names gets no accelerated image made of them,
// in any mode. The swapped layer is a valid gzip tar, so only the digest
// tells.
func TestConvertVerifiesSource(t *testing.T) {
	good := gzipTar(t, []tarFile{{name: "bin/app", typ: tar.TypeReg, mode: 0o755, data: []byte("good")}})
	evil := gzipTar(t, []tarFile{{name: "bin/app", typ: tar.TypeReg, mode: 0o755, data: []byte("evil")}})
	img := imageOf(t, good)
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	host := tamperingRegistry(t, map[v1.Hash][]byte{d: evil})
	for _, tc := range []struct {
		name     string
		mode     Mode
		prefetch []string
	}{
		{"full streamed", ModeFull, nil},
		{"full listed", ModeFull, []string{"/bin/app"}},
		{"index-only", ModeIndexOnly, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := host + "/tamper/" + strings.ReplaceAll(tc.name, " ", "-") + ":v1"
			push(t, ref, img)
			_, err := NewConverter(Options{TempDir: t.TempDir()}).Convert(context.Background(), Request{Ref: ref, Mode: tc.mode, Prefetch: tc.prefetch})
			if err == nil || !strings.Contains(err.Error(), "checksum") {
				t.Fatalf("got %v, want the layer refused for not matching its digest %s", err, d)
			}
			if _, err := remote.Head(mustRef(t, ref+TagSuffix)); err == nil {
				t.Error("a refused conversion left an accelerated tag")
			}
		})
	}
}
