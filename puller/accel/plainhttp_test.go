package accel

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/containerd/remotes/docker"
)

// httpsDown is a transport on which every HTTPS request fails, as for a
// network attacker who resets them; it records the requests it got and
// sends nothing anywhere.
type httpsDown struct {
	mu   sync.Mutex
	seen []string
}

func (t *httpsDown) RoundTrip(req *http.Request) (*http.Response, error) {
	t.mu.Lock()
	t.seen = append(t.seen, req.URL.Scheme+"://"+req.URL.Host+req.URL.Path)
	t.mu.Unlock()
	if req.Body != nil {
		req.Body.Close()
	}
	return nil, errors.New("connection reset by peer")
}

// TestPlainHTTPOnlyToLoopback: when HTTPS to a registry not on loopback
// fails, go-containerregistry's fallback to plain HTTP (references are
// parsed with name.Insecure for the embedded registry's sake) must not
// happen: the conversion fails with ErrPlainHTTP, and no plain-HTTP
// request leaves fcd. Registries on loopback are still spoken to in plain
// HTTP, and token servers and redirects are the registry's choice.
func TestPlainHTTPOnlyToLoopback(t *testing.T) {
	down := &httpsDown{}
	c := NewConverter(Options{Transport: down})
	_, err := c.Resolve(context.Background(), "10.11.12.13:5000/team/app:v1")
	if !errors.Is(err, ErrPlainHTTP) {
		t.Errorf("Resolve with HTTPS down: %v, want ErrPlainHTTP", err)
	}
	down.mu.Lock()
	for _, u := range down.seen {
		if strings.HasPrefix(u, "http://") {
			t.Errorf("a plain-HTTP request left: %s", u)
		}
	}
	if len(down.seen) == 0 {
		t.Error("no HTTPS request was tried")
	}
	down.mu.Unlock()

	rec := &httpsDown{}
	rt := httpsUnlessAllowed{rt: rec, plain: docker.MatchLocalhost}
	for _, u := range []string{
		"http://127.0.0.1:5000/v2/",
		"http://localhost:5000/v2/x/manifests/v1",
		"http://[::1]:5000/v2/",
		"https://10.11.12.13:5000/v2/",
		"http://auth.example.com/token",
	} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if _, err := rt.RoundTrip(req); errors.Is(err, ErrPlainHTTP) {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	for _, u := range []string{"http://10.11.12.13:5000/v2/", "http://registry.example.com/v2/x/blobs/sha256:00"} {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if _, err := rt.RoundTrip(req); !errors.Is(err, ErrPlainHTTP) {
			t.Errorf("%s: %v, want ErrPlainHTTP", u, err)
		}
	}
}
