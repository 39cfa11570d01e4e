package accel

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/compression"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// tamperingRegistry serves go-containerregistry's in-memory registry on
// loopback, but answers GETs of the blobs in swap with other bytes, as a
// registry the image's creator controls may. It returns its host:port.
func tamperingRegistry(t testing.TB, swap map[v1.Hash][]byte) string {
	mem := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for d, data := range swap {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+d.String()) {
				w.Header().Set("Docker-Content-Digest", d.String())
				w.Write(data)
				return
			}
		}
		mem.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// gzipTar returns files as a gzip-compressed tar.
func gzipTar(t testing.TB, files []tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: f.mode, Linkname: f.link}
		if f.typ == tar.TypeReg {
			h.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// imageOf returns a linux/amd64 OCI image of the given compressed layers.
func imageOf(t testing.TB, blobs ...[]byte) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, b := range blobs {
		var err error
		if img, err = mutate.AppendLayers(img, static.NewLayer(b, types.OCILayer)); err != nil {
			t.Fatal(err)
		}
	}
	return linuxAMD64(t, img)
}

// linuxAMD64 returns img with a linux/amd64 config running entrypoint.
func linuxAMD64(t testing.TB, img v1.Image, entrypoint ...string) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if entrypoint != nil {
		cf.Config.Entrypoint = entrypoint
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// TestConvertVerifiesSource: a registry that serves other bytes than the
// layer digest the manifest names gets no accelerated image made of them,
// in any mode. The swapped layer is a valid gzip tar, so only the digest
// tells.
func TestConvertVerifiesSource(t *testing.T) {
	good := gzipTar(t, []tarFile{{name: "bin/app", typ: tar.TypeReg, mode: 0o755, data: []byte("good")}})
	evil := gzipTar(t, []tarFile{{name: "bin/app", typ: tar.TypeReg, mode: 0o755, data: []byte("evil")}})
	img := imageOf(t, good)
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	host := tamperingRegistry(t, map[v1.Hash][]byte{d: evil})
	for _, tc := range []struct {
		name     string
		mode     Mode
		prefetch []string
	}{
		{"full streamed", ModeFull, nil},
		{"full listed", ModeFull, []string{"/bin/app"}},
		{"index-only", ModeIndexOnly, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := host + "/tamper/" + strings.ReplaceAll(tc.name, " ", "-") + ":v1"
			push(t, ref, img)
			_, err := NewConverter(Options{TempDir: t.TempDir()}).Convert(context.Background(), Request{Ref: ref, Mode: tc.mode, Prefetch: tc.prefetch})
			if err == nil || !strings.Contains(err.Error(), "checksum") {
				t.Fatalf("got %v, want the layer refused for not matching its digest %s", err, d)
			}
			if _, err := remote.Head(mustRef(t, ref+TagSuffix)); err == nil {
				t.Error("a refused conversion left an accelerated tag")
			}
		})
	}
}

// bomb returns a gzip tar of one file of n zero bytes: about n/1000
// bytes compressed.
func bomb(t testing.TB, n int) []byte {
	return gzipTar(t, []tarFile{{name: "zeros", typ: tar.TypeReg, mode: 0o644, data: make([]byte, n)}})
}

// emptyDir fails the test unless dir has no entries.
func emptyDir(t *testing.T, dir string) {
	t.Helper()
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("left behind in TempDir: %s", e.Name())
	}
}

// TestConvertTooLarge: a decompression bomb (a small layer unpacking past
// Options.MaxUncompressedSize) fails the conversion with ErrTooLarge in
// every mode, leaving no temporary file, and the job reports the reason.
// The limit counts the layers together.
func TestConvertTooLarge(t *testing.T) {
	const limit = 8 << 20
	host := testRegistry(t)
	big := imageOf(t, bomb(t, 32<<20)) // 32 MiB of zeros in 32 KiB
	halves := imageOf(t, bomb(t, 5<<20), bomb(t, 5<<20))
	for _, tc := range []struct {
		name     string
		img      v1.Image
		mode     Mode
		prefetch []string
	}{
		{"full streamed", big, ModeFull, nil},
		{"full listed", big, ModeFull, []string{"/zeros"}},
		{"index-only", big, ModeIndexOnly, nil},
		{"full two layers", halves, ModeFull, nil},
		{"index-only two layers", halves, ModeIndexOnly, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := host + "/bomb/" + strings.ReplaceAll(tc.name, " ", "-") + ":v1"
			push(t, ref, tc.img)
			tmp := t.TempDir()
			c := NewConverter(Options{TempDir: tmp, MaxUncompressedSize: limit, Parallelism: 1})
			_, err := c.Convert(context.Background(), Request{Ref: ref, Mode: tc.mode, Prefetch: tc.prefetch})
			if !errors.Is(err, ErrTooLarge) || !errdefs.IsInvalidArgument(err) {
				t.Fatalf("got %v, want ErrTooLarge", err)
			}
			emptyDir(t, tmp)
			// Under the limit, the same image converts.
			c = NewConverter(Options{TempDir: tmp, MaxUncompressedSize: 64 << 20})
			if _, err := c.Convert(context.Background(), Request{Ref: ref, Mode: tc.mode, Prefetch: tc.prefetch}); err != nil {
				t.Fatalf("under the limit: %v", err)
			}
			emptyDir(t, tmp)
		})
	}

	// Many entries, each small: the limit on entries holds, counting the
	// layers together.
	var many []tarFile
	for i := range 300 {
		many = append(many, tarFile{name: fmt.Sprintf("f%d", i), typ: tar.TypeReg, mode: 0o644})
	}
	crowded := imageOf(t, gzipTar(t, many), gzipTar(t, many))
	// Long names (in PAX records), few entries: 40 of 64 KiB.
	var long []tarFile
	for i := range 40 {
		long = append(long, tarFile{name: fmt.Sprintf("f%d-%s", i, strings.Repeat("a", 64<<10)), typ: tar.TypeReg, mode: 0o644})
	}
	named := imageOf(t, gzipTar(t, long))
	for _, tc := range []struct {
		name       string
		img        v1.Image
		mode       Mode
		prefetch   []string
		over, fits Options
		text       string
	}{
		{"entries full streamed", crowded, ModeFull, nil, Options{MaxEntries: 500}, Options{MaxEntries: 700}, "500 entries"},
		{"entries full listed", crowded, ModeFull, []string{"/f1"}, Options{MaxEntries: 500}, Options{MaxEntries: 700}, "500 entries"},
		{"entries index-only", crowded, ModeIndexOnly, nil, Options{MaxEntries: 500}, Options{MaxEntries: 700}, "500 entries"},
		{"names full streamed", named, ModeFull, nil, Options{MaxHeaderBytes: 1 << 20}, Options{MaxHeaderBytes: 8 << 20}, "1048576 bytes of names"},
		{"names full listed", named, ModeFull, []string{"/f1"}, Options{MaxHeaderBytes: 1 << 20}, Options{MaxHeaderBytes: 8 << 20}, "1048576 bytes of names"},
		{"names index-only", named, ModeIndexOnly, nil, Options{MaxHeaderBytes: 1 << 20}, Options{MaxHeaderBytes: 8 << 20}, "1048576 bytes of names"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := host + "/bomb/" + strings.ReplaceAll(tc.name, " ", "-") + ":v1"
			push(t, ref, tc.img)
			tmp := t.TempDir()
			tc.over.TempDir, tc.fits.TempDir = tmp, tmp
			_, err := NewConverter(tc.over).Convert(context.Background(), Request{Ref: ref, Mode: tc.mode, Prefetch: tc.prefetch})
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want ErrTooLarge for more than %s", err, tc.text)
			}
			emptyDir(t, tmp)
			if _, err := NewConverter(tc.fits).Convert(context.Background(), Request{Ref: ref, Mode: tc.mode, Prefetch: tc.prefetch}); err != nil {
				t.Fatalf("under the limit: %v", err)
			}
		})
	}

	t.Run("service", func(t *testing.T) {
		ref := host + "/bomb/svc:v1"
		push(t, ref, big)
		db := openDB(t, filepath.Join(t.TempDir(), "fcd.db"))
		s, err := NewService(db, NewConverter(Options{TempDir: t.TempDir(), MaxUncompressedSize: limit}), ServiceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		runService(t, s)
		ctx := context.Background()
		if _, err := s.Accelerate(ctx, Request{Ref: ref, Mode: ModeFull}); err != nil {
			t.Fatal(err)
		}
		if j, err := s.Wait(ctx, ref, ended); err != nil || j.State != StateFailed {
			t.Fatalf("got %+v, %v; want Failed", j, err)
		}
		if st := s.FunctionStatus(ref, true); st.State != StateFailed || !strings.Contains(st.Reason, "too large") {
			t.Errorf("FunctionStatus: got %+v, want Failed as too large", st)
		}
	})
}

// endlessLayer is a layer whose gzip tar never ends: one file claiming
// 2^62 bytes, whose zeros are made as they are read. Its stream does not
// depend on the conversion's context, as a blob already fetched or a
// bomb's output does not. produced is closed after the first 8 MiB.
type endlessLayer struct {
	v1.Layer
	produced chan struct{}
}

func (l endlessLayer) Compressed() (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() {
		zw, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
		tw := tar.NewWriter(zw)
		err := tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1 << 62})
		zeros := make([]byte, 1<<20)
		for i := 0; err == nil; i++ {
			_, err = tw.Write(zeros)
			if i == 8 {
				close(l.produced)
			}
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// TestConvertCancelEndless: a conversion whose context ends stops, even
// inside a file that does not end, and says why.
func TestConvertCancelEndless(t *testing.T) {
	for _, tc := range []struct {
		name     string
		prefetch []string
	}{
		{"streamed", nil},
		{"listed", []string{"/zeros"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewConverter(Options{TempDir: t.TempDir(), MaxUncompressedSize: -1})
			l := endlessLayer{produced: make(chan struct{})}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				<-l.produced
				cancel()
			}()
			_, err := c.stargzLayer(ctx, filepath.Join(t.TempDir(), "0"), l, tc.prefetch, newTracker(1, 0, nil), newBudget(c.opts))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want context.Canceled", err)
			}
		})
	}
}

// stallingRegistry serves the in-memory registry but sends only the first
// half of the blobs in stall, then waits for the client to go, closing
// stalled when it does the first time.
func stallingRegistry(t testing.TB, stall map[v1.Hash]bool, stalled chan<- struct{}) string {
	mem := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for d := range stall {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+d.String()) {
				rec := httptest.NewRecorder()
				mem.ServeHTTP(rec, r)
				body := rec.Body.Bytes()
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				w.Write(body[:len(body)/2])
				w.(http.Flusher).Flush()
				once.Do(func() { close(stalled) })
				<-r.Context().Done()
				return
			}
		}
		mem.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestConvertCancelCleansUp: a conversion cancelled while it fetches (the
// function deleted, fcd stopping) returns the context's error and leaves
// nothing in TempDir, in every mode.
func TestConvertCancelCleansUp(t *testing.T) {
	files := []tarFile{{name: "app/", typ: tar.TypeDir, mode: 0o755}}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 8 {
		data := make([]byte, 256<<10)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		files = append(files, tarFile{name: fmt.Sprintf("app/%d", i), typ: tar.TypeReg, mode: 0o644, data: data})
	}
	small := gzipTar(t, files[:2])
	large := gzipTar(t, files)
	img := imageOf(t, small, large)
	layers, _ := img.Layers()
	d, _ := layers[1].Digest()
	for _, tc := range []struct {
		name     string
		mode     Mode
		prefetch []string
	}{
		{"full streamed", ModeFull, nil},
		{"full listed", ModeFull, []string{"/app/1"}},
		{"index-only", ModeIndexOnly, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stalled := make(chan struct{})
			host := stallingRegistry(t, map[v1.Hash]bool{d: true}, stalled)
			ref := host + "/cancel/app:v1"
			push(t, ref, img)
			tmp := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				<-stalled
				cancel()
			}()
			_, err := NewConverter(Options{TempDir: tmp}).Convert(ctx, Request{Ref: ref, Mode: tc.mode, Prefetch: tc.prefetch})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want context.Canceled", err)
			}
			emptyDir(t, tmp)
		})
	}
}

// TestConvertRefusesForeignURLs: a layer naming URLs to fetch it from (a
// Docker foreign layer) is refused before anything is fetched, so that an
// image's creator cannot make fcd, on the host's network, send requests
// to a server of their choosing: here a loopback one, named so that
// go-containerregistry's check of IP addresses does not apply.
func TestConvertRefusesForeignURLs(t *testing.T) {
	blob := gzipTar(t, []tarFile{{name: "app", typ: tar.TypeReg, mode: 0o755, data: []byte("app")}})
	var hits atomic.Int32
	side := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(blob)
	}))
	t.Cleanup(side.Close)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(side.URL, "http://"))
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img, err := mutate.Append(img, mutate.Addendum{
		Layer:     static.NewLayer(blob, types.DockerForeignLayer),
		MediaType: types.DockerForeignLayer,
		URLs:      []string{"http://localhost:" + port + "/layer"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// A registry that keeps no foreign layer, as registries do.
	mem := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/sha256:") && r.Method != http.MethodPost && r.Method != http.MethodPatch && r.Method != http.MethodPut {
			layers, _ := img.Layers()
			d, _ := layers[0].Digest()
			if strings.HasSuffix(r.URL.Path, d.String()) {
				http.NotFound(w, r)
				return
			}
		}
		mem.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, mode := range []Mode{ModeFull, ModeIndexOnly} {
		ref := host + "/foreign/" + string(mode) + ":v1"
		r := mustRef(t, ref)
		if err := remote.Write(r, img); err != nil {
			t.Fatal(err)
		}
		_, err := NewConverter(Options{TempDir: t.TempDir()}).Convert(context.Background(), Request{Ref: ref, Mode: mode})
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "URL") {
			t.Errorf("%s: got %v, want ErrUnsupported naming the URLs", mode, err)
		}
	}
	if n := hits.Load(); n > 0 {
		t.Errorf("the conversions sent %d requests to the layer's URLs, want none", n)
	}
}

// TestResolveOwnRepository: the same image (digest) in two repositories
// gets a job in each, converted into each repository's own
// <tag>_accelerated, and each repository's functions run their own
// repository's accelerated image, never the other's, which another
// creator controls.
func TestResolveOwnRepository(t *testing.T) {
	host := testRegistry(t)
	img := generatedImage(t, compression.GZip, types.OCILayer)
	theirs, mine := host+"/theirs/app:v1", host+"/mine/app:v1"
	push(t, theirs, img)
	push(t, mine, img)
	d, _ := img.Digest()
	db := openDB(t, filepath.Join(t.TempDir(), "fcd.db"))
	s, err := NewService(db, NewConverter(Options{TempDir: t.TempDir()}), ServiceOptions{RebakeDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runService(t, s)
	ctx := context.Background()
	for _, ref := range []string{theirs, mine} {
		if j, err := s.Accelerate(ctx, Request{Ref: ref, Mode: ModeFull}); err != nil || j.State != StatePreparing || j.Key() != repoOf(ref)+"@"+d.String() {
			t.Fatalf("Accelerate %s: got %+v, %v; want a Preparing job of its own", ref, j, err)
		}
		if j, err := s.Wait(ctx, ref, ended); err != nil || j.State != StateReady || j.Result.Target != ref+TagSuffix {
			t.Fatalf("%s: got %+v, %v; want Ready, converted into %s", ref, j, err, ref+TagSuffix)
		}
	}
	for _, ref := range []string{theirs, mine} {
		repo := repoOf(ref)
		j, err := s.Job(ctx, ref)
		if err != nil || j.Ref != ref || j.Digest != d.String() || j.Result == nil {
			t.Fatalf("Job %s: got %+v, %v; want its own Ready job", ref, j, err)
		}
		want := repo + "@" + j.Result.TargetDigest
		r, err := s.Resolve(ctx, ref)
		if err != nil || !r.Accelerated || r.Ref != want || r.Lazy != ref+TagSuffix+"@"+j.Result.TargetDigest || r.Source != repo+"@"+d.String() {
			t.Errorf("Resolve %s: got %+v, %v; want its own accelerated image %s", ref, r, err, want)
		}
		if st := s.FunctionStatus(ref, true); st.State != StateReady || st.ResolvedImage != want {
			t.Errorf("FunctionStatus %s: got %+v, want Ready and %s", ref, st, want)
		}
		if m, err := pull(t, want).Manifest(); err != nil || m.Annotations[AnnotationSource] != d.String() {
			t.Errorf("%s: got %v, %v; want the accelerated image of %s in the repository", want, m, err, d)
		}
	}
	if all, err := s.Jobs(ctx); err != nil || len(all) != 2 {
		t.Errorf("Jobs: got %d, %v; want one per repository", len(all), err)
	}
	if j, err := s.Job(ctx, d.String()); !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), host+"/mine/app@") {
		t.Errorf("Job by digest alone: got %+v, %v; want ErrAmbiguous naming the jobs", j, err)
	}
	// A start-up record of the digest concerns both.
	if ok, err := s.Rebake(ctx, d.String()); !ok || err != nil {
		t.Fatalf("Rebake: got %v, %v; want conversions scheduled", ok, err)
	}
	for _, ref := range []string{theirs, mine} {
		if j, err := s.Wait(ctx, ref, func(j Job) bool { return j.RebakeAt == nil }); err != nil || j.State != StateReady {
			t.Errorf("%s after Rebake: got %+v, %v; want it converted again, Ready", ref, j, err)
		}
	}
}

// TestServiceBoundsReason: a failure quoting what the image's creator
// wrote, here a layer media type of 1 MiB, is recorded and reported cut
// short.
func TestServiceBoundsReason(t *testing.T) {
	host := testRegistry(t)
	blob := gzipTar(t, []tarFile{{name: "app", typ: tar.TypeReg, mode: 0o755, data: []byte("app")}})
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	mt := types.MediaType(strings.Repeat("x", 1<<20))
	img, err := mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(blob, mt), MediaType: mt})
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/reason/app:v1"
	push(t, ref, img)
	db := openDB(t, filepath.Join(t.TempDir(), "fcd.db"))
	s, err := NewService(db, NewConverter(Options{}), ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runService(t, s)
	ctx := context.Background()
	if _, err := s.Accelerate(ctx, Request{Ref: ref, Mode: ModeIndexOnly}); err != nil {
		t.Fatal(err)
	}
	if j, err := s.Wait(ctx, ref, ended); err != nil || j.State != StateFailed {
		t.Fatalf("got %+v, %v; want Failed", j.State, err)
	}
	st := s.FunctionStatus(ref, true)
	if !strings.Contains(st.Reason, "media type") || len(st.Reason) > 2*maxReason {
		t.Errorf("got a reason of %d bytes, want at most %d saying why: %.200s", len(st.Reason), 2*maxReason, st.Reason)
	}
}

// TestServiceConvertTimeout: a registry that stops sending a blob half-way
// without closing the connection fails its conversion after
// ServiceOptions.ConvertTimeout, saying so, and the worker goes on to the
// next job.
func TestServiceConvertTimeout(t *testing.T) {
	slow := imageOf(t, gzipTar(t, []tarFile{{name: "app", typ: tar.TypeReg, mode: 0o755, data: bytes.Repeat([]byte("slow"), 1000)}}))
	layers, _ := slow.Layers()
	d, _ := layers[0].Digest()
	host := stallingRegistry(t, map[v1.Hash]bool{d: true}, make(chan struct{}))
	stalled, fine := host+"/timeout/slow:v1", host+"/timeout/fine:v1"
	push(t, stalled, slow)
	push(t, fine, imageOf(t, gzipTar(t, []tarFile{{name: "app", typ: tar.TypeReg, mode: 0o755, data: []byte("fine")}})))
	db := openDB(t, filepath.Join(t.TempDir(), "fcd.db"))
	s, err := NewService(db, NewConverter(Options{TempDir: t.TempDir()}), ServiceOptions{ConvertTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runService(t, s)
	ctx := context.Background()
	for _, ref := range []string{stalled, fine} {
		if _, err := s.Accelerate(ctx, Request{Ref: ref, Mode: ModeFull}); err != nil {
			t.Fatal(err)
		}
	}
	if j, err := s.Wait(ctx, stalled, ended); err != nil || j.State != StateFailed || !strings.Contains(j.Error, "not done within 100ms") {
		t.Fatalf("got %s %q, %v; want Failed as not done in time", j.State, j.Error, err)
	}
	if j, err := s.Wait(ctx, fine, ended); err != nil || j.State != StateReady {
		t.Fatalf("next job: got %s %q, %v; want Ready", j.State, j.Error, err)
	}
}

// TestServiceEnsureTimeout: an image queued on demand (GetFunction) whose
// registry never answers is given up after ServiceOptions.ResolveTimeout,
// its connection closed, and no job is recorded (a later Ensure asks
// again).
func TestServiceEnsureTimeout(t *testing.T) {
	asked := make(chan struct{}, 1)
	gone := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/manifests/") {
			return // /v2/: 200, no authentication
		}
		asked <- struct{}{}
		<-r.Context().Done()
		gone <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/silent/app:v1"
	db := openDB(t, filepath.Join(t.TempDir(), "fcd.db"))
	s, err := NewService(db, NewConverter(Options{}), ServiceOptions{ResolveTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runService(t, s)
	s.Ensure(ref)
	<-asked
	<-gone
	if _, err := s.Job(context.Background(), ref); !errors.Is(err, ErrNotFound) {
		t.Errorf("got %v, want no job recorded for a registry that did not answer", err)
	}
}
