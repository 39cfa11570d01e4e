package puller_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/errdefs"
	"github.com/fcd-dev/fcd/instance"
	"github.com/fcd-dev/fcd/puller"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// countBlob counts the blob bytes served for blob dgst and, when
// openRanges is set, serves the open-ended ranges go-containerregistry's
// registry refuses by closing them at the blob's size.
func countBlob(dgst string, size int64, openRanges bool, served *atomic.Int64) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+dgst) {
				h.ServeHTTP(w, r)
				return
			}
			if rg := r.Header.Get("Range"); openRanges && strings.HasSuffix(rg, "-") {
				r.Header.Set("Range", fmt.Sprintf("%s%d", rg, size-1))
			}
			h.ServeHTTP(&countingWriter{ResponseWriter: w, n: served}, r)
		})
	}
}

// countingWriter counts the body bytes of a successful response.
type countingWriter struct {
	http.ResponseWriter
	n      *atomic.Int64
	failed bool
}

func (w *countingWriter) WriteHeader(code int) {
	w.failed = code >= 300
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	if !w.failed {
		w.n.Add(int64(n))
	}
	return n, err
}

// TestPrepareResumes checks what a pull does with the ingest that a fetch
// cut short (fcd killed mid-pull) left in the content store, held by its
// lease: it resumes it, fetching only the rest, when the registry serves
// the range; and it fetches the blob from its start, and succeeds, when
// the resume cannot work. Without the restart every pull of the image
// failed until the lease expired.
func TestPrepareResumes(t *testing.T) {
	c := setup(t)
	for _, tc := range []struct {
		name string
		// openRanges: the registry serves ranges like bytes=N-.
		openRanges bool
		// left is what the cut-short fetch wrote, of the blob or of
		// other bytes.
		left func(blob, other []byte) []byte
		// wantServed is the blob's bytes the registry sends.
		wantServed func(size int64) int64
	}{
		{"resumed", true, func(b, _ []byte) []byte { return b[:len(b)/2] }, func(n int64) int64 { return n - n/2 }},
		{"range refused", false, func(b, _ []byte) []byte { return b[:len(b)/2] }, func(n int64) int64 { return n }},
		{"complete but wrong", true, func(_, o []byte) []byte { return o }, func(n int64) int64 { return n }},
		{"partial and wrong", true, func(_, o []byte) []byte { return o[:len(o)/2] }, func(n int64) int64 { return n - n/2 + n }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// An image of its own per case: containerd shares a
			// blob committed in one namespace with the others.
			img := randomImage(t, 256<<10, 1)
			layers, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			rc, err := layers[0].Compressed()
			if err != nil {
				t.Fatal(err)
			}
			blob, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			dgst, _ := layers[0].Digest()
			mt, _ := layers[0].MediaType()
			size := int64(len(blob))
			desc := ocispec.Descriptor{MediaType: string(mt), Digest: digest.Digest(dgst.String()), Size: size}
			left := tc.left(blob, bytes.Repeat([]byte{0xa5}, len(blob)))
			wantServed := tc.wantServed(size)

			var served atomic.Int64
			host := newRegistry(t, countBlob(desc.Digest.String(), size, tc.openRanges, &served))
			ref := host + "/test/resume:v1"
			push(t, ref, img)
			served.Store(0)

			ctx := namespaces.WithNamespace(context.Background(), namespace)
			lctx, done, err := c.WithLease(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { done(ctx) })
			cs := c.ContentStore()
			key := remotes.MakeRefKey(ctx, desc)
			w, err := content.OpenWriter(lctx, cs, content.WithRef(key), content.WithDescriptor(desc))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(left); err != nil {
				t.Fatal(err)
			}
			w.Close()

			p := newPuller(t, c, puller.Options{})
			im, err := p.Prepare(context.Background(), ref, instance.ImageOptions{Key: t.Name()})
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			defer im.Release(context.Background())
			if got := served.Load(); got != wantServed {
				t.Errorf("registry served %d bytes of the %d-byte layer, want %d", got, size, wantServed)
			}
			if _, err := cs.Status(ctx, key); !errdefs.IsNotFound(err) {
				t.Errorf("ingest %s after Prepare: got %v, want not found", key, err)
			}
			if _, err := cs.Info(ctx, desc.Digest); err != nil {
				t.Errorf("layer blob after Prepare: %v", err)
			}
		})
	}
}
