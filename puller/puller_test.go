package puller_test

import (
	"context"
	"errors"
	"io"
	stdlog "log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/errdefs"
	"github.com/fcd-dev/fcd/instance"
	"github.com/fcd-dev/fcd/internal/testenv"
	"github.com/fcd-dev/fcd/puller"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const namespace = "fcdpt"

var (
	once   sync.Once
	daemon *instance.Daemon
	client *containerd.Client
	envErr error
	tmp    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if client != nil {
		client.Close()
	}
	if daemon != nil {
		_ = daemon.Close()
	}
	if tmp != "" {
		_ = os.RemoveAll(tmp)
	}
	os.Exit(code)
}

// setup returns a client of a containerd shared by the package's tests.
func setup(t *testing.T) *containerd.Client {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "containerd", "containerd")
	once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if tmp, envErr = os.MkdirTemp("", "fcdpt-"); envErr != nil {
			return
		}
		if daemon, envErr = instance.StartDaemon(ctx, instance.DaemonOptions{Name: namespace, DataDir: tmp}); envErr != nil {
			return
		}
		client, envErr = containerd.New(daemon.Address())
	})
	if envErr != nil {
		t.Fatalf("containerd: %v", envErr)
	}
	return client
}

// registryHandler is an empty registry; wrap, when non-nil, wraps it.
func registryHandler(wrap func(http.Handler) http.Handler) http.Handler {
	var h http.Handler = registry.New(registry.Logger(stdlog.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	return h
}

// newRegistry serves an empty registry on loopback; wrap, when non-nil,
// wraps it.
func newRegistry(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	s := httptest.NewServer(registryHandler(wrap))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func push(t *testing.T, ref string, img v1.Image, opts ...remote.Option) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

func withPlatform(t *testing.T, img v1.Image, os, arch string) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = os, arch
	cf.Config.Entrypoint = []string{"/bin/true"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func randomImage(t *testing.T, size int64, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	return withPlatform(t, img, "linux", "amd64")
}

func newPuller(t *testing.T, c *containerd.Client, opts puller.Options) *puller.Puller {
	t.Helper()
	opts.Namespace = namespace
	p, err := puller.New(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrepare(t *testing.T) {
	c := setup(t)
	host := newRegistry(t, nil)
	ref := host + "/test/two-layers:v1"
	push(t, ref, randomImage(t, 4096, 2))
	p := newPuller(t, c, puller.Options{})
	ctx := context.Background()

	img, err := p.Prepare(ctx, ref, instance.ImageOptions{Key: t.Name() + "-1"})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if got := len(img.LowerDirs()); got != 2 {
		t.Errorf("LowerDirs: got %d dirs, want 2", got)
	}
	for _, d := range img.LowerDirs() {
		entries, err := os.ReadDir(d)
		if err != nil || len(entries) == 0 {
			t.Errorf("lower dir %s: got %d entries, err %v; want the layer's files", d, len(entries), err)
		}
	}
	if img.Stats().Cached || img.Stats().BytesFetched == 0 || img.Stats().UnpackedBytes < 2*4096 {
		t.Errorf("first Stats: got %+v, want an uncached pull of both layers", img.Stats())
	}
	if got := img.Config().Entrypoint; len(got) != 1 || got[0] != "/bin/true" {
		t.Errorf("Config.Entrypoint: got %q, want [/bin/true]", got)
	}

	again, err := p.Prepare(ctx, ref, instance.ImageOptions{Key: t.Name() + "-2"})
	if err != nil {
		t.Fatalf("second Prepare: %v", err)
	}
	if !again.Stats().Cached || again.Stats().BytesFetched != 0 {
		t.Errorf("second Stats: got %+v, want Cached and nothing fetched", again.Stats())
	}
	for _, i := range []instance.Image{img, again} {
		if err := i.Release(ctx); err != nil {
			t.Errorf("Release: %v", err)
		}
		if err := i.Release(ctx); err != nil {
			t.Errorf("second Release: %v", err)
		}
	}
	nctx := namespaces.WithNamespace(ctx, namespace)
	if _, err := c.SnapshotService(puller.DefaultSnapshotter).Stat(nctx, t.Name()+"-1"); err == nil {
		t.Error("view still exists after Release")
	}
}

func TestPrepareRefuses(t *testing.T) {
	c := setup(t)
	host := newRegistry(t, nil)
	arm := withPlatform(t, randomImage(t, 1024, 1), "linux", "arm64")
	armIndex := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{
		Add:        arm,
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}},
	})
	push(t, host+"/test/arm:v1", arm)
	idxRef, err := name.ParseReference(host+"/test/arm-index:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(idxRef, armIndex); err != nil {
		t.Fatal(err)
	}
	push(t, host+"/test/big:v1", randomImage(t, 64<<10, 2))

	tests := []struct {
		name   string
		ref    string
		opts   puller.Options
		want   error
		msgHas string
	}{
		{"arm64 image", host + "/test/arm:v1", puller.Options{}, puller.ErrPlatform, "linux/arm64"},
		{"index without amd64", host + "/test/arm-index:v1", puller.Options{}, puller.ErrPlatform, "linux/arm64"},
		{"compressed over limit", host + "/test/big:v1", puller.Options{MaxCompressedSize: 1024}, puller.ErrTooLarge, "compressed"},
		{"uncompressed over limit", host + "/test/big:v1", puller.Options{MaxUncompressedSize: 100 << 10}, puller.ErrTooLarge, "unpacked past"},
		{"missing tag", host + "/test/none:v1", puller.Options{}, nil, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPuller(t, c, tt.opts)
			_, err := p.Prepare(context.Background(), tt.ref, instance.ImageOptions{Key: "refuse"})
			if err == nil {
				t.Fatal("Prepare: got nil error, want a refusal")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msgHas) {
				t.Errorf("error %q: want it to mention %q", err, tt.msgHas)
			}
		})
	}
}

func TestPrepareCredentials(t *testing.T) {
	c := setup(t)
	const user, secret = "alice", "s3cret"
	host := newRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != secret {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	ref := host + "/test/private:v1"
	push(t, ref, randomImage(t, 1024, 1), remote.WithAuth(&authn.Basic{Username: user, Password: secret}))

	tests := []struct {
		name    string
		secret  string
		wantErr bool
	}{
		{"right secret", secret, false},
		{"wrong secret", "nope", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			creds := func(h string) (string, string, error) {
				calls.Add(1)
				if h != host {
					t.Errorf("Credentials host: got %q, want %q", h, host)
				}
				return user, tt.secret, nil
			}
			p := newPuller(t, c, puller.Options{})
			img, err := p.Prepare(context.Background(), ref, instance.ImageOptions{Key: "creds", Credentials: creds})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Prepare: got err %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr && (!errors.Is(err, puller.ErrUnauthorized) || !errdefs.IsUnauthorized(err)) {
				t.Errorf("Prepare: got %v, want puller.ErrUnauthorized (errdefs unauthenticated)", err)
			}
			if tt.wantErr && !strings.Contains(err.Error(), "image pull not authorized: the registry refused the function's credentials (role none)") {
				t.Errorf("Prepare: error %q does not say the credentials were refused", err)
			}
			if img != nil {
				_ = img.Release(context.Background())
			}
			if calls.Load() == 0 {
				t.Error("Credentials hook never called")
			}
		})
	}
}
