package puller_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/instance/image"
	"github.com/fcd-dev/fcd/puller"
)

// silentListener accepts connections and, while silent, never answers
// them: a registry that took the connection and hung.
type silentListener struct {
	net.Listener
	silent   atomic.Bool
	accepted atomic.Int32

	mu   sync.Mutex
	held []net.Conn
}

func (l *silentListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.accepted.Add(1)
		if !l.silent.Load() {
			return c, nil
		}
		l.mu.Lock()
		l.held = append(l.held, c)
		l.mu.Unlock()
	}
}

func (l *silentListener) Close() error {
	l.mu.Lock()
	for _, c := range l.held {
		c.Close()
	}
	l.mu.Unlock()
	return l.Listener.Close()
}

// stallBlobs makes blob GETs send their headers, then nothing until the
// client goes away, while stall is set.
func stallBlobs(stall *atomic.Bool) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !stall.Load() || r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") {
				h.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
	}
}

// TestPrepareBounded checks that a registry that stops answering fails
// Prepare with ErrRegistryTimeout naming the registry, and that the next
// Prepare starts afresh and succeeds once the registry answers again.
func TestPrepareBounded(t *testing.T) {
	c := setup(t)
	const short = 300 * time.Millisecond

	t.Run("accepts and never answers", func(t *testing.T) {
		var stall atomic.Bool
		s := httptest.NewUnstartedServer(registryHandler(stallBlobs(&stall)))
		ln := &silentListener{Listener: s.Listener}
		s.Listener = ln
		s.Start()
		t.Cleanup(s.Close)
		host := strings.TrimPrefix(s.URL, "http://")
		ref := host + "/test/silent:v1"
		push(t, ref, randomImage(t, 1024, 1))

		p := newPuller(t, c, puller.Options{ResponseHeaderTimeout: short})
		ln.silent.Store(true)
		before := ln.accepted.Load()
		_, err := p.Prepare(context.Background(), ref, image.Options{Key: "silent"})
		checkTimeout(t, err, host)
		if ln.accepted.Load() == before {
			t.Fatal("the registry saw no connection")
		}
		ln.silent.Store(false)
		prepareAndRelease(t, p, ref, "silent")
	})

	for _, tt := range []struct {
		name string
		opts puller.Options
	}{
		{"body stalls", puller.Options{StallTimeout: short}},
		// The deadline also bounds the next, successful pull, which
		// must resolve, fetch, unpack and commit within it on a loaded
		// CI machine: 300 ms was missed now and then.
		{"pull deadline", puller.Options{PullTimeout: 3 * time.Second, StallTimeout: time.Hour}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stall atomic.Bool
			host := newRegistry(t, stallBlobs(&stall))
			ref := host + "/test/stall:v1"
			push(t, ref, randomImage(t, 1024, 1))
			p := newPuller(t, c, tt.opts)

			stall.Store(true)
			_, err := p.Prepare(context.Background(), ref, image.Options{Key: "stall"})
			checkTimeout(t, err, host)
			// The failed pull is not kept: the next one fetches again.
			stall.Store(false)
			prepareAndRelease(t, p, ref, "stall")
		})
	}
}

func checkTimeout(t *testing.T, err error, host string) {
	t.Helper()
	if err == nil {
		t.Fatal("Prepare: got nil error from a silent registry")
	}
	if !errors.Is(err, puller.ErrRegistryTimeout) {
		t.Errorf("Prepare: got %v, want ErrRegistryTimeout", err)
	}
	if !strings.Contains(err.Error(), host) {
		t.Errorf("Prepare: error %q does not name the registry %s", err, host)
	}
}

func prepareAndRelease(t *testing.T, p *puller.Puller, ref, key string) {
	t.Helper()
	img, err := p.Prepare(context.Background(), ref, image.Options{Key: key})
	if err != nil {
		t.Fatalf("Prepare once the registry answers: %v", err)
	}
	if err := img.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// requestCounter counts manifest and blob requests at a registry.
type requestCounter struct {
	manifests, blobs atomic.Int32
}

func (rc *requestCounter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/manifests/"):
			rc.manifests.Add(1)
		case strings.Contains(r.URL.Path, "/blobs/"):
			rc.blobs.Add(1)
		}
		h.ServeHTTP(w, r)
	})
}

// TestPrepareRequests checks what a pull costs at the registry: a cold
// pull fetches the manifest and every blob once; a cached image costs one
// manifest request and no blob request.
func TestPrepareRequests(t *testing.T) {
	c := setup(t)
	var rc requestCounter
	host := newRegistry(t, rc.wrap)
	ref := host + "/test/requests:v1"
	push(t, ref, randomImage(t, 1024, 2))
	rc.manifests.Store(0)
	rc.blobs.Store(0)
	p := newPuller(t, c, puller.Options{})

	prepareAndRelease(t, p, ref, "requests-1")
	// Resolve (HEAD by tag), then the manifest by digest; config and two
	// layers.
	if m, b := rc.manifests.Load(), rc.blobs.Load(); m != 2 || b != 3 {
		t.Errorf("cold pull: got %d manifest and %d blob requests, want 2 and 3", m, b)
	}
	rc.manifests.Store(0)
	rc.blobs.Store(0)
	prepareAndRelease(t, p, ref, "requests-2")
	if m, b := rc.manifests.Load(), rc.blobs.Load(); m != 1 || b != 0 {
		t.Errorf("cached image: got %d manifest and %d blob requests, want 1 and 0", m, b)
	}
}
