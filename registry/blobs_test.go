package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
)

// TestBlobReads reads blobs through the registry as a lazy puller does,
// by range, and checks that distribution still decides who may read what:
// a role without the repository is refused, and a blob the registry holds
// but the repository does not link is unknown there.
func TestBlobReads(t *testing.T) {
	e := newEnv(t)
	admin := &authn.Basic{Username: adminID, Password: adminSecret}
	layers, err := e.image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layer := layers[0]
	dgst, err := layer.Digest()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	want, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	// A blob of another repository only.
	other, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(e.ref(t, "other/x:v1"), other, remote.WithAuth(admin)); err != nil {
		t.Fatal(err)
	}
	otherLayers, _ := other.Layers()
	otherDigest, _ := otherLayers[0].Digest()

	client := func(auth authn.Authenticator, repo string) *http.Client {
		ref := e.ref(t, repo+":v1")
		tr, err := transport.NewWithContext(context.Background(), ref.Context().Registry, auth, http.DefaultTransport,
			[]string{ref.Context().Scope(transport.PullScope)})
		if err != nil {
			t.Fatalf("token for %s: %v", repo, err)
		}
		return &http.Client{Transport: tr}
	}
	get := func(c *http.Client, repo, d string, header ...string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/v2/%s/blobs/%s", e.reg.Addr(), repo, d), nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}

	c := client(admin, "examples/hello")
	resp, body := get(c, "examples/hello", dgst.String(), "Range", "bytes=100-1099")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, want[100:1100]) ||
		resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-1099/%d", len(want)) ||
		resp.Header.Get("Docker-Content-Digest") != dgst.String() {
		t.Errorf("range: %d %v, %d bytes (equal %v)", resp.StatusCode, resp.Header, len(body), bytes.Equal(body, want[100:1100]))
	}
	resp, body = get(c, "examples/hello", dgst.String())
	if resp.StatusCode != http.StatusOK || digest.FromBytes(body).String() != dgst.String() {
		t.Errorf("whole blob: %d, %d bytes, digest %s, want %s", resp.StatusCode, len(body), digest.FromBytes(body), dgst)
	}
	etag := resp.Header.Get("ETag")
	if resp, _ := get(c, "examples/hello", dgst.String(), "If-None-Match", etag); etag == "" || resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match %q: %d, want 304", etag, resp.StatusCode)
	}
	if resp, body := get(c, "examples/hello", otherDigest.String()); resp.StatusCode != http.StatusNotFound || !bytes.Contains(body, []byte("BLOB_UNKNOWN")) {
		t.Errorf("another repository's blob: %d %s, want 404 BLOB_UNKNOWN", resp.StatusCode, body)
	}
	// No token; a token for other/x only (the client must not fetch a
	// better one, as go-containerregistry's transport does on a 401).
	bare := &http.Client{}
	if resp, body := get(bare, "examples/hello", dgst.String()); resp.StatusCode != http.StatusUnauthorized || bytes.Contains(body, want[:64]) {
		t.Errorf("no token: %d, want 401", resp.StatusCode)
	}
	tokenFor := func(scope string) string {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/token?service=%s&scope=%s", e.reg.Addr(), DefaultService, scope), nil)
		req.SetBasicAuth(adminID, adminSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tok struct{ Token string }
		if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.Token == "" {
			t.Fatalf("token for %s: %d %v", scope, resp.StatusCode, err)
		}
		return tok.Token
	}
	wrong := tokenFor("repository:other/x:pull")
	if resp, _ := get(bare, "examples/hello", dgst.String(), "Authorization", "Bearer "+wrong); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a token for another repository: %d, want 401", resp.StatusCode)
	}
	right := tokenFor("repository:examples/hello:pull")
	if resp, body := get(bare, "examples/hello", dgst.String(), "Authorization", "Bearer "+right, "Range", "bytes=0-9"); resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, want[:10]) {
		t.Errorf("the token for the repository: %d, want 206 and the first 10 bytes", resp.StatusCode)
	}
}

// TestBlobReaderServesFile checks that a blob GET distribution allows is
// served from the blob's file, with distribution's headers, and that
// anything else is distribution's answer.
func TestBlobReaderServesFile(t *testing.T) {
	root := t.TempDir()
	data := []byte("0123456789abcdefghij")
	d := digest.FromBytes(data)
	p := filepath.Join(root, "docker", "registry", "v2", "blobs", "sha256", d.Encoded()[:2], d.Encoded(), "data")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var methods []string
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		methods = append(methods, r.Method+" "+r.URL.Path)
		if r.Header.Get("Authorization") != "Bearer ok" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, "refused by the app")
			return
		}
		if r.Method == http.MethodHead {
			w.Header().Set("Docker-Content-Digest", d.String())
			w.Header().Set("ETag", `"`+d.String()+`"`)
			w.Header().Set("Content-Length", "20")
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusTeapot) // the app's own GET: not wanted here
	})
	b := &blobReader{app: app, root: root}
	do := func(auth, path, rng string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", auth)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		w := httptest.NewRecorder()
		methods = nil
		b.ServeHTTP(w, req)
		return w
	}
	w := do("Bearer ok", "/v2/a/b/blobs/"+d.String(), "bytes=5-9")
	if w.Code != http.StatusPartialContent || w.Body.String() != "56789" || w.Header().Get("Docker-Content-Digest") != d.String() ||
		w.Header().Get("Content-Length") != "5" || fmt.Sprint(methods) != "[HEAD /v2/a/b/blobs/"+d.String()+"]" {
		t.Errorf("allowed range: %d %q %v, app saw %v", w.Code, w.Body, w.Header(), methods)
	}
	if w := do("Bearer no", "/v2/a/b/blobs/"+d.String(), ""); w.Code != http.StatusUnauthorized || w.Body.String() != "refused by the app" {
		t.Errorf("refused: %d %q, want the app's 401", w.Code, w.Body)
	}
	// A blob the app allows whose file is not in the layout: the app's GET.
	missing := digest.FromString("elsewhere")
	if w := do("Bearer ok", "/v2/a/blobs/"+missing.String(), ""); w.Code != http.StatusTeapot {
		t.Errorf("no file: %d, want the app's answer", w.Code)
	}
	for _, path := range []string{"/v2/a/manifests/v1", "/v2/a/blobs/uploads/", "/v2/a/blobs/sha256:../../x", "/v2/blobs/" + d.String()} {
		if w := do("Bearer ok", path, ""); w.Code != http.StatusTeapot || len(methods) != 1 || methods[0] != "GET "+path {
			t.Errorf("%s: %d, app saw %v; want the app's own GET", path, w.Code, methods)
		}
	}
}

// BenchmarkBlobRange reads 22 KB ranges of a 64 MiB blob, as a lazy
// pull's start-up does, through distribution's own blob GET and through
// the registry's handler (blobReader), in process: ns/op is the
// registry's CPU per GET.
func BenchmarkBlobRange(b *testing.B) {
	// distribution logs every request through logrus at info.
	defer logrus.SetLevel(logrus.GetLevel())
	logrus.SetLevel(logrus.FatalLevel)
	dir := b.TempDir()
	reg, err := Start(context.Background(), Options{Dir: dir, AdminAccessKeyID: adminID, AdminAccessKeySecret: adminSecret})
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close(context.Background())
	ref, err := name.ParseReference(reg.Addr()+"/bench/blob:v1", name.Insecure)
	if err != nil {
		b.Fatal(err)
	}
	img, err := random.Image(64<<20, 1)
	if err != nil {
		b.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: adminID, Password: adminSecret})); err != nil {
		b.Fatal(err)
	}
	layers, _ := img.Layers()
	dgst, _ := layers[0].Digest()
	size, _ := layers[0].Size()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/token?service=%s&scope=repository:bench/blob:pull", reg.Addr(), DefaultService), nil)
	req.SetBasicAuth(adminID, adminSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var tok struct{ Token string }
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil {
		b.Fatal(err)
	}
	for _, h := range []struct {
		name string
		h    http.Handler
	}{{"distribution", reg.app}, {"fcd", reg.srv.Handler}} {
		b.Run(h.name, func(b *testing.B) {
			const piece = 22 << 10
			b.SetBytes(piece)
			for i := range b.N {
				off := int64(i*7919*piece) % (size - piece)
				r := httptest.NewRequest(http.MethodGet, "/v2/bench/blob/blobs/"+dgst.String(), nil)
				r.Header.Set("Authorization", "Bearer "+tok.Token)
				r.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+piece-1))
				w := httptest.NewRecorder()
				h.h.ServeHTTP(w, r)
				if w.Code != http.StatusPartialContent || w.Body.Len() != piece {
					b.Fatalf("%d, %d bytes", w.Code, w.Body.Len())
				}
			}
		})
	}
}
