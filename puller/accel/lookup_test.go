package accel

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// requestLog is the lines a loggedRegistry logged.
type requestLog struct {
	mu    sync.Mutex
	lines []string
}

// take returns the lines logged since the last take.
func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.lines
	l.lines = nil
	return lines
}

// loggedRegistry serves go-containerregistry's in-memory registry on
// loopback, logging line(r) for each request r, and returns its
// host:port.
func loggedRegistry(t *testing.T, line func(*http.Request) string) (string, *requestLog) {
	l := &requestLog{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.lines = append(l.lines, line(r))
		l.mu.Unlock()
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), l
}

// TestResolveKeepsRegistrySession checks that Resolve, which every cold
// start of an image with acceleration calls before its pull, pings a
// registry once and then costs one request a look-up; and that new
// credentials for the registry are used at once.
func TestResolveKeepsRegistrySession(t *testing.T) {
	host, reqs := loggedRegistry(t, func(r *http.Request) string { return r.Method + " " + r.URL.Path })
	img, err := random.Image(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/fn/app:v1"
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}

	var credsMu sync.Mutex
	user := "a"
	c := NewConverter(Options{Credentials: func(string) (string, string, error) {
		credsMu.Lock()
		defer credsMu.Unlock()
		return user, "secret", nil
	}})
	resolve := func() []string {
		t.Helper()
		reqs.take()
		d, err := c.Resolve(context.Background(), ref)
		if err != nil || d != want.String() {
			t.Fatalf("Resolve: %s, %v; want %s", d, err, want)
		}
		return reqs.take()
	}
	ping := "GET /v2/"
	if got := resolve(); !slices.Contains(got, ping) {
		t.Errorf("first look-up: %q, want a ping", got)
	}
	for i := range 3 {
		if got := resolve(); len(got) != 1 || got[0] == ping {
			t.Errorf("look-up %d after the first: %q, want the manifest's request alone", i+1, got)
		}
	}
	credsMu.Lock()
	user = "b"
	credsMu.Unlock()
	if got := resolve(); !slices.Contains(got, ping) {
		t.Errorf("look-up with new credentials: %q, want a new session (a ping)", got)
	}
}
