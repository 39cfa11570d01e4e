package accel

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
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
//
// The files of record (the source's start-up record) come first in each
// layer, then those of prefetch.
func (c *Converter) convertFull(ctx context.Context, src *source, record, prefetch []string, prog *tracker) (res Result, err error) {
	cf, err := src.img.ConfigFile()
	if err != nil {
		return res, fmt.Errorf("read config: %w", err)
	}
	m, err := src.img.Manifest()
	if err != nil {
		return res, fmt.Errorf("read manifest: %w", err)
	}
	if len(record) > 0 {
		c.log.Info("start-up record baked into the prefetch order", "source", src.digest.String(), "files", len(record))
		prefetch = append(slices.Clip(record), prefetch...)
	}
	dir, err := os.MkdirTemp(c.opts.TempDir, "fcd-accel-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)

	adds := make([]mutate.Addendum, len(src.layers))
	var usize atomic.Int64
	b := newBudget(c.opts)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Parallelism)
	for i, l := range src.layers {
		g.Go(func() error {
			sl, err := c.stargzLayer(gctx, filepath.Join(dir, strconv.Itoa(i)), l, prefetch, prog, b)
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

	anns := map[string]string{
		AnnotationSource: src.digest.String(),
		AnnotationMode:   string(ModeFull),
	}
	if len(record) > 0 {
		anns[AnnotationStartupFiles] = strconv.Itoa(len(record))
	}
	img, err := assemble(cf, m, adds, anns)
	if err != nil {
		return res, err
	}
	target := src.tag.Context().Tag(AcceleratedTag(src.tag.TagStr()))
	pushStart := time.Now()
	if err := remote.Write(target, img, c.remoteOptions(ctx)...); err != nil {
		return res, fmt.Errorf("push %s: %w", target, mapRemoteError(err))
	}
	c.log.Debug("eStargz image pushed", "target", target, "duration", time.Since(pushStart))
	d, err := img.Digest()
	if err != nil {
		return res, err
	}
	res = c.result(src, target, d, ModeFull)
	res.UncompressedSize = usize.Load()
	res.StartupFiles = len(record)
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

// fetchTar writes l's uncompressed tar to path and returns the open file
// and its size. gzip and zstd are decompressed; an uncompressed layer is
// copied.
func (c *Converter) fetchTar(ctx context.Context, l v1.Layer, path string, prog *tracker, b *budget) (f *os.File, n int64, err error) {
	r, err := openTar(ctx, l, prog, b)
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

// openTar streams l's uncompressed tar, fetched ahead on another
// goroutine, until ctx ends, counting it against b.
func openTar(ctx context.Context, l v1.Layer, prog *tracker, b *budget) (io.ReadCloser, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", mapRemoteError(err))
	}
	ahead := readAhead(countingReader{rc, prog}, 4, 1<<20)
	r, err := decompress(bufio.NewReaderSize(ahead, 1<<20))
	if err != nil {
		ahead.Close()
		rc.Close()
		return nil, err
	}
	return closers{boundedReader{ctx, r, b}, []io.Closer{r, ahead, rc}}, nil
}

// closers reads from a reader and closes several closers in order.
type closers struct {
	io.Reader
	cs []io.Closer
}

func (c closers) Close() error {
	var first error
	for _, cl := range c.cs {
		if err := cl.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
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
// encoder, several times faster than compress/gzip at low levels. The TOC,
// a few KiB, is written by estargz's own compressor. It counts the
// uncompressed bytes of the blob (entries and TOC) in usize.
type fastGzip struct {
	estargz.GzipDecompressor
	level   int
	toc     *estargz.GzipCompressor
	writers sync.Pool
	usize   atomic.Int64
}

func newFastGzip(level int) *fastGzip {
	return &fastGzip{level: level, toc: estargz.NewGzipCompressorWithLevel(gzip.BestSpeed)}
}

// Writer returns a gzip writer for one chunk; estargz closes it after the
// chunk, which returns it to the pool.
func (g *fastGzip) Writer(w io.Writer) (estargz.WriteFlushCloser, error) {
	if zw, ok := g.writers.Get().(*kgzip.Writer); ok {
		zw.Reset(w)
		return &pooledWriter{Writer: zw, g: g}, nil
	}
	zw, err := kgzip.NewWriterLevel(w, g.level)
	if err != nil {
		return nil, err
	}
	return &pooledWriter{Writer: zw, g: g}, nil
}

func (g *fastGzip) WriteTOCAndFooter(w io.Writer, off int64, toc *estargz.JTOC, diffHash hash.Hash) (digest.Digest, error) {
	return g.toc.WriteTOCAndFooter(w, off, toc, countingHash{diffHash, &g.usize})
}

// Reader decompresses with klauspost/compress.
func (g *fastGzip) Reader(r io.Reader) (io.ReadCloser, error) { return kgzip.NewReader(r) }

// pooledWriter is one chunk's gzip writer, counting what it is given.
type pooledWriter struct {
	*kgzip.Writer
	g *fastGzip
}

func (w *pooledWriter) Write(p []byte) (int, error) {
	w.g.usize.Add(int64(len(p)))
	return w.Writer.Write(p)
}

func (w *pooledWriter) Close() error {
	err := w.Writer.Close()
	if err == nil {
		w.g.writers.Put(w.Writer)
	}
	w.Writer = nil
	return err
}

// countingHash counts the bytes written to a hash.
type countingHash struct {
	hash.Hash
	n *atomic.Int64
}

func (h countingHash) Write(p []byte) (int, error) {
	h.n.Add(int64(len(p)))
	return h.Hash.Write(p)
}
