package puller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/remotes/docker"
	remoteerrors "github.com/containerd/containerd/remotes/errors"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/fcd-dev/fcd/billing"
	"github.com/fcd-dev/fcd/instance/image"
)

// view is one prepared use of a fully pulled image: a read-only view of
// its unpacked top snapshot.
type view struct {
	p      *Puller
	ref    string // as the caller named it, for the meter
	key    string
	opts   image.Options
	start  time.Time
	digest digest.Digest
	config ocispec.ImageConfig
	lower  []string
	stats  image.Stats

	mu      sync.Mutex
	ready   bool
	release bool // the view exists and is ours to remove
}

var _ image.Image = (*view)(nil)

func (i *view) Digest() digest.Digest       { return i.digest }
func (i *view) Config() ocispec.ImageConfig { return i.config }
func (i *view) LowerDirs() []string         { return i.lower }
func (i *view) Stats() image.Stats          { return i.stats }

// Ready meters the pull, once. The full pull ended when Prepare returned.
func (i *view) Ready(ctx context.Context) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.ready || i.p.opts.Meter == nil {
		i.ready = true
		return nil
	}
	i.ready = true
	_, err := i.p.opts.Meter.MeterPull(ctx, billing.PullRecord{
		Function:   i.opts.Function,
		Image:      i.ref,
		InstanceID: i.opts.InstanceID,
		MemoryMB:   i.opts.MemoryMB,
		Start:      i.start,
		End:        i.start.Add(i.stats.Duration),
		Bytes:      i.stats.BytesFetched,
		CacheHit:   i.stats.Cached,
	})
	if err != nil {
		return fmt.Errorf("meter pull of %s: %w", i.ref, err)
	}
	return nil
}

// Release removes the view; the image stays in the content store and
// snapshotter.
func (i *view) Release(ctx context.Context) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if !i.release {
		return nil
	}
	ctx = namespaces.WithNamespace(ctx, i.p.opts.Namespace)
	if err := i.p.client.SnapshotService(i.p.opts.Snapshotter).Remove(ctx, i.key); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove view %s: %w", i.key, err)
	}
	i.release = false
	return nil
}

// unauthorized tells whether err is a registry's refusal of the
// credentials: containerd's docker resolver reports it as
// docker.ErrInvalidAuthorization, or as a 401/403 status of the registry
// or of its token endpoint.
func unauthorized(err error) bool {
	if errors.Is(err, docker.ErrInvalidAuthorization) {
		return true
	}
	var us remoteerrors.ErrUnexpectedStatus
	if errors.As(err, &us) {
		return us.StatusCode == http.StatusUnauthorized || us.StatusCode == http.StatusForbidden
	}
	return false
}

// Local reports whether the image whose manifest is dgst was pulled and
// unpacked on this host before, so that Prepare of it would fetch no layer
// and be a free cache hit. It asks containerd only, never a registry; an
// image pulled under an index (several platforms) is found by its index
// digest.
func (p *Puller) Local(ctx context.Context, dgst digest.Digest) bool {
	ctx = namespaces.WithNamespace(ctx, p.opts.Namespace)
	imgs, err := p.client.ImageService().List(ctx, "target.digest=="+dgst.String())
	if err != nil || len(imgs) == 0 {
		return false
	}
	diffIDs, err := imgs[0].RootFS(ctx, p.client.ContentStore(), platforms.OnlyStrict(Platform))
	if err != nil {
		return false
	}
	_, err = p.client.SnapshotService(p.opts.Snapshotter).Stat(ctx, identity.ChainID(diffIDs).String())
	return err == nil
}
