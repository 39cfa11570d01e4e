package regtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/remotes/docker"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Faults switch the registry's misbehaviours. The zero value is a
// well-behaved registry without authentication. Counters (Stalls, Drops,
// Fails) count down as they are used; a negative counter never runs out.
type Faults struct {
	// RefuseMultiRange answers 400 to a Range header with several ranges.
	RefuseMultiRange bool
	// IgnoreRange answers ranged blob GETs with 200 and the whole blob.
	IgnoreRange bool
	// Redirect answers blob GETs with 307 to a signed URL on this server
	// that is valid for SignedURLTTL (zero means one minute).
	Redirect     bool
	SignedURLTTL time.Duration
	// Auth requires bearer tokens (see the package comment). TokenTTL is
	// their lifetime (zero means five minutes, as the embedded registry).
	// ExpiredStatus is the answer to an expired token: zero or 401 means
	// 401 with a challenge, 403 means 403 without one.
	Auth          bool
	TokenTTL      time.Duration
	ExpiredStatus int
	// StallAfter and Stalls: the next Stalls blob bodies send StallAfter
	// bytes, then nothing until the client goes away.
	StallAfter int64
	Stalls     int
	// DropAfter and Drops: the next Drops blob bodies send DropAfter bytes,
	// then the connection is closed.
	DropAfter int64
	Drops     int
	// FailStatus and Fails: the next Fails blob GETs are answered with
	// FailStatus (zero means 503).
	FailStatus int
	Fails      int
	// Down answers every request with 503.
	Down bool
}

// Request is one logged request.
type Request struct {
	Method string
	Path   string
	Range  string // the Range header, "" if none
	Status int
	Bytes  int64 // body bytes sent
}

// Registry is a running test registry. Its methods are safe for
// concurrent use.
type Registry struct {
	// Host is "127.0.0.1:port"; URL is "http://" + Host.
	Host string
	URL  string

	srv   *httptest.Server
	inner http.Handler

	mu      sync.Mutex
	faults  Faults
	blobs   map[digest.Digest][]byte
	tokens  map[string]time.Time // token → expiry
	signed  map[string]time.Time // signature → expiry
	user    string
	secret  string
	log     []Request
	tokenNo int
	gate    *Gate
}

// Gate holds blob bodies back: while it is closed, each blob GET that
// would send bytes announces itself on Arrived and waits for Release (or
// for its client to go away).
type Gate struct {
	// Arrived receives each held request (buffered: 1024).
	Arrived chan Request
	release chan struct{}
	once    sync.Once
}

// Release lets every held and later request through.
func (g *Gate) Release() { g.once.Do(func() { close(g.release) }) }

// Hold installs a closed gate before blob bodies, replacing any other,
// and returns it. Release it before the test ends.
func (r *Registry) Hold() *Gate {
	g := &Gate{Arrived: make(chan Request, 1024), release: make(chan struct{})}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gate = g
	return g
}

// New starts a registry on loopback, closed when the test ends.
func New(t testing.TB) *Registry {
	r := &Registry{
		blobs:  make(map[digest.Digest][]byte),
		tokens: make(map[string]time.Time),
		signed: make(map[string]time.Time),
	}
	r.inner = registry.New(registry.WithBlobHandler(blobStore{r}), registry.Logger(log.New(io.Discard, "", 0)))
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL
	r.Host = strings.TrimPrefix(r.srv.URL, "http://")
	t.Cleanup(r.Close)
	return r
}

// Close stops the server, cutting connections in progress (stalled
// bodies included), and waits for its handlers, so the request log is
// complete afterwards. It may be called more than once.
func (r *Registry) Close() {
	r.srv.CloseClientConnections()
	r.srv.Close()
}

// SetFaults replaces the registry's faults.
func (r *Registry) SetFaults(f Faults) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = f
}

// UpdateFaults changes the faults in place, under the registry's lock.
func (r *Registry) UpdateFaults(f func(*Faults)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.faults)
}

// Faults returns the current faults (counters as they are now).
func (r *Registry) Faults() Faults {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.faults
}

// SetCredentials sets the one login the token endpoint accepts; earlier
// ones stop working (tokens already issued stay valid until they expire).
func (r *Registry) SetCredentials(user, secret string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.user, r.secret = user, secret
}

// ExpireTokens makes every token issued so far expired.
func (r *Registry) ExpireTokens() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.tokens {
		r.tokens[k] = time.Time{}
	}
}

// AddBlob stores b, readable from every repository (blobs are not
// scoped to one here), and returns its descriptor.
func (r *Registry) AddBlob(b []byte) ocispec.Descriptor {
	d := digest.FromBytes(b)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blobs[d] = bytes.Clone(b)
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: int64(len(b))}
}

// Ref returns the reference of repo on this registry ("host/repo").
func (r *Registry) Ref(repo string) string { return r.Host + "/" + repo }

// Hosts returns containerd registry hosts for this registry over plain
// HTTP with its own client and no authorizer (callers bring theirs).
func (r *Registry) Hosts() docker.RegistryHosts {
	return func(host string) ([]docker.RegistryHost, error) {
		if host != r.Host {
			return nil, fmt.Errorf("regtest: unknown host %q", host)
		}
		return []docker.RegistryHost{{
			Client:       r.srv.Client(),
			Host:         r.Host,
			Scheme:       "http",
			Path:         "/v2",
			Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve | docker.HostCapabilityPush,
		}}, nil
	}
}

// Requests returns the log of requests so far.
func (r *Registry) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.log...)
}

// BlobRequests returns the logged GETs of blob d (redirected and signed
// ones included).
func (r *Registry) BlobRequests(d digest.Digest) []Request {
	var out []Request
	for _, q := range r.Requests() {
		if q.Method == http.MethodGet && strings.HasSuffix(q.Path, "/"+d.String()) {
			out = append(out, q)
		}
	}
	return out
}

// ResetLog clears the request log.
func (r *Registry) ResetLog() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = nil
}

// BytesSent returns the body bytes sent for blob d so far.
func (r *Registry) BytesSent(d digest.Digest) int64 {
	var n int64
	for _, q := range r.BlobRequests(d) {
		n += q.Bytes
	}
	return n
}

func randomHex() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// blobStore is the registry handler's blob storage: r.blobs.
type blobStore struct{ r *Registry }

func (s blobStore) blob(h v1.Hash) ([]byte, bool) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	b, ok := s.r.blobs[digest.Digest(h.String())]
	return b, ok
}

func (s blobStore) Get(_ context.Context, _ string, h v1.Hash) (io.ReadCloser, error) {
	b, ok := s.blob(h)
	if !ok {
		return nil, registry.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (s blobStore) Stat(_ context.Context, _ string, h v1.Hash) (int64, error) {
	b, ok := s.blob(h)
	if !ok {
		return 0, registry.ErrNotFound
	}
	return int64(len(b)), nil
}

func (s blobStore) Put(_ context.Context, _ string, h v1.Hash, rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	if digest.FromBytes(b).String() != h.String() {
		return errors.New("regtest: digest mismatch")
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.blobs[digest.Digest(h.String())] = b
	return nil
}
