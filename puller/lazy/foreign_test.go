package lazy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/fcd-dev/fcd/instance/image"
	"github.com/fcd-dev/fcd/internal/regtest"
	"github.com/fcd-dev/fcd/internal/testenv"
	"github.com/fcd-dev/fcd/puller"
)

// TestPrepareRefusesForeignURLs: a blob that names URLs to fetch it from
// refuses the image, and the URLs, here a loopback server that would
// serve the right bytes, are never requested. containerd's fetcher, which
// reads the manifest and config, would have asked that server for the
// config before the registry.
func TestPrepareRefusesForeignURLs(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireFile(t, "/dev/fuse", "fuse3")
	reg := regtest.New(t)
	cfg, _ := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Config:   ocispec.ImageConfig{Entrypoint: []string{"/bin/app"}},
		RootFS:   ocispec.RootFS{Type: "layers"},
	})
	layer := gz(t, testLayers(t)[0])
	var hits atomic.Int32
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/config" {
			w.Write(cfg)
		} else {
			w.Write(layer)
		}
	}))
	t.Cleanup(origin.Close)

	cd := reg.AddBlob(cfg)
	cd.MediaType = ocispec.MediaTypeImageConfig
	ld := reg.AddBlob(layer)
	ld.MediaType = ocispec.MediaTypeImageLayerGzip
	foreignConfig, foreignLayer := cd, ld
	foreignConfig.URLs = []string{origin.URL + "/config"}
	foreignLayer.URLs = []string{origin.URL + "/layer"}
	putManifest(t, reg, "foreign", "config", manifestOf(foreignConfig, ld))
	putManifest(t, reg, "foreign", "layer", manifestOf(cd, foreignLayer))

	for _, tag := range []string{"config", "layer"} {
		t.Run(tag, func(t *testing.T) {
			hits.Store(0)
			imgs, m := newImages(t, reg)
			_, err := imgs.Prepare(context.Background(), reg.Ref("foreign")+":"+tag, image.Options{Key: "k"})
			if !errors.Is(err, puller.ErrForeignURLs) {
				t.Errorf("Prepare: got %v, want ErrForeignURLs", err)
			}
			if n := hits.Load(); n != 0 {
				t.Errorf("the blob's URL was requested %d times, want never", n)
			}
			if len(m.Mounted()) != 0 {
				t.Errorf("Mounted() = %v after a refused image", m.Mounted())
			}
		})
	}
}
