package registry

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// Blob reads.
//
// distribution serves a blob through a reader with a 4 MiB buffer of its
// own, allocated for each request and filled from the file whatever the
// range asked for: a lazy pull's GET of a 20 KB range cost the registry
// ~2.5 ms of CPU, mostly copying and clearing those 4 MiB, and a start-up
// that fetches a few thousand ranges kept a core busy. blobReader lets
// distribution decide everything about a blob GET but the bytes: it asks
// distribution the same request as HEAD (authorization, the repository's
// link to the blob, the headers), then serves the range from the blob's
// file in the filesystem driver's layout with http.ServeContent, which
// sends it with sendfile(2). Anything else, and any blob GET whose HEAD is
// not a success or whose file is not where the layout puts it, is
// distribution's.

// blobReader serves blob GETs from the files under root, the filesystem
// driver's root directory, and passes every other request to app.
type blobReader struct {
	app  http.Handler
	root string
}

func (b *blobReader) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	dgst, ok := blobGET(r)
	if !ok {
		b.app.ServeHTTP(w, r)
		return
	}
	head := r.Clone(r.Context())
	head.Method = http.MethodHead
	rec := &headRecorder{header: http.Header{}}
	b.app.ServeHTTP(rec, head)
	if rec.status != http.StatusOK && rec.status != http.StatusPartialContent {
		// A refusal, a missing blob, a redirect: distribution answers
		// the GET itself, with its error body.
		b.app.ServeHTTP(w, r)
		return
	}
	f, err := os.Open(b.dataPath(dgst))
	if err != nil {
		b.app.ServeHTTP(w, r)
		return
	}
	defer f.Close()
	for k, v := range rec.header {
		switch k {
		case "Content-Length", "Content-Range":
			// ServeContent's, for the range it serves.
		default:
			w.Header()[k] = v
		}
	}
	// The ETag distribution set (the digest) answers If-None-Match and
	// If-Range.
	http.ServeContent(w, r, "", time.Time{}, f)
}

// blobGET returns the digest of a blob GET: /v2/<name>/blobs/<digest>.
func blobGET(r *http.Request) (digest.Digest, bool) {
	if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/v2/") {
		return "", false
	}
	i := strings.LastIndex(r.URL.Path, "/blobs/")
	if i < len("/v2/x") {
		return "", false
	}
	d, err := digest.Parse(r.URL.Path[i+len("/blobs/"):])
	if err != nil {
		return "", false
	}
	return d, true
}

// dataPath is where the filesystem driver keeps blob d's bytes:
// <root>/docker/registry/v2/blobs/<algorithm>/<first two hex>/<hex>/data
// (distribution's blobDataPathSpec). digest.Parse has checked d's hex.
func (b *blobReader) dataPath(d digest.Digest) string {
	hex := d.Encoded()
	return filepath.Join(b.root, "docker", "registry", "v2", "blobs", string(d.Algorithm()), hex[:2], hex, "data")
}

// headRecorder keeps a HEAD answer's status and headers.
type headRecorder struct {
	header http.Header
	status int
}

func (h *headRecorder) Header() http.Header { return h.header }

func (h *headRecorder) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

func (h *headRecorder) Write(p []byte) (int, error) {
	h.WriteHeader(http.StatusOK)
	return len(p), nil
}
