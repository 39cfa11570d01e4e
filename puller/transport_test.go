package puller_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/puller"
)

// slowBody yields its bytes one per pause.
type slowBody struct {
	left  int
	pause time.Duration
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	time.Sleep(b.pause)
	b.left--
	p[0] = 'x'
	return 1, nil
}

// TestBoundTransport checks what BoundTransport bounds: a registry's
// silence (no headers; a body read that waits), and not the caller's own
// slowness (an upload longer than the header bound; pauses between
// reads). Where the registry answers, it has a second, a long time on
// loopback, to do so.
func TestBoundTransport(t *testing.T) {
	const bound = 200 * time.Millisecond
	const patient = time.Second
	release := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/silent":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/upload":
			n, _ := io.Copy(io.Discard, r.Body)
			w.Write([]byte(strings.Repeat("y", int(n))))
		case "/stall":
			w.Write([]byte("first"))
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/body":
			w.Write([]byte(strings.Repeat("z", 256<<10)))
		}
	}))
	t.Cleanup(func() {
		close(release)
		s.Close()
	})
	host := strings.TrimPrefix(s.URL, "http://")
	client := func(d time.Duration) *http.Client {
		return &http.Client{Transport: puller.BoundTransport(s.Client().Transport, d, d)}
	}
	c := client(bound)

	t.Run("no headers", func(t *testing.T) {
		start := time.Now()
		_, err := c.Get(s.URL + "/silent")
		if !errors.Is(err, puller.ErrRegistryTimeout) || !strings.Contains(err.Error(), host) {
			t.Fatalf("got %v, want ErrRegistryTimeout naming %s", err, host)
		}
		if took := time.Since(start); took > 20*bound {
			t.Errorf("failed after %s, bound %s", took, bound)
		}
	})
	t.Run("upload longer than the bound", func(t *testing.T) {
		// The body takes three bounds to send.
		req, err := http.NewRequest(http.MethodPut, s.URL+"/upload", &slowBody{left: 6, pause: patient / 2})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client(patient).Do(req)
		if err != nil {
			t.Fatalf("upload: %v", err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || string(b) != "yyyyyy" {
			t.Fatalf("upload answered %q, %v", b, err)
		}
	})
	t.Run("body stalls", func(t *testing.T) {
		resp, err := c.Get(s.URL + "/stall")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if !errors.Is(err, puller.ErrRegistryTimeout) || !strings.Contains(err.Error(), host) {
			t.Fatalf("read %q, %v; want ErrRegistryTimeout naming %s", b, err, host)
		}
	})
	t.Run("reader pauses", func(t *testing.T) {
		resp, err := client(patient).Get(s.URL + "/body")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 64<<10)
		var n int
		for i := 0; ; i++ {
			if i == 1 {
				// The body is in the socket buffers by now: the
				// registry is not silent.
				time.Sleep(2 * patient)
			}
			m, err := resp.Body.Read(buf)
			n += m
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("read after a pause, %d bytes in: %v", n, err)
			}
		}
		if n != 256<<10 {
			t.Fatalf("read %d bytes, want %d", n, 256<<10)
		}
	})
	t.Run("caller cancels", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), bound/4)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/silent", nil)
		_, err := c.Do(req)
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, puller.ErrRegistryTimeout) {
			t.Fatalf("got %v, want the caller's deadline, not the registry's", err)
		}
	})
}
