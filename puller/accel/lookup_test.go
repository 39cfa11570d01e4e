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

// TestResolveKeepsRegistrySession checks that Resolve, which every cold
// start of an image with acceleration calls before its pull, pings a
// registry once and then costs one request a look-up; and that new
// credentials for the registry are used at once.
func TestResolveKeepsRegistrySession(t *testing.T) {
	var mu sync.Mutex
	var reqs []string
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reqs = append(reqs, r.Method+" "+r.URL.Path)
		mu.Unlock()
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
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
		mu.Lock()
		reqs = nil
		mu.Unlock()
		d, err := c.Resolve(context.Background(), ref)
		if err != nil || d != want.String() {
			t.Fatalf("Resolve: %s, %v; want %s", d, err, want)
		}
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(reqs)
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
