package accel

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/opencontainers/go-digest"
)

// stargzLayer converts one layer through one estargz.Writer into
// <base>.esgz, whose output is hashed on another goroutine.
//
// With a prefetch list, the source is first written, decompressed, to
// <base>.tar, so its entries can be reordered: the prefetch list's first,
// then the landmark, then the rest. Without one, the source streams from
// the registry through the decompressor into the Writer, the fetch
// overlapping the compression.
//
// estargz.Build would compress in parallel, but it then decompresses its
// whole output again to learn the diff ID; the Writer hashes the
// uncompressed stream as it goes, which on two cores is the faster trade
// (see examples/bigimage/BENCHMARKS.md).
func (c *Converter) stargzLayer(ctx context.Context, base string, l v1.Layer, prefetch []string, prog *tracker, b *budget) (_ *stargzLayer, err error) {
	start := time.Now()
	var produce func(tw *tar.Writer) error
	if len(prefetch) == 0 {
		src, err := openTar(ctx, l, prog, b)
		if err != nil {
			return nil, err
		}
		defer src.Close()
		produce = func(tw *tar.Writer) error { return streamEntries(ctx, tw, src, b) }
	} else {
		tarFile, usize, err := c.fetchTar(ctx, l, base+".tar", prog, b)
		if err != nil {
			return nil, err
		}
		defer func() {
			tarFile.Close()
			os.Remove(tarFile.Name())
		}()
		sr := io.NewSectionReader(tarFile, 0, usize)
		entries, err := scanTar(sr, b)
		if err != nil {
			return nil, err
		}
		ordered := orderEntries(entries, prefetchNames(entries, prefetch))
		produce = func(tw *tar.Writer) error { return copyEntries(ctx, tw, sr, ordered) }
	}
	fetched := time.Now()

	out, err := os.Create(base + ".esgz")
	if err != nil {
		return nil, err
	}
	defer out.Close()
	h := sha256.New()
	pr, pw := io.Pipe()
	copied := make(chan error, 1)
	var size int64
	go func() {
		n, err := io.Copy(io.MultiWriter(out, h), pr)
		size = n
		pr.CloseWithError(err)
		copied <- err
	}()
	comp := newFastGzip(c.opts.CompressionLevel)
	bw := bufio.NewWriterSize(pw, 1<<20)
	w := estargz.NewWriterWithCompressor(bw, comp)
	w.ChunkSize = StargzChunkSize
	toc, err := writeStargz(w, produce)
	if err == nil {
		err = bw.Flush()
	}
	pw.CloseWithError(err)
	if cerr := <-copied; err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("build estargz: %w", err)
	}
	if err := out.Close(); err != nil {
		return nil, err
	}
	diffID, err := v1.NewHash(w.DiffID())
	if err != nil {
		return nil, err
	}
	tocHash, err := v1.NewHash(toc.String())
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
	c.log.Debug("layer converted to eStargz", "layer", base, "esgz", size,
		"fetch", fetched.Sub(start), "build", time.Since(fetched))
	return &stargzLayer{layer: layer, toc: tocHash, usize: comp.usize.Load()}, nil
}

// StargzChunkSize is the largest eStargz chunk of a full-mode layer: the
// lazy reader's fetch and verify unit inside a large file. estargz's
// default, 4 MiB, makes a start-up that touches a few pages of a large
// shared library fetch 4 MiB for each; 1 MiB keeps that down for a TOC
// entry per MiB (about 0.02% of the layer).
const StargzChunkSize = 1 << 20

// tarEntry is an entry of the source tar: its header and where its data
// is.
type tarEntry struct {
	hdr  *tar.Header
	name string // cleaned, without leading "/"
	off  int64
}

// scanTar lists the entries of the tar in sr, the last of each name only
// (a later entry replaces an earlier one on extraction too), leaving out
// estargz's own landmarks, counting them against b. Sparse entries are
// refused: their data is not one range of the archive.
func scanTar(sr *io.SectionReader, b *budget) ([]tarEntry, error) {
	var entries []tarEntry
	index := map[string]int{}
	tr := tar.NewReader(sr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read tar: %w", err)
		}
		if err := b.entry(h.Name, h.Linkname, h.PAXRecords); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeGNUSparse || hasSparseRecords(h) {
			return nil, fmt.Errorf("%w: %s is a sparse tar entry, which eStargz cannot hold", ErrUnsupported, h.Name)
		}
		off, err := sr.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		name := cleanName(h.Name)
		if name == estargz.PrefetchLandmark || name == estargz.NoPrefetchLandmark {
			continue
		}
		if i, ok := index[name]; ok {
			entries[i].hdr = nil // replaced
		}
		index[name] = len(entries)
		entries = append(entries, tarEntry{hdr: h, name: name, off: off})
	}
	out := entries[:0]
	for _, e := range entries {
		if e.hdr != nil {
			out = append(out, e)
		}
	}
	return out, nil
}

func hasSparseRecords(h *tar.Header) bool {
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func cleanName(name string) string { return strings.TrimPrefix(path.Clean("/"+name), "/") }

// prefetchNames returns the entries' names the prefetch list selects, in
// list order: a path names itself, a path ending in "/" its directory and
// everything under it. Paths not in this layer are left out (a list
// covers the whole image).
func prefetchNames(entries []tarEntry, list []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range list {
		dir, isDir := strings.CutSuffix(p, "/")
		clean := cleanName(dir)
		for _, e := range entries {
			if seen[e.name] {
				continue
			}
			if e.name == clean || (isDir && (clean == "" || strings.HasPrefix(e.name, clean+"/"))) {
				seen[e.name] = true
				out = append(out, e.name)
			}
		}
	}
	return out
}

// orderEntries puts the prioritized entries first, each after its parent
// directories and hard-link target, then the landmark (nil: the prefetch
// landmark when something is prioritized, else the no-prefetch one goes
// first), then the rest in archive order.
func orderEntries(entries []tarEntry, prioritized []string) []*tarEntry {
	byName := make(map[string]*tarEntry, len(entries))
	for i := range entries {
		byName[entries[i].name] = &entries[i]
	}
	picked := map[string]bool{}
	var out []*tarEntry
	var pick func(name string)
	pick = func(name string) {
		if picked[name] {
			return
		}
		e, ok := byName[name]
		if !ok {
			return
		}
		picked[name] = true
		if parent := path.Dir(name); parent != "." && parent != "/" {
			pick(parent)
		}
		if e.hdr.Typeflag == tar.TypeLink {
			pick(cleanName(e.hdr.Linkname))
		}
		out = append(out, e)
	}
	for _, n := range prioritized {
		pick(n)
	}
	out = append(out, nil) // the landmark
	for i := range entries {
		if !picked[entries[i].name] {
			out = append(out, &entries[i])
		}
	}
	return out
}

// landmarkContents is the one byte of estargz's landmark files.
const landmarkContents = 0xf

// writeLandmark writes estargz's landmark entry: PrefetchLandmark after
// prefetched entries, NoPrefetchLandmark first when there are none.
func writeLandmark(tw *tar.Writer, name string) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}); err != nil {
		return err
	}
	_, err := tw.Write([]byte{landmarkContents})
	return err
}

// copyEntries writes the ordered entries of the tar in sr (nil: the
// landmark).
func copyEntries(ctx context.Context, tw *tar.Writer, sr *io.SectionReader, ordered []*tarEntry) error {
	landmark := estargz.NoPrefetchLandmark
	if ordered[0] != nil {
		landmark = estargz.PrefetchLandmark
	}
	for _, e := range ordered {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e == nil {
			if err := writeLandmark(tw, landmark); err != nil {
				return err
			}
			continue
		}
		if err := tw.WriteHeader(e.hdr); err != nil {
			return err
		}
		if e.hdr.Size > 0 && (e.hdr.Typeflag == tar.TypeReg || e.hdr.Typeflag == tar.TypeRegA) {
			if _, err := io.Copy(tw, boundedReader{ctx, io.NewSectionReader(sr, e.off, e.hdr.Size), nil}); err != nil {
				return err
			}
		}
	}
	return nil
}

// streamEntries writes the no-prefetch landmark, then src's entries as
// they come, but for estargz's own landmarks, counting them against b.
// It reads src to its end,
// past the tar's end-of-archive blocks, so that the gzip trailer and the
// blob's digest are checked: a layer that does not match its digest is
// refused, as in the other modes.
func streamEntries(ctx context.Context, tw *tar.Writer, src io.Reader, b *budget) error {
	if err := writeLandmark(tw, estargz.NoPrefetchLandmark); err != nil {
		return err
	}
	tr := tar.NewReader(src)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			if _, err := io.Copy(io.Discard, src); err != nil {
				return fmt.Errorf("read layer: %w", mapRemoteError(err))
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := b.entry(h.Name, h.Linkname, h.PAXRecords); err != nil {
			return err
		}
		if n := cleanName(h.Name); n == estargz.PrefetchLandmark || n == estargz.NoPrefetchLandmark {
			continue
		}
		if h.Typeflag == tar.TypeGNUSparse || hasSparseRecords(h) {
			return fmt.Errorf("%w: %s is a sparse tar entry, which eStargz cannot hold", ErrUnsupported, h.Name)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// writeStargz runs produce, which writes a tar, on its own goroutine and
// appends that tar to w, then closes w and returns its TOC digest. It
// returns after produce has. When both fail, produce's error is returned:
// estargz keeps only the text of its reader's errors, and produce's say
// why (the context ended, ErrTooLarge, a sparse entry).
func writeStargz(w *estargz.Writer, produce func(tw *tar.Writer) error) (digest.Digest, error) {
	pr, pw := io.Pipe()
	produced := make(chan error, 1)
	go func() {
		tw := tar.NewWriter(pw)
		err := produce(tw)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
		produced <- err
	}()
	err := w.AppendTar(pr)
	pr.Close() // unblocks produce when AppendTar stopped early
	if perr := <-produced; err != nil && perr != nil && !errors.Is(perr, io.ErrClosedPipe) {
		return "", perr
	}
	if err != nil {
		return "", err
	}
	d, err := w.Close()
	if err != nil {
		return "", err
	}
	if d == "" {
		return "", errors.New("estargz: no TOC digest")
	}
	return d, nil
}
