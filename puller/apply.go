package puller

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"

	"github.com/containerd/containerd/archive"
	"github.com/containerd/containerd/archive/compression"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/diff"
	"github.com/containerd/containerd/mount"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// applier unpacks layer blobs from the content store in this process,
// counting uncompressed bytes across all layers of one pull so that an
// image over the limit is refused while it unpacks, not after.
type applier struct {
	cs      content.Provider
	limit   int64
	written int64 // atomically; bytes of uncompressed tar read so far
}

var _ diff.Applier = (*applier)(nil)

func (a *applier) Apply(ctx context.Context, desc ocispec.Descriptor, mounts []mount.Mount, _ ...diff.ApplyOpt) (ocispec.Descriptor, error) {
	ra, err := a.cs.ReaderAt(ctx, desc)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("open %s: %w", desc.Digest, err)
	}
	defer ra.Close()
	ds, err := compression.DecompressStream(content.NewReader(ra))
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("decompress %s: %w", desc.Digest, err)
	}
	defer ds.Close()

	digester := digest.Canonical.Digester()
	r := &limitReader{r: io.TeeReader(ds, digester.Hash()), a: a}
	err = mount.WithTempMount(ctx, mounts, func(root string) error {
		_, err := archive.Apply(ctx, root, r)
		return err
	})
	if r.err != nil {
		return ocispec.Descriptor{}, r.err
	}
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	// Tar streams may carry padding after the end-of-archive marker; it is
	// part of the diff ID.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageLayer,
		Digest:    digester.Digest(),
		Size:      r.n,
	}, nil
}

type limitReader struct {
	r   io.Reader
	a   *applier
	n   int64
	err error
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if atomic.AddInt64(&l.a.written, int64(n)) > l.a.limit {
		l.err = ErrTooLarge
		return n, l.err
	}
	return n, err
}

// LowerDirs returns the directories of a read-only snapshot view, top-most
// first, as an overlay lowerdir option lists them. It understands the
// mounts of containerd's overlayfs snapshotter: a read-only bind mount for
// a single layer, an overlay mount for several.
func LowerDirs(mounts []mount.Mount) ([]string, error) {
	if len(mounts) != 1 {
		return nil, fmt.Errorf("want one mount, got %d", len(mounts))
	}
	m := mounts[0]
	switch m.Type {
	case "bind", "rbind":
		return []string{m.Source}, nil
	case "overlay":
		for _, o := range m.Options {
			if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
				return strings.Split(v, ":"), nil
			}
		}
		return nil, fmt.Errorf("overlay mount without lowerdir: %v", m.Options)
	}
	return nil, fmt.Errorf("unsupported mount type %q", m.Type)
}
