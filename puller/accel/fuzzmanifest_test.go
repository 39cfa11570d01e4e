package accel

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// manifestRegistry serves one fuzz input: its manifest as the tag v1 of
// every repository, and its blobs and child manifests by digest; anything
// else (pushes, the accelerated tag) goes to an in-memory registry, new
// for each input.
type manifestRegistry struct {
	mu        sync.Mutex
	manifest  []byte
	mediaType string
	blobs     map[string][]byte // by digest, manifests included
	mem       http.Handler
}

func (m *manifestRegistry) set(manifest []byte, mediaType string, blobs map[string][]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.manifest, m.mediaType, m.blobs = manifest, mediaType, blobs
	m.mem = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
}

func (m *manifestRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	manifest, mt, blobs, mem := m.manifest, m.mediaType, m.blobs, m.mem
	m.mu.Unlock()
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		var body []byte
		ref := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		switch {
		case strings.HasSuffix(r.URL.Path, "/manifests/v1"), ref == digestOf(manifest):
			body = manifest
		case blobs[ref] != nil:
			body, mt = blobs[ref], string(types.OCIManifestSchema1)
		}
		if body != nil {
			w.Header().Set("Content-Type", mt)
			w.Header().Set("Docker-Content-Digest", digestOf(body))
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			if r.Method == http.MethodGet {
				w.Write(body)
			}
			return
		}
	}
	mem.ServeHTTP(w, r)
}

func digestOf(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// manifestSeeds returns manifests (with their media types) over blobs:
// well-formed OCI and Docker images and an index, and the ways a creator
// may get one wrong or make one hostile.
func manifestSeeds(t testing.TB) (blobs map[string][]byte, seeds [][2]string, config []byte) {
	layerA := gzipTar(t, []tarFile{{name: "app/", typ: tar.TypeDir, mode: 0o755}, {name: "app/main", typ: tar.TypeReg, mode: 0o755, data: []byte("main")}})
	layerB := gzipTar(t, []tarFile{{name: "etc/motd", typ: tar.TypeReg, mode: 0o644, data: bytes.Repeat([]byte("hi\n"), 1000)}})
	boom := bomb(t, 2*fuzzLimit)
	blobs = map[string][]byte{}
	for _, b := range [][]byte{layerA, layerB, boom} {
		blobs[digestOf(b)] = b
	}
	diffIDs := func(layers ...string) string {
		var ids []string
		for range layers {
			ids = append(ids, `"sha256:`+strings.Repeat("0", 64)+`"`)
		}
		return strings.Join(ids, ",")
	}
	config = []byte(`{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/app/main"]},"rootfs":{"type":"layers","diff_ids":[` + diffIDs("a", "b") + `]}}`)
	desc := func(mt string, b []byte) string {
		return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, mt, digestOf(b), len(b))
	}
	cfgDesc := desc(string(types.OCIConfigJSON), config)
	oci := func(layers ...string) string {
		return `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` + cfgDesc + `,"layers":[` + strings.Join(layers, ",") + `]}`
	}
	gzl := string(types.OCILayer)
	a, b := desc(gzl, layerA), desc(gzl, layerB)
	good := oci(a, b)
	blobs[digestOf([]byte(good))] = []byte(good)
	docker := `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":` +
		desc(string(types.DockerConfigJSON), config) + `,"layers":[` + desc(string(types.DockerLayer), layerA) + `]}`
	ociMT, idxMT := string(types.OCIManifestSchema1), string(types.OCIImageIndex)
	index := func(m string, platform string) string {
		return fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d,"platform":%s}]}`,
			idxMT, ociMT, digestOf([]byte(m)), len(m), platform)
	}
	seeds = [][2]string{
		{good, ociMT},
		{docker, string(types.DockerManifestSchema2)},
		{index(good, `{"os":"linux","architecture":"amd64"}`), idxMT},
		{index(good, `{"os":"windows","architecture":"arm64"}`), idxMT},
		{index(index(good, `{}`), `{"os":"linux","architecture":"amd64"}`), idxMT},
		{oci(a, a, a), ociMT}, // duplicated layers
		{oci(), ociMT},        // no layers
		{oci(desc(gzl, boom)), ociMT},
		{oci(desc(gzl, []byte("not there"))), ociMT}, // missing blob
		{oci(strings.Replace(a, `"size":`, `"size":-`, 1)), ociMT},
		{oci(strings.Replace(a, `"size":`, `"size":4611686018427387904`, 1)), ociMT},
		{oci(strings.Replace(a, digestOf(layerA), digestOf(layerB), 1)), ociMT}, // digest not of the bytes of that size
		{oci(desc(string(types.OCILayerZStd), layerA), desc("text/plain", layerB)), ociMT},
		{oci(desc(string(types.DockerForeignLayer), []byte("x"))[:len(desc(string(types.DockerForeignLayer), []byte("x")))-1] + `,"urls":["http://127.0.0.1:1/x"]}`), ociMT},
		{oci(strings.TrimSuffix(a, "}") + `,"data":"aGVsbG8="}`), ociMT},
		{oci(a, b)[:40], ociMT},
		{`{"schemaVersion":1,"fsLayers":[]}`, string(types.DockerManifestSchema1Signed)},
		{good, "application/json"},
		{`null`, ociMT},
		{``, ""},
	}
	return blobs, seeds, config
}

// FuzzConvertManifest converts the image a registry describes with the
// manifest (of the given media type) and config in the input, over a few
// good and hostile layers, in both modes. It must not panic or hang, and
// must leave nothing in TempDir; a conversion that succeeds must name the
// manifest it converted.
func FuzzConvertManifest(f *testing.F) {
	blobs, seeds, config := manifestSeeds(f)
	for _, s := range seeds {
		f.Add([]byte(s[0]), s[1], config, false)
		f.Add([]byte(s[0]), s[1], config, true)
	}
	f.Add([]byte(seeds[0][0]), seeds[0][1], []byte(`{"rootfs":{"diff_ids":[]}}`), true)
	f.Add([]byte(seeds[0][0]), seeds[0][1], []byte(`{`), false)
	reg := &manifestRegistry{}
	srv := httptest.NewServer(reg)
	f.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	f.Fuzz(func(t *testing.T, manifest []byte, mediaType string, cfg []byte, full bool) {
		all := map[string][]byte{digestOf(cfg): cfg}
		for d, b := range blobs {
			all[d] = b
		}
		// The config the seeds name is the input's, if they name one.
		all[digestOf(config)] = cfg
		reg.set(manifest, mediaType, all)
		mode := ModeIndexOnly
		if full {
			mode = ModeFull
		}
		tmp := t.TempDir()
		c := NewConverter(Options{TempDir: tmp, MaxUncompressedSize: fuzzLimit, MaxEntries: fuzzEntries, Parallelism: 1})
		res, err := c.Convert(context.Background(), Request{Ref: host + "/f/app:v1", Mode: mode, Prefetch: []string{"/app/"}})
		if left, _ := os.ReadDir(tmp); len(left) > 0 {
			t.Errorf("left %d files in TempDir", len(left))
		}
		if err != nil {
			return
		}
		if _, err := v1.NewHash(res.SourceDigest); err != nil || res.Target != host+"/f/app:v1"+TagSuffix {
			t.Errorf("got result %+v", res)
		}
		if mt := types.MediaType(mediaType); !mt.IsIndex() && json.Valid(manifest) && res.SourceDigest != digestOf(manifest) {
			t.Errorf("converted %s, want the manifest served, %s", res.SourceDigest, digestOf(manifest))
		}
	})
}
