package lazyfs

import (
	"context"
	"fmt"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/fcd-dev/fcd/puller/gzindex"
)

// LayerOptions says how OpenLayer reads one layer.
type LayerOptions struct {
	// Index is the serialized gzindex of the layer (from an index-only
	// artifact), or nil.
	Index []byte
	// IndexBlob, when not nil, holds the serialized index of which Index
	// is only the head (gzindex.LoadHead: format version 3, its bytes
	// already authenticated by the caller); the index's windows are read
	// from it by range, each verified against the head, as reads need
	// them.
	IndexBlob Blob
	// Startup is the recorded start-up order of the layer's files (Entry
	// names), or nil; an eStargz layer's own landmark order wins.
	Startup []string
	// Chunks keeps eStargz chunks host-wide (EStargzOptions.Chunks).
	Chunks ChunkStore
}

// OpenLayer returns the Source of the layer desc describes, whose blob
// serves its bytes: an eStargz layer (one carrying the
// "containerd.io/snapshot/stargz/toc.digest" annotation, which
// authenticates its TOC) is read through its TOC; any other gzip layer
// needs opts.Index, checked to be for desc.Digest (and ignored for an
// eStargz layer). A layer with neither
// cannot be read lazily (ErrUnsupported): pull it whole.
func OpenLayer(ctx context.Context, desc ocispec.Descriptor, blob Blob, opts LayerOptions) (Source, error) {
	if toc, ok := desc.Annotations[estargz.TOCJSONDigestAnnotation]; ok {
		d, err := parseDigest(toc)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %s annotation: %w", desc.Digest, estargz.TOCJSONDigestAnnotation, err)
		}
		s, err := OpenEStargz(ctx, blob, desc.Size, EStargzOptions{TOCDigest: d, Chunks: opts.Chunks})
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
		return s, nil
	}
	if opts.Index == nil {
		return nil, fmt.Errorf("layer %s: neither eStargz nor indexed: %w", desc.Digest, ErrUnsupported)
	}
	var x *gzindex.Index
	var err error
	if ib := opts.IndexBlob; ib != nil {
		x, err = gzindex.LoadHead(opts.Index, desc.Digest.String(), func(ctx context.Context, off, n int64, want digest.Digest) ([]byte, error) {
			if want == "" { // a run of windows, each checked against the head
				return ib.ReadRange(ctx, off, n, priority(ctx))
			}
			return ib.ReadChunk(ctx, off, n, want, priority(ctx))
		})
	} else {
		x, err = gzindex.Load(opts.Index, desc.Digest.String())
	}
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	if x.CompressedSize != desc.Size {
		return nil, fmt.Errorf("layer %s: index is for %d bytes, descriptor says %d: %w", desc.Digest, x.CompressedSize, desc.Size, ErrCorrupt)
	}
	s, err := NewGzIndex(x, blob, opts.Startup)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	return s, nil
}

func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return d, nil
}
