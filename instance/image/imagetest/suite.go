package imagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	stdlog "log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/opencontainers/go-digest"

	"github.com/fcd-dev/fcd/instance/image"
)

// The credentials the suite's registry accepts.
const (
	User   = "imagetest"
	Secret = "imagetest-secret"
)

// Credentials returns the user name and secret for a registry host, as
// image.Options.Credentials does.
type Credentials = func(host string) (user, secret string, err error)

// Accelerated is an accelerated form of a pushed image, as
// Options.Accelerate returns it.
type Accelerated struct {
	// Ref is the reference the suite prepares instead of the pushed one
	// (<tag>_accelerated, for instance).
	Ref string
	// Digest is the manifest digest the prepared image must report
	// (image.Image.Digest): the accelerated manifest's for an image that
	// replaces the original (eStargz), the original's for an artifact
	// that only points at it (an index-only artifact's subject).
	Digest digest.Digest
}

// Options configures RunWith.
type Options struct {
	// NewImages returns the Images under test; it is called once per
	// test. Required.
	NewImages func(t *testing.T) image.Images
	// Accelerate, if set, converts every image the suite pushes (ref, a
	// repo:tag on the suite's registry, read and written with creds)
	// before it is prepared, for implementations that only prepare
	// accelerated images (package puller/lazy). Nil: the pushed plain
	// gzip image is prepared as it is.
	Accelerate func(t *testing.T, ref string, creds Credentials) (Accelerated, error)
}

// Run runs the conformance suite against the Images newImages returns;
// see the package documentation. It is RunWith with only NewImages.
func Run(t *testing.T, newImages func(t *testing.T) image.Images) {
	RunWith(t, Options{NewImages: newImages})
}

// RunWith runs the conformance suite as opts says; see the package
// documentation.
func RunWith(t *testing.T, opts Options) {
	reg := newRegistry(t)
	reg.accelerate = opts.Accelerate
	for _, tc := range []struct {
		name string
		test func(*testing.T, *testRegistry, image.Images)
	}{
		{"Tree", testTree},
		{"SharedPull", testSharedPull},
		{"Release", testRelease},
		{"Unauthorized", testUnauthorized},
		{"Steps", testSteps},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, reg, opts.NewImages(t)) })
	}
}

// creds returns the suite registry's credentials.
func creds(string) (string, string, error) { return User, Secret, nil }

func options(t *testing.T, key string) image.Options {
	return image.Options{Key: t.Name() + "/" + key, Credentials: creds, Role: "imagetest", Function: "imagetest", InstanceID: key, MemoryMB: 128}
}

func prepare(t *testing.T, imgs image.Images, ref string, opts image.Options) image.Image {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	img, err := imgs.Prepare(ctx, ref, opts)
	if err != nil {
		t.Fatalf("Prepare %s: %v", ref, err)
	}
	t.Cleanup(func() {
		if err := img.Release(context.Background()); err != nil {
			t.Errorf("Release: %v", err)
		}
	})
	return img
}

func testTree(t *testing.T, reg *testRegistry, imgs image.Images) {
	var layers [][]byte
	for _, entries := range featureLayers() {
		layers = append(layers, tarLayer(t, entries))
	}
	want, err := apply(layers)
	if err != nil {
		t.Fatalf("reference applier: %v", err)
	}
	ref, dgst := reg.push(t, "imagetest/tree:v1", layers)

	img := prepare(t, imgs, ref, options(t, "tree"))
	if got := img.Digest(); got.String() != dgst.String() {
		t.Errorf("Digest: got %s, want %s", got, dgst)
	}
	if got := img.Config().Entrypoint; len(got) != 1 || got[0] != "/bin/tool" {
		t.Errorf("Config().Entrypoint: got %q, want [/bin/tool]", got)
	}
	got, inodes, err := readTree(mountLowers(t, img.LowerDirs()))
	if err != nil {
		t.Fatalf("read prepared tree: %v", err)
	}
	for _, d := range diff(got, want) {
		t.Error(d)
	}
	// Names that one layer linked and no later layer replaced share an
	// inode.
	byNode := map[*node][]string{}
	for p, n := range want {
		byNode[n] = append(byNode[n], p)
	}
	links := 0
	for _, names := range byNode {
		for _, p := range names[1:] {
			links++
			if inodes[p] != inodes[names[0]] {
				t.Errorf("hard links %s and %s: got inodes %v and %v, want one", names[0], p, inodes[names[0]], inodes[p])
			}
		}
	}
	if links == 0 {
		t.Error("the test image has no surviving hard link")
	}
}

func testSharedPull(t *testing.T, reg *testRegistry, imgs image.Images) {
	const n = 4
	random := make([]byte, 256<<10)
	rand.Read(random)
	entries := [][]entry{
		{dir("data", 0o755), file("data/random", 0o644, string(random))},
		{file("data/more", 0o644, string(random[:1024]))},
	}
	var layers [][]byte
	for _, e := range entries {
		layers = append(layers, tarLayer(t, e))
	}
	want, err := apply(layers)
	if err != nil {
		t.Fatalf("reference applier: %v", err)
	}
	ref, dgst := reg.push(t, "imagetest/shared:v1", layers)
	reg.reset()
	resolved := reg.notifyTagRequests(n)
	release := reg.holdBlobs()

	var wg sync.WaitGroup
	got := make([]image.Image, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			got[i], errs[i] = imgs.Prepare(ctx, ref, options(t, "shared-"+string(rune('a'+i))))
		})
	}
	// Serve blobs once every call resolved the tag, so the calls overlap;
	// an implementation that resolves once for all is let go after a
	// while.
	select {
	case <-resolved:
	case <-time.After(10 * time.Second):
	}
	release()
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Prepare %d: %v", i, errs[i])
		}
		defer got[i].Release(context.Background())
		if d := got[i].Digest(); d.String() != dgst.String() {
			t.Errorf("Prepare %d: Digest %s, want %s", i, d, dgst)
		}
	}
	// Read every image's tree at once: a lazy pull fetches as it is read,
	// and concurrent reads of one image must share that fetch too.
	roots := make([]string, n)
	for i := range n {
		roots[i] = mountLowers(t, got[i].LowerDirs())
	}
	trees := make([]tree, n)
	for i := range n {
		wg.Go(func() { trees[i], _, errs[i] = readTree(roots[i]) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("read tree %d: %v", i, errs[i])
		}
		for _, d := range diff(trees[i], want) {
			t.Errorf("tree %d: %s", i, d)
		}
	}
	var fetched int64
	for d, size := range reg.blobs(t, ref) {
		served := reg.served(d)
		fetched += served
		if served > size {
			t.Errorf("blob %s (%d bytes): %d bytes served to %d concurrent Prepare calls and reads, want each byte at most once", d, size, served, n)
		}
	}
	if fetched == 0 {
		t.Error("no blob byte served: the image was not pulled")
	}
}

func testRelease(t *testing.T, reg *testRegistry, imgs image.Images) {
	ref, _ := reg.push(t, "imagetest/release:v1", [][]byte{tarLayer(t, []entry{file("f", 0o644, "release")})})
	ctx := context.Background()
	opts := options(t, "release")
	img, err := imgs.Prepare(ctx, ref, opts)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	for i := range 2 {
		if err := img.Ready(ctx); err != nil {
			t.Errorf("Ready %d: %v", i+1, err)
		}
	}
	for i := range 2 {
		if err := img.Release(ctx); err != nil {
			t.Errorf("Release %d: %v", i+1, err)
		}
	}
	// The key is free again.
	again := prepare(t, imgs, ref, opts)
	if len(again.LowerDirs()) != 1 {
		t.Errorf("LowerDirs after a new Prepare: got %q, want one layer", again.LowerDirs())
	}
}

func testUnauthorized(t *testing.T, reg *testRegistry, imgs image.Images) {
	ref, _ := reg.push(t, "imagetest/private:v1", [][]byte{tarLayer(t, []entry{file("f", 0o644, "private")})})
	wrong := func(string) (string, string, error) { return User, "wrong", nil }
	for _, tc := range []struct {
		name  string
		creds func(string) (string, string, error)
		role  string
	}{
		{"wrong secret", wrong, "role/wrong"},
		{"no credentials", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := options(t, "private")
			opts.Credentials, opts.Role = tc.creds, tc.role
			img, err := imgs.Prepare(context.Background(), ref, opts)
			if err == nil {
				img.Release(context.Background())
				t.Fatal("Prepare: got nil error, want image.ErrUnauthorized")
			}
			if !errors.Is(err, image.ErrUnauthorized) || !errdefs.IsUnauthorized(err) {
				t.Errorf("Prepare: got %v, want image.ErrUnauthorized (errdefs unauthenticated)", err)
			}
			if !strings.Contains(err.Error(), "image pull not authorized") || (tc.role != "" && !strings.Contains(err.Error(), tc.role)) {
				t.Errorf("Prepare: error %q does not say the pull was not authorized for role %q", err, tc.role)
			}
		})
	}
}

// testRegistry is an in-process registry behind basic auth that counts
// what it serves.
type testRegistry struct {
	host string

	mu          sync.Mutex
	tagRequests int              // authorized manifest requests by tag
	tagWant     int              // close tagReached when tagRequests reaches it
	tagReached  chan struct{}    // nil when nobody waits
	bytes       map[string]int64 // blob digest -> bytes served to GETs
	gate        chan struct{}    // when non-nil, blob GETs wait for it

	accelerate func(*testing.T, string, Credentials) (Accelerated, error) // Options.Accelerate
}

func newRegistry(t *testing.T) *testRegistry {
	r := &testRegistry{bytes: map[string]int64{}}
	h := registry.New(registry.Logger(stdlog.New(io.Discard, "", 0)))
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if u, p, ok := req.BasicAuth(); !ok || u != User || p != Secret {
			w.Header().Set("WWW-Authenticate", `Basic realm="imagetest"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		path := req.URL.Path
		if i := strings.Index(path, "/manifests/"); i >= 0 && !strings.Contains(path[i:], ":") {
			r.countTagRequest()
		}
		if i := strings.Index(path, "/blobs/"); i >= 0 && req.Method == http.MethodGet {
			r.mu.Lock()
			gate := r.gate
			r.mu.Unlock()
			if gate != nil {
				select {
				case <-gate:
				case <-req.Context().Done():
					return
				}
			}
			w = &countingWriter{ResponseWriter: w, r: r, digest: path[i+len("/blobs/"):]}
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(s.Close)
	r.host = strings.TrimPrefix(s.URL, "http://")
	return r
}

// push pushes an image of the uncompressed tar layers (gzip compressed)
// as repo:tag and returns its reference and manifest digest.
func (r *testRegistry) push(t *testing.T, repoTag string, layers [][]byte) (string, v1.Hash) {
	t.Helper()
	img := empty.Image
	for _, l := range layers {
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(l)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Entrypoint = []string{"/bin/tool"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref := r.host + "/" + repoTag
	nref, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(nref, img, remote.WithAuth(&authn.Basic{Username: User, Password: Secret})); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	dgst, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if r.accelerate == nil {
		return ref, dgst
	}
	acc, err := r.accelerate(t, ref, creds)
	if err != nil {
		t.Fatalf("accelerate %s: %v", ref, err)
	}
	want, err := v1.NewHash(acc.Digest.String())
	if err != nil {
		t.Fatalf("accelerate %s: digest %q: %v", ref, acc.Digest, err)
	}
	return acc.Ref, want
}

// blobs returns the config and layer blobs, with their sizes, of the
// manifest ref names and of the manifest that one's subject names (an
// index-only artifact's original image), as the registry serves them.
// Reading manifests serves no blob byte.
func (r *testRegistry) blobs(t *testing.T, ref string) map[string]int64 {
	t.Helper()
	nref, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for nref != nil {
		desc, err := remote.Get(nref, remote.WithAuth(&authn.Basic{Username: User, Password: Secret}))
		if err != nil {
			t.Fatalf("get manifest %s: %v", nref, err)
		}
		m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
		if err != nil {
			t.Fatalf("manifest %s: %v", nref, err)
		}
		out[m.Config.Digest.String()] = m.Config.Size
		for _, l := range m.Layers {
			out[l.Digest.String()] = l.Size
		}
		repo := nref.Context()
		nref = nil
		if m.Subject != nil {
			nref = repo.Digest(m.Subject.Digest.String())
		}
	}
	return out
}

// reset forgets what was served.
func (r *testRegistry) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bytes = map[string]int64{}
	r.tagRequests = 0
}

// notifyTagRequests returns a channel closed once n manifest requests by
// tag have arrived since the last reset.
func (r *testRegistry) notifyTagRequests(n int) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tagWant, r.tagReached = n, make(chan struct{})
	return r.tagReached
}

func (r *testRegistry) countTagRequest() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tagRequests++
	if r.tagReached != nil && r.tagRequests >= r.tagWant {
		close(r.tagReached)
		r.tagReached = nil
	}
}

// holdBlobs makes blob GETs wait until the returned func is called.
func (r *testRegistry) holdBlobs() func() {
	gate := make(chan struct{})
	r.mu.Lock()
	r.gate = gate
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		r.gate = nil
		r.mu.Unlock()
		close(gate)
	}
}

func (r *testRegistry) served(digest string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bytes[digest]
}

type countingWriter struct {
	http.ResponseWriter
	r      *testRegistry
	digest string
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.r.mu.Lock()
	w.r.bytes[w.digest] += int64(n)
	w.r.mu.Unlock()
	return n, err
}

// testSteps checks the timed steps of Stats: resolve, the credentials
// asked for, the layers' fetch (full) or index (lazy), and the mount, each
// within the pull and in that order where they cannot overlap.
func testSteps(t *testing.T, reg *testRegistry, imgs image.Images) {
	// A layer no earlier run left on the host: its fetch is timed.
	unique := file("etc/steps", 0o644, time.Now().Format(time.RFC3339Nano))
	ref, _ := reg.push(t, "imagetest/steps:v1", [][]byte{tarLayer(t, append(featureLayers()[0], unique))})
	img := prepare(t, imgs, ref, options(t, "steps"))
	st := img.Stats()
	zero := image.Span{}
	for _, s := range []struct {
		name string
		span image.Span
	}{{"Resolve", st.Resolve}, {"Auth", st.Auth}, {"Mount", st.Mount}} {
		if s.span == zero {
			t.Errorf("Stats().%s: got the zero Span, want the step timed", s.name)
		}
		if s.span.Offset < 0 || s.span.End() > st.Duration {
			t.Errorf("Stats().%s = %+v: want within the pull's %v", s.name, s.span, st.Duration)
		}
	}
	if st.Fetch == zero && st.Index == zero {
		t.Errorf("Stats() = %+v: want the layers' Fetch or Index timed for an image new to the host", st)
	}
	if st.Mount.Offset < st.Resolve.End() {
		t.Errorf("Mount %+v began before Resolve %+v ended", st.Mount, st.Resolve)
	}
	if st.Prefetch == zero && st.PrefetchBytes != 0 {
		t.Errorf("Stats() = %+v: PrefetchBytes without a prefetch", st)
	}
}
