package accel

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/containerd/stargz-snapshotter/estargz"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// convertFull writes src as an eStargz image, <tag>_accelerated. The
// result is always an OCI manifest (annotations are part of OCI, not of
// Docker's schema 2), with the source's config but for the diff IDs.
func (c *Converter) convertFull(ctx context.Context, src *source, prefetch []string, prog *tracker) (res Result, err error) {
	cf, err := src.img.ConfigFile()
	if err != nil {
		return res, fmt.Errorf("read config: %w", err)
	}
	m, err := src.img.Manifest()
	if err != nil {
		return res, fmt.Errorf("read manifest: %w", err)
	}
	dir, err := os.MkdirTemp(c.opts.TempDir, "fcd-accel-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)

	adds := make([]mutate.Addendum, len(src.layers))
	var usize atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Parallelism)
	for i, l := range src.layers {
		g.Go(func() error {
			sl, err := c.stargzLayer(gctx, filepath.Join(dir, strconv.Itoa(i)), l, prefetch, prog)
			if err != nil {
				return fmt.Errorf("layer %d (%s): %w", i, m.Layers[i].Digest, err)
			}
			usize.Add(sl.usize)
			adds[i] = mutate.Addendum{
				Layer:     sl.layer,
				MediaType: types.OCILayer,
				Annotations: map[string]string{
					estargz.TOCJSONDigestAnnotation:         sl.toc.String(),
					estargz.StoreUncompressedSizeAnnotation: strconv.FormatInt(sl.usize, 10),
				},
			}
			prog.layerDone()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return res, err
	}

	img, err := assemble(cf, m, adds, map[string]string{
		AnnotationSource: src.digest.String(),
		AnnotationMode:   string(ModeFull),
	})
	if err != nil {
		return res, err
	}
	target := src.tag.Context().Tag(AcceleratedTag(src.tag.TagStr()))
	if err := remote.Write(target, img, c.remoteOptions(ctx)...); err != nil {
		return res, fmt.Errorf("push %s: %w", target, mapRemoteError(err))
	}
	d, err := img.Digest()
	if err != nil {
		return res, err
	}
	res = c.result(src, target, d, ModeFull)
	res.UncompressedSize = usize.Load()
	for _, a := range adds {
		n, _ := a.Layer.Size()
		res.TargetSize += n
	}
	return res, nil
}

// assemble builds the accelerated image: the source config with new diff
// IDs and its history kept, the converted layers, and the source
// manifest's annotations plus anns.
func assemble(cf *v1.ConfigFile, m *v1.Manifest, adds []mutate.Addendum, anns map[string]string) (v1.Image, error) {
	cf = cf.DeepCopy()
	history := cf.History
	cf.RootFS.DiffIDs, cf.History = nil, nil
	img, err := mutate.ConfigFile(empty.Image, cf)
	if err != nil {
		return nil, err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	if img, err = mutate.Append(img, adds...); err != nil {
		return nil, err
	}
	if cf, err = img.ConfigFile(); err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.History = history
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	all := maps.Clone(m.Annotations)
	if all == nil {
		all = map[string]string{}
	}
	maps.Copy(all, anns)
	out, ok := mutate.Annotations(img, all).(v1.Image)
	if !ok {
		return nil, errors.New("accel: annotated image is not an image")
	}
	return out, nil
}

// stargzLayer is one converted layer.
type stargzLayer struct {
	layer v1.Layer
	toc   v1.Hash
	usize int64
}

// stargzLayer converts one layer: it streams the source blob, decompressed,
// to <base>.tar, builds the eStargz blob from it into <base>.esgz and
// returns a layer backed by that file.
func (c *Converter) stargzLayer(ctx context.Context, base string, l v1.Layer, prefetch []string, prog *tracker) (_ *stargzLayer, err error) {
	tarFile, usize, err := c.fetchTar(l, base+".tar", prog)
	if err != nil {
		return nil, err
	}
	defer func() {
		tarFile.Close()
		os.Remove(tarFile.Name())
	}()
	sr := io.NewSectionReader(tarFile, 0, usize)
	opts := []estargz.Option{
		estargz.WithContext(ctx),
		estargz.WithCompression(newFastGzip(c.opts.CompressionLevel)),
	}
	if len(prefetch) > 0 {
		files, err := prefetchFiles(sr, prefetch)
		if err != nil {
			return nil, err
		}
		if len(files) > 0 {
			var missed []string
			opts = append(opts, estargz.WithPrioritizedFiles(files), estargz.WithAllowPrioritizeNotFound(&missed))
		}
	}
	blob, err := estargz.Build(sr, opts...)
	if err != nil {
		return nil, fmt.Errorf("build estargz: %w", err)
	}
	defer blob.Close()
	out, err := os.Create(base + ".esgz")
	if err != nil {
		return nil, err
	}
	defer out.Close()
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(out, h), blob)
	if err != nil {
		return nil, fmt.Errorf("build estargz: %w", err)
	}
	if err := out.Close(); err != nil {
		return nil, err
	}
	esgzSize, err := blob.UncompressedSize()
	if err != nil {
		return nil, err
	}
	diffID, err := v1.NewHash(blob.DiffID().String())
	if err != nil {
		return nil, err
	}
	toc, err := v1.NewHash(blob.TOCDigest().String())
	if err != nil {
		return nil, err
	}
	fl := &fileLayer{
		path:   out.Name(),
		digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))},
		diffID: diffID,
		size:   size,
	}
	layer, err := partial.CompressedToLayer(fl)
	if err != nil {
		return nil, err
	}
	return &stargzLayer{layer: layer, toc: toc, usize: esgzSize}, nil
}

// fetchTar writes l's uncompressed tar to path and returns the open file
// and its size. gzip and zstd are decompressed; an uncompressed layer is
// copied.
func (c *Converter) fetchTar(l v1.Layer, path string, prog *tracker) (f *os.File, n int64, err error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, 0, fmt.Errorf("fetch: %w", mapRemoteError(err))
	}
	defer rc.Close()
	ahead := readAhead(countingReader{rc, prog}, 4, 1<<20)
	defer ahead.Close()
	r, err := decompress(bufio.NewReaderSize(ahead, 1<<20))
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	if f, err = os.Create(path); err != nil {
		return nil, 0, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	if n, err = io.Copy(f, r); err != nil {
		return nil, 0, fmt.Errorf("fetch: %w", mapRemoteError(err))
	}
	return f, n, nil
}

// decompress sniffs br's format and returns its tar stream.
func decompress(br *bufio.Reader) (io.ReadCloser, error) {
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := kgzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// prefetchFiles returns the names in the tar that the prefetch list
// selects, in list order: a path names itself, a path ending in "/" its
// directory and everything under it. Paths not in this layer are left out
// (a list covers the whole image).
func prefetchFiles(sr *io.SectionReader, list []string) ([]string, error) {
	var names []string
	tr := tar.NewReader(io.NewSectionReader(sr, 0, sr.Size()))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read tar: %w", err)
		}
		names = append(names, "/"+strings.TrimPrefix(path.Clean("/"+h.Name), "/"))
	}
	var out []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, p := range list {
		dir, isDir := strings.CutSuffix(p, "/")
		clean := path.Clean("/" + dir)
		for _, n := range names {
			if n == clean || (isDir && strings.HasPrefix(n, strings.TrimSuffix(clean, "/")+"/")) {
				add(n)
			}
		}
	}
	return out, nil
}

// fileLayer is a converted layer blob in a file, for partial.CompressedToLayer.
type fileLayer struct {
	path   string
	digest v1.Hash
	diffID v1.Hash
	size   int64
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }

// fastGzip is estargz's gzip Compression with klauspost/compress's
// encoder and decoder, several times faster than compress/gzip at low
// levels. The TOC, a few KiB, is written by estargz's own compressor.
type fastGzip struct {
	estargz.GzipDecompressor
	level   int
	toc     *estargz.GzipCompressor
	writers sync.Pool
}

func newFastGzip(level int) *fastGzip {
	return &fastGzip{level: level, toc: estargz.NewGzipCompressorWithLevel(gzip.BestSpeed)}
}

// Writer returns a gzip writer for one chunk; estargz closes it after the
// chunk, which returns it to the pool.
func (g *fastGzip) Writer(w io.Writer) (estargz.WriteFlushCloser, error) {
	if zw, ok := g.writers.Get().(*kgzip.Writer); ok {
		zw.Reset(w)
		return &pooledWriter{Writer: zw, pool: &g.writers}, nil
	}
	zw, err := kgzip.NewWriterLevel(w, g.level)
	if err != nil {
		return nil, err
	}
	return &pooledWriter{Writer: zw, pool: &g.writers}, nil
}

func (g *fastGzip) WriteTOCAndFooter(w io.Writer, off int64, toc *estargz.JTOC, diffHash hash.Hash) (digest.Digest, error) {
	return g.toc.WriteTOCAndFooter(w, off, toc, diffHash)
}

// Reader decompresses with klauspost/compress; estargz uses it for the
// blob's diff ID.
func (g *fastGzip) Reader(r io.Reader) (io.ReadCloser, error) { return kgzip.NewReader(r) }

type pooledWriter struct {
	*kgzip.Writer
	pool *sync.Pool
}

func (w *pooledWriter) Close() error {
	err := w.Writer.Close()
	if err == nil {
		w.pool.Put(w.Writer)
	}
	w.Writer = nil
	return err
}
