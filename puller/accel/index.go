package accel

import (
	"context"
	"io"

	"crypto/sha256"
	"encoding/json"
	"fmt"
	"github.com/containerd/errdefs"
	"strconv"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/fcd-dev/fcd/puller/gzindex"
)

// emptyConfig is the OCI empty descriptor's content, the config of an
// artifact that has none.
var emptyConfig = []byte("{}")

const mediaTypeEmpty types.MediaType = "application/vnd.oci.empty.v1+json"

// checkIndexable refuses layers gzindex cannot index, saying why, before
// anything is fetched.
func checkIndexable(m *v1.Manifest) error {
	for i, l := range m.Layers {
		switch l.MediaType {
		case types.OCILayer, types.DockerLayer, types.OCIRestrictedLayer, types.DockerForeignLayer:
			continue
		case types.OCILayerZStd:
			return fmt.Errorf("%w: layer %d (%s) is zstd-compressed; an index maps offsets in gzip's DEFLATE stream, so zstd layers need full mode", ErrUnsupported, i, l.Digest)
		case types.OCIUncompressedLayer, types.OCIUncompressedRestrictedLayer:
			return fmt.Errorf("%w: layer %d (%s) is an uncompressed tar, which a lazy reader can range-read without an index; use full mode", ErrUnsupported, i, l.Digest)
		default:
			return fmt.Errorf("%w: layer %d (%s) has media type %q, not a gzip-compressed tar", ErrUnsupported, i, l.Digest, l.MediaType)
		}
	}
	return nil
}

// convertIndex writes an index-only artifact for src: one gzindex per
// layer, subject = the source manifest. When the registry refuses the push
// and keep is set, the indexes go to keep instead (Result.Local).
func (c *Converter) convertIndex(ctx context.Context, src *source, prog *tracker, keep KeepIndexes) (res Result, err error) {
	m, err := src.img.Manifest()
	if err != nil {
		return res, fmt.Errorf("read manifest: %w", err)
	}
	if err := checkIndexable(m); err != nil {
		return res, err
	}
	blobs := make([]v1.Layer, len(src.layers))
	sizes := make([]int64, len(src.layers))
	heads := make([]string, len(src.layers))
	b := newBudget(c.opts)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Parallelism)
	for i, l := range src.layers {
		g.Go(func() error {
			data, size, err := indexLayer(gctx, l, m.Layers[i], prog, b)
			if err != nil {
				return fmt.Errorf("layer %d (%s): %w", i, m.Layers[i].Digest, err)
			}
			if heads[i], err = indexHead(data); err != nil {
				return fmt.Errorf("layer %d (%s): %w", i, m.Layers[i].Digest, err)
			}
			sizes[i] = size
			blobs[i] = static.NewLayer(data, MediaTypeGzindex)
			prog.layerDone()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return res, err
	}

	target := src.tag.Context().Tag(AcceleratedTag(src.tag.TagStr()))
	res, err = c.pushIndex(ctx, src, target, m, blobs, sizes, heads)
	if !errdefs.IsPermissionDenied(err) || keep == nil {
		return res, err
	}
	indexes := make(map[string][]byte, len(blobs))
	res = c.result(src, target, v1.Hash{}, ModeIndexOnly)
	res.Target, res.TargetDigest, res.Local = "", "", true
	for i, b := range blobs {
		rc, _ := b.Compressed()
		data, _ := io.ReadAll(rc)
		rc.Close()
		indexes[m.Layers[i].Digest.String()] = data
		res.TargetSize += int64(len(data))
		res.UncompressedSize += sizes[i]
	}
	c.log.Info("registry refused the index artifact; keeping the indexes locally", "source", res.Source, "error", err)
	if err := keep(ctx, src.digest.String(), indexes); err != nil {
		return res, fmt.Errorf("keep indexes: %w", err)
	}
	return res, nil
}

// pushIndex pushes the index artifact of src as target.
func (c *Converter) pushIndex(ctx context.Context, src *source, target name.Tag, m *v1.Manifest, blobs []v1.Layer, sizes []int64, heads []string) (res Result, err error) {
	opts := c.remoteOptions(ctx)
	manifest := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  ArtifactTypeGzindex,
		Config: v1.Descriptor{
			MediaType: mediaTypeEmpty,
			Digest:    v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(emptyConfig))},
			Size:      int64(len(emptyConfig)),
			Data:      emptyConfig,
		},
		Subject: &src.desc,
		Annotations: map[string]string{
			AnnotationSource: src.digest.String(),
			AnnotationMode:   string(ModeIndexOnly),
		},
	}
	if err := remote.WriteLayer(target.Context(), static.NewLayer(emptyConfig, mediaTypeEmpty), opts...); err != nil {
		return res, fmt.Errorf("push %s: %w", target, mapRemoteError(err))
	}
	for i, b := range blobs {
		if err := remote.WriteLayer(target.Context(), b, opts...); err != nil {
			return res, fmt.Errorf("push %s: %w", target, mapRemoteError(err))
		}
		d, _ := b.Digest()
		n, _ := b.Size()
		manifest.Layers = append(manifest.Layers, v1.Descriptor{
			MediaType: MediaTypeGzindex,
			Digest:    d,
			Size:      n,
			Annotations: map[string]string{
				AnnotationLayer:             m.Layers[i].Digest.String(),
				AnnotationLayerUncompressed: strconv.FormatInt(sizes[i], 10),
				AnnotationIndexHead:         heads[i],
			},
		})
		res.TargetSize += n
	}
	raw, err := json.Marshal(manifest)
	if err != nil {
		return res, err
	}
	rm := rawManifest{raw: raw, mediaType: types.OCIManifestSchema1}
	if err := remote.Put(target, rm, opts...); err != nil {
		return res, fmt.Errorf("push %s: %w", target, mapRemoteError(err))
	}
	size := res.TargetSize
	res = c.result(src, target, v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sha256.Sum256(raw))}, ModeIndexOnly)
	res.TargetSize = size
	for _, n := range sizes {
		res.UncompressedSize += n
	}
	return res, nil
}

// The index-only fetch unit. A lazy read of a file fetches the aligned
// verified chunks holding the compressed bytes from the checkpoint before
// it to the end of its last deflate block: small chunks and dense
// checkpoints keep that close to the file's own compressed bytes. Measured
// on the synthetic 1 GiB image's 322 start-up files (BENCHMARKS.md in
// puller/gzindex): gzindex's defaults (512 KiB chunks and spans, 8 MiB
// fixed span) with 1 MiB decode blocks fetch 348 MB for 33 MB of start-up
// data; these settings with 16 KiB blocks fetch 38 MB, for an index of
// 0.33% of the layers' uncompressed size (0.05% before), the cost being a
// sha256 per chunk and a trimmed window per checkpoint.
const (
	// IndexChunkSize is gzindex.Options.ChunkSize for index-only layers.
	IndexChunkSize = 16 << 10
	// IndexSpan is gzindex.Options.Span: a checkpoint at most this many
	// compressed bytes before any file's data.
	IndexSpan = 32 << 10
	// IndexMaxSpan is gzindex.Options.MaxSpan: a checkpoint at least this
	// often inside large files, bounding a random read's fetch.
	IndexMaxSpan = 1 << 20
	// IndexVersion is the gzindex format written: version 3 splits an
	// index into a head, fetched before mounting (file table, chunk and
	// file digests), and its windows (about 80% of it at these spans),
	// fetched by range as reads need them.
	IndexVersion = 3
)

// indexHead returns AnnotationIndexHead's value for a serialized index.
func indexHead(data []byte) (string, error) {
	n, err := gzindex.HeadSize(data)
	if err != nil {
		return "", fmt.Errorf("index head: %w", err)
	}
	return fmt.Sprintf("%d@sha256:%x", n, sha256.Sum256(data[:n])), nil
}

// indexLayer builds and serializes one layer's index, streaming the blob,
// and returns it with the layer's uncompressed size, counted against b
// with its entries.
func indexLayer(ctx context.Context, l v1.Layer, desc v1.Descriptor, prog *tracker, b *budget) ([]byte, int64, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, 0, fmt.Errorf("fetch: %w", mapRemoteError(err))
	}
	defer rc.Close()
	ahead := readAhead(countingReader{rc, prog}, 4, 1<<20)
	defer ahead.Close()
	x, err := gzindex.Build(ctx, ahead, gzindex.Options{
		Digest:    desc.Digest.String(),
		MediaType: string(desc.MediaType),
		ChunkSize: IndexChunkSize,
		Span:      IndexSpan,
		MaxSpan:   IndexMaxSpan,
		Version:   IndexVersion,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("index: %w", err)
	}
	if err := b.take(x.Size); err != nil {
		return nil, 0, err
	}
	for i := range x.Entries {
		e := &x.Entries[i]
		if err := b.entry(e.Name, e.Linkname, e.PAXRecords); err != nil {
			return nil, 0, err
		}
	}
	data, err := x.MarshalBinary()
	if err != nil {
		return nil, 0, err
	}
	return data, x.Size, nil
}

// rawManifest is a manifest remote.Put can send as is.
type rawManifest struct {
	raw       []byte
	mediaType types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mediaType, nil }
