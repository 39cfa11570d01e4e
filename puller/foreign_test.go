package puller_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/containerd/containerd/remotes"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/fcd-dev/fcd/instance"
	"github.com/fcd-dev/fcd/puller"
)

// fetchFunc is a remotes.Fetcher.
type fetchFunc func(context.Context, ocispec.Descriptor) (io.ReadCloser, error)

func (f fetchFunc) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	return f(ctx, desc)
}

func TestRegistryOnly(t *testing.T) {
	var asked []digest.Digest
	var inner remotes.Fetcher = fetchFunc(func(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
		asked = append(asked, desc.Digest)
		return io.NopCloser(strings.NewReader("blob")), nil
	})
	f := puller.RegistryOnly(inner)
	plain := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("plain"), Size: 4}
	if rc, err := f.Fetch(context.Background(), plain); err != nil {
		t.Fatalf("Fetch of a registry blob: %v", err)
	} else {
		rc.Close()
	}
	foreign := plain
	foreign.Digest, foreign.URLs = digest.FromString("foreign"), []string{"http://127.0.0.1:1/layer"}
	_, err := f.Fetch(context.Background(), foreign)
	if !errors.Is(err, puller.ErrForeignURLs) || !strings.Contains(err.Error(), foreign.Digest.String()) {
		t.Errorf("Fetch of a blob with URLs: got %v, want ErrForeignURLs naming %s", err, foreign.Digest)
	}
	if len(asked) != 1 || asked[0] != plain.Digest {
		t.Errorf("the inner fetcher was asked for %v, want only %s", asked, plain.Digest)
	}
}

// TestPrepareRefusesForeignURLs: an image whose layer names a URL to
// fetch it from (a Docker foreign layer) is refused, and the URL, here a
// loopback server that would serve the right bytes, is never requested:
// containerd's fetcher would have fetched the layer from there, on the
// host's network, before asking the registry.
func TestPrepareRefusesForeignURLs(t *testing.T) {
	c := setup(t)
	layer, err := random.Layer(1024, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	blob, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Write(blob)
	}))
	t.Cleanup(origin.Close)

	img, err := mutate.Append(mutate.MediaType(empty.Image, types.DockerManifestSchema2), mutate.Addendum{
		Layer:     layer,
		MediaType: types.DockerForeignLayer,
		URLs:      []string{origin.URL + "/layer"},
	})
	if err != nil {
		t.Fatal(err)
	}
	img = withPlatform(t, img, "linux", "amd64")
	host := newRegistry(t, nil)
	ref := host + "/test/foreign:v1"
	push(t, ref, img)

	p := newPuller(t, c, puller.Options{})
	_, err = p.Prepare(context.Background(), ref, instance.ImageOptions{Key: t.Name()})
	if !errors.Is(err, puller.ErrForeignURLs) {
		t.Errorf("Prepare: got %v, want ErrForeignURLs", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the layer's URL was requested %d times, want never", n)
	}
}
