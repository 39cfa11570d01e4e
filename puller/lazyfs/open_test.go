package lazyfs

import (
	"context"
	"errors"
	"testing"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestOpenLayer(t *testing.T) {
	b := buildLayer(t, featureLayer())
	index, err := b.index.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	gzDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(b.gz.data), Size: int64(len(b.gz.data))}
	esDesc := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(b.esgz.data), Size: int64(len(b.esgz.data)),
		Annotations: map[string]string{estargz.TOCJSONDigestAnnotation: b.tocDgst},
	}
	ctx := context.Background()
	if s, err := OpenLayer(ctx, esDesc, b.esgz, LayerOptions{}); err != nil {
		t.Errorf("eStargz layer: %v", err)
	} else if _, ok := s.(*EStargz); !ok {
		t.Errorf("eStargz layer opened as %T", s)
	}
	if s, err := OpenLayer(ctx, gzDesc, b.gz, LayerOptions{Index: index}); err != nil {
		t.Errorf("indexed layer: %v", err)
	} else if _, ok := s.(*GzIndex); !ok {
		t.Errorf("indexed layer opened as %T", s)
	}
	if _, err := OpenLayer(ctx, gzDesc, b.gz, LayerOptions{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("plain layer: got %v, want ErrUnsupported", err)
	}
	other := gzDesc
	other.Digest = digest.FromString("another layer")
	if _, err := OpenLayer(ctx, other, b.gz, LayerOptions{Index: index}); err == nil {
		t.Error("an index for another layer was accepted")
	}
	bad := esDesc
	bad.Annotations = map[string]string{estargz.TOCJSONDigestAnnotation: digest.FromString("x").String()}
	if _, err := OpenLayer(ctx, bad, b.esgz, LayerOptions{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("eStargz layer with a wrong TOC digest: got %v, want ErrCorrupt", err)
	}
}
