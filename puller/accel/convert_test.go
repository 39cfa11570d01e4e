package accel

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"

	"github.com/fcd-dev/fcd/examples/images"
	"github.com/fcd-dev/fcd/puller/gzindex"
)

// testRegistry serves go-containerregistry's in-memory registry on
// loopback and returns its host:port.
func testRegistry(t testing.TB) string {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// tarFile is one entry of a generated layer.
type tarFile struct {
	name, link string
	typ        byte
	mode       int64
	data       []byte
}

// layerOf writes files as a tar layer compressed with comp.
func layerOf(t testing.TB, files []tarFile, comp compression.Compression, mt types.MediaType) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: f.mode, Linkname: f.link, ModTime: time.Unix(1700000000, 0)}
		if f.typ == tar.TypeReg {
			h.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil && f.typ == tar.TypeReg {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithCompression(comp), tarball.WithMediaType(mt))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// generatedImage has three layers with directories, small and large
// files (text, random, zeros), symlinks, hard links, a whiteout and an
// overwritten file, in the given media types.
func generatedImage(t testing.TB, comp compression.Compression, mt types.MediaType) v1.Image {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	text := func(n int) []byte {
		return bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), n/44+1)[:n]
	}
	dir := func(n string) tarFile { return tarFile{name: n, typ: tar.TypeDir, mode: 0o755} }
	reg := func(n string, d []byte) tarFile { return tarFile{name: n, typ: tar.TypeReg, mode: 0o644, data: d} }
	l1 := []tarFile{dir("etc/"), reg("etc/os-release", text(300)), dir("usr/"), dir("usr/lib/"), dir("usr/lib/app/"),
		reg("usr/lib/app/big.bin", random(3<<20)), reg("usr/lib/app/zeros", make([]byte, 5<<20)),
		reg("usr/lib/app/gone", text(10)), reg("etc/motd", text(100))}
	for i := range 200 {
		l1 = append(l1, reg(fmt.Sprintf("usr/lib/app/small-%03d.py", i), text(50+i*37)))
	}
	l2 := []tarFile{dir("app/"), reg("app/main", random(700<<10)), reg("app/config.json", text(2000)),
		{name: "app/link", typ: tar.TypeSymlink, link: "main", mode: 0o777},
		{name: "app/hard", typ: tar.TypeLink, link: "app/main", mode: 0o644},
		{name: "usr/lib/app/.wh.gone", typ: tar.TypeReg, mode: 0o600},
		reg("etc/motd", text(999)), reg("app/empty", nil)}
	l3 := []tarFile{dir("data/"), reg("data/model.bin", random(1<<20)), reg("data/notes.txt", text(123456))}
	img := empty.Image
	var err error
	for _, files := range [][]tarFile{l1, l2, l3} {
		if img, err = mutate.AppendLayers(img, layerOf(t, files, comp, mt)); err != nil {
			t.Fatal(err)
		}
	}
	img = linuxAMD64(t, img, "/app/main")
	if mt == types.OCILayer || mt == types.OCILayerZStd {
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	}
	return img
}

func push(t testing.TB, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

func pull(t testing.TB, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// tree is an unpacked image: every path with its type, mode, link target
// and content hash.
func tree(t testing.TB, img v1.Image) map[string]string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		if name == estargz.PrefetchLandmark || name == estargz.NoPrefetchLandmark || name == estargz.TOCTarName {
			continue
		}
		hsh := sha256.New()
		if _, err := io.Copy(hsh, tr); err != nil {
			t.Fatal(err)
		}
		out[name] = fmt.Sprintf("%c %o %s %x", h.Typeflag, h.Mode, h.Linkname, hsh.Sum(nil))
	}
}

type progressLog struct {
	mu   sync.Mutex
	last Progress
	n    int
}

func (p *progressLog) record(pr Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr.BytesDone < p.last.BytesDone || pr.LayersDone < p.last.LayersDone {
		panic(fmt.Sprintf("progress went back: %+v after %+v", pr, p.last))
	}
	p.last = pr
	p.n++
}

type testImage struct {
	name string
	img  func(t testing.TB) v1.Image
}

func testImages() []testImage {
	return []testImage{
		{"echo", func(t testing.TB) v1.Image {
			img, err := images.Build(context.Background(), images.Echo)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}},
		{"generated-oci", func(t testing.TB) v1.Image { return generatedImage(t, compression.GZip, types.OCILayer) }},
		{"generated-docker", func(t testing.TB) v1.Image { return generatedImage(t, compression.GZip, types.DockerLayer) }},
	}
}

func TestConvertFull(t *testing.T) {
	host := testRegistry(t)
	cases := append(testImages(), testImage{"generated-zstd", func(t testing.TB) v1.Image {
		return generatedImage(t, compression.ZStd, types.OCILayerZStd)
	}})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.img(t)
			ref := host + "/test/" + tc.name + ":v1"
			push(t, ref, src)
			var prog progressLog
			c := NewConverter(Options{TempDir: t.TempDir()})
			prefetch := []string{"/app/main", "/usr/lib/app/", "/not/there"}
			res, err := c.Convert(context.Background(), Request{Ref: ref, Mode: ModeFull, Prefetch: prefetch, Progress: prog.record})
			if err != nil {
				t.Fatal(err)
			}
			srcDigest, _ := src.Digest()
			if res.SourceDigest != srcDigest.String() || res.Target != host+"/test/"+tc.name+":v1_accelerated" || res.Reused {
				t.Fatalf("got result %+v, want source %s and target v1_accelerated", res, srcDigest)
			}
			if res.Source != host+"/test/"+tc.name+"@"+srcDigest.String() {
				t.Errorf("got source %s, want digest-pinned ref", res.Source)
			}
			layers, _ := src.Layers()
			if prog.last.LayersDone != len(layers) || prog.last.BytesDone != prog.last.Bytes || prog.last.Bytes != res.SourceSize {
				t.Errorf("got last progress %+v, want all %d layers and %d bytes done", prog.last, len(layers), res.SourceSize)
			}

			acc := pull(t, res.Target)
			if err := validate.Image(acc); err != nil {
				t.Fatalf("accelerated image invalid: %v", err)
			}
			if d, _ := acc.Digest(); d.String() != res.TargetDigest {
				t.Errorf("got digest %s, want %s", d, res.TargetDigest)
			}
			got, want := tree(t, acc), tree(t, src)
			if len(got) != len(want) {
				t.Errorf("got %d paths, want %d", len(got), len(want))
			}
			for p, w := range want {
				if got[p] != w {
					t.Errorf("%s: got %q, want %q", p, got[p], w)
				}
			}
			checkStargz(t, acc, srcDigest)

			again, err := c.Convert(context.Background(), Request{Ref: ref, Mode: ModeFull})
			if err != nil || !again.Reused || again.TargetDigest != res.TargetDigest {
				t.Errorf("second conversion: got %+v, %v; want the first one reused", again, err)
			}
		})
	}
}

// checkStargz checks that every layer is eStargz whose TOC verifies
// against its annotation, that prefetched files come before the landmark,
// and the manifest's annotations.
func checkStargz(t *testing.T, img v1.Image, source v1.Hash) {
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Annotations[AnnotationSource] != source.String() || m.Annotations[AnnotationMode] != string(ModeFull) {
		t.Errorf("got annotations %v, want source %s and mode full", m.Annotations, source)
	}
	layers, _ := img.Layers()
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		blob, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		r, err := estargz.Open(io.NewSectionReader(bytes.NewReader(blob), 0, int64(len(blob))))
		if err != nil {
			t.Fatalf("layer %d: not eStargz: %v", i, err)
		}
		ann := m.Layers[i].Annotations
		if _, err := r.VerifyTOC(digest.Digest(ann[estargz.TOCJSONDigestAnnotation])); err != nil {
			t.Errorf("layer %d: TOC does not verify against its annotation: %v", i, err)
		}
		ucl, _ := l.Uncompressed()
		n, _ := io.Copy(io.Discard, ucl)
		ucl.Close()
		if ann[estargz.StoreUncompressedSizeAnnotation] != fmt.Sprint(n) {
			t.Errorf("layer %d: got uncompressed-size %s, want %d", i, ann[estargz.StoreUncompressedSizeAnnotation], n)
		}
		if m.Layers[i].MediaType != types.OCILayer {
			t.Errorf("layer %d: got media type %s, want %s", i, m.Layers[i].MediaType, types.OCILayer)
		}
		lm, ok := r.Lookup(estargz.PrefetchLandmark)
		if main, has := r.Lookup("app/main"); has {
			if !ok || main.Offset > lm.Offset {
				t.Errorf("layer %d: /app/main is not before the prefetch landmark", i)
			}
		}
		if py, has := r.Lookup("usr/lib/app/small-199.py"); has {
			if !ok || py.Offset > lm.Offset {
				t.Errorf("layer %d: /usr/lib/app/small-199.py is not before the prefetch landmark", i)
			}
			if late, _ := r.Lookup("etc/os-release"); late.Offset < lm.Offset {
				t.Errorf("layer %d: /etc/os-release, not on the list, is before the landmark", i)
			}
		}
	}
}

func TestConvertIndexOnly(t *testing.T) {
	host := testRegistry(t)
	for _, tc := range testImages() {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.img(t)
			ref := host + "/test/" + tc.name + ":v2"
			push(t, ref, src)
			var prog progressLog
			c := NewConverter(Options{})
			res, err := c.Convert(context.Background(), Request{Ref: ref, Mode: ModeIndexOnly, Progress: prog.record})
			if err != nil {
				t.Fatal(err)
			}
			srcDigest, _ := src.Digest()
			if d, _ := pull(t, ref).Digest(); d != srcDigest {
				t.Fatalf("source changed: got %s, want %s", d, srcDigest)
			}
			r, _ := name.ParseReference(res.Target, name.Insecure)
			desc, err := remote.Get(r)
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest.String() != res.TargetDigest {
				t.Errorf("got digest %s, want %s", desc.Digest, res.TargetDigest)
			}
			m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject == nil || m.Subject.Digest != srcDigest || m.ArtifactType != ArtifactTypeGzindex || m.Annotations[AnnotationSource] != srcDigest.String() {
				t.Fatalf("got manifest subject %v, artifactType %q, annotations %v; want subject %s", m.Subject, m.ArtifactType, m.Annotations, srcDigest)
			}
			layers, _ := src.Layers()
			if len(m.Layers) != len(layers) {
				t.Fatalf("got %d indexes, want %d", len(m.Layers), len(layers))
			}
			var total int64
			for i, l := range layers {
				total += checkIndex(t, r.Context(), m.Layers[i], l)
			}
			if res.UncompressedSize != total || res.TargetSize >= res.SourceSize {
				t.Errorf("got result %+v, want uncompressed %d and a target smaller than the source", res, total)
			}
			if prog.last.LayersDone != len(layers) || prog.last.BytesDone != res.SourceSize {
				t.Errorf("got last progress %+v, want %d layers and %d bytes", prog.last, len(layers), res.SourceSize)
			}
			again, err := c.Convert(context.Background(), Request{Ref: ref, Mode: ModeIndexOnly})
			if err != nil || !again.Reused {
				t.Errorf("second conversion: got %+v, %v; want reused", again, err)
			}
		})
	}
}

// checkIndex reads every regular file of layer l through the index in
// desc, fetching ranges of the original blob, and compares the bytes with
// the tar's. It returns the layer's tar size.
func checkIndex(t *testing.T, repo name.Repository, desc v1.Descriptor, l v1.Layer) int64 {
	ld, _ := l.Digest()
	if desc.Annotations[AnnotationLayer] != ld.String() || desc.MediaType != MediaTypeGzindex {
		t.Fatalf("index layer %v: want annotation %s", desc, ld)
	}
	il, err := remote.Layer(repo.Digest(desc.Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := il.Compressed()
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	x, err := gzindex.Load(data, ld.String())
	if err != nil {
		t.Fatal(err)
	}
	if x.Version() != IndexVersion {
		t.Fatalf("got index version %d, want %d", x.Version(), IndexVersion)
	}
	// The head annotation names the head's bytes, which load alone.
	n, err := gzindex.HeadSize(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := desc.Annotations[AnnotationIndexHead], fmt.Sprintf("%d@%s", n, digest.FromBytes(data[:n])); got != want {
		t.Fatalf("got head annotation %q, want %q", got, want)
	}
	if _, err := gzindex.LoadHead(data[:n], ld.String(), nil); err != nil {
		t.Fatalf("LoadHead: %v", err)
	}
	crc, _ := l.Compressed()
	blob, _ := io.ReadAll(crc)
	crc.Close()
	reader := gzindex.NewReader(x, gzindex.FileFetcher(bytes.NewReader(blob)))
	urc, _ := l.Uncompressed()
	defer urc.Close()
	tr := tar.NewReader(urc)
	files := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		want, _ := io.ReadAll(tr)
		e, ok := x.Lookup(h.Name)
		if !ok {
			t.Fatalf("%s: not in the index", h.Name)
		}
		got, err := reader.ReadFile(context.Background(), e)
		if err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: got %d bytes differing from the tar's %d", h.Name, len(got), len(want))
		}
		files++
	}
	if files == 0 {
		t.Fatal("layer has no regular files")
	}
	if sz := desc.Annotations[AnnotationLayerUncompressed]; sz != fmt.Sprint(x.Size) {
		t.Errorf("got uncompressed-size annotation %s, want %d", sz, x.Size)
	}
	return x.Size
}

func TestConvertRefuses(t *testing.T) {
	host := testRegistry(t)
	push(t, host+"/test/zstd:v1", generatedImage(t, compression.ZStd, types.OCILayerZStd))
	push(t, host+"/test/gz:v1", generatedImage(t, compression.GZip, types.OCILayer))
	c := NewConverter(Options{})
	for _, tc := range []struct {
		name string
		req  Request
		is   error
		text string
	}{
		{"zstd index-only", Request{Ref: host + "/test/zstd:v1", Mode: ModeIndexOnly}, ErrUnsupported, "zstd"},
		{"digest", Request{Ref: host + "/test/gz@sha256:" + strings.Repeat("0", 64), Mode: ModeFull}, ErrInvalidRef, "digest"},
		{"accelerated tag", Request{Ref: host + "/test/gz:v1_accelerated", Mode: ModeFull}, ErrInvalidRef, "already"},
		{"mode", Request{Ref: host + "/test/gz:v1", Mode: "fast"}, ErrInvalidMode, "fast"},
		{"missing", Request{Ref: host + "/test/gz:nope", Mode: ModeIndexOnly}, ErrNotFound, "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Convert(context.Background(), tc.req)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.is, tc.text)
			}
			if tc.is == ErrUnsupported && (!errors.Is(err, gzindex.ErrUnsupported) || !errdefs.IsInvalidArgument(err)) {
				t.Errorf("got %v, want it to wrap gzindex.ErrUnsupported and be an invalid argument", err)
			}
		})
	}
	if _, err := remote.Head(mustRef(t, host+"/test/zstd:v1_accelerated")); err == nil {
		t.Error("a refused conversion left an accelerated tag")
	}
}

func mustRef(t testing.TB, s string) name.Reference {
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A stale accelerated tag (made for an earlier push of the tag) is not
// reused.
func TestConvertStale(t *testing.T) {
	host := testRegistry(t)
	ref := host + "/test/stale:v1"
	push(t, ref, generatedImage(t, compression.GZip, types.OCILayer))
	c := NewConverter(Options{})
	first, err := c.Convert(context.Background(), Request{Ref: ref, Mode: ModeIndexOnly})
	if err != nil {
		t.Fatal(err)
	}
	img, _ := images.FromBinary("x", []byte("#!/bin/true\n"))
	push(t, ref, img)
	if _, ok, err := c.Lookup(context.Background(), ref, ModeIndexOnly); ok || err != nil {
		t.Fatalf("Lookup after a new push: got ok=%v, %v; want not found", ok, err)
	}
	second, err := c.Convert(context.Background(), Request{Ref: ref, Mode: ModeIndexOnly})
	if err != nil || second.Reused || second.SourceDigest == first.SourceDigest {
		t.Fatalf("got %+v, %v; want a new conversion", second, err)
	}
	if _, ok, err := c.Lookup(context.Background(), ref, ModeFull); ok || err != nil {
		t.Fatalf("Lookup in the other mode: got ok=%v, %v; want not found", ok, err)
	}
}

// startupRecords is a fixed StartupRecords: files by source digest.
type startupRecords map[string][]string

func (r startupRecords) StartupFiles(_ context.Context, source string) ([]string, error) {
	return r[source], nil
}

// TestConvertFullRecord: with a start-up record of the source image, a
// full-mode conversion puts the recorded files first, in the order
// recorded, before the prefetch landmark, and files not recorded after it.
func TestConvertFullRecord(t *testing.T) {
	host := testRegistry(t)
	src := generatedImage(t, compression.GZip, types.OCILayer)
	ref := host + "/test/recorded:v1"
	push(t, ref, src)
	d, _ := src.Digest()
	recorded := []string{"/usr/lib/app/small-150.py", "/etc/os-release", "/usr/lib/app/small-003.py", "/app/config.json"}
	c := NewConverter(Options{TempDir: t.TempDir(), Records: startupRecords{d.String(): recorded}})
	res, err := c.Convert(context.Background(), Request{Ref: ref, Mode: ModeFull})
	if err != nil {
		t.Fatal(err)
	}
	acc := pull(t, res.Target)
	layers, _ := acc.Layers()
	var order []string
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		blob, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		r, err := estargz.Open(io.NewSectionReader(bytes.NewReader(blob), 0, int64(len(blob))))
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		lm, hasLandmark := r.Lookup(estargz.PrefetchLandmark)
		var before []*estargz.TOCEntry
		for _, p := range recorded {
			e, ok := r.Lookup(strings.TrimPrefix(p, "/"))
			if !ok {
				continue
			}
			if !hasLandmark || e.Offset > lm.Offset {
				t.Errorf("layer %d: recorded %s is after the prefetch landmark", i, p)
			}
			before = append(before, e)
			order = append(order, p)
		}
		for j := 1; j < len(before); j++ {
			if before[j-1].Offset > before[j].Offset {
				t.Errorf("layer %d: %s comes after %s; want the recorded order", i, before[j-1].Name, before[j].Name)
			}
		}
		for _, late := range []string{"usr/lib/app/small-100.py", "app/main"} {
			if e, ok := r.Lookup(late); ok && hasLandmark && e.Offset < lm.Offset {
				t.Errorf("layer %d: %s, not recorded, is before the landmark", i, late)
			}
		}
	}
	if len(order) != len(recorded) {
		t.Errorf("found recorded files %q in the layers, want all of %q", order, recorded)
	}
}

// TestConvertIndexWithoutHead converts again an index-only artifact whose
// indexes have no head annotation (made before format version 3): it is
// not current.
func TestConvertIndexWithoutHead(t *testing.T) {
	host := testRegistry(t)
	ref := host + "/test/headless:v1"
	push(t, ref, generatedImage(t, compression.GZip, types.OCILayer))
	c := NewConverter(Options{})
	first, err := c.Convert(context.Background(), Request{Ref: ref, Mode: ModeIndexOnly})
	if err != nil {
		t.Fatal(err)
	}
	target, _ := name.ParseReference(first.Target, name.Insecure)
	desc, err := remote.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Layers {
		delete(m.Layers[i].Annotations, AnnotationIndexHead)
	}
	raw, _ := json.Marshal(m)
	if err := remote.Put(target, rawManifest{raw: raw, mediaType: types.OCIManifestSchema1}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.Lookup(context.Background(), ref, ModeIndexOnly); ok || err != nil {
		t.Fatalf("Lookup of indexes without heads: got ok=%v, %v; want not current", ok, err)
	}
	second, err := c.Convert(context.Background(), Request{Ref: ref, Mode: ModeIndexOnly})
	if err != nil || second.Reused {
		t.Fatalf("got %+v, %v; want a new conversion", second, err)
	}
	if _, ok, err := c.Lookup(context.Background(), ref, ModeIndexOnly); !ok || err != nil {
		t.Fatalf("Lookup after converting again: got ok=%v, %v; want current", ok, err)
	}
}
