package puller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/containerd/rootfs"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/singleflight"
)

const (
	// DefaultMaxCompressedSize is the default limit on the sum of an
	// image's compressed layer sizes.
	DefaultMaxCompressedSize = 10 << 30
	// DefaultMaxUncompressedSize is the default limit on the bytes an
	// image's layers unpack to.
	DefaultMaxUncompressedSize = 10 << 30
	// DefaultSnapshotter is the containerd snapshotter images unpack into.
	DefaultSnapshotter = "overlayfs"

	// viewLabel marks the read-only views Prepare creates, so a restarted
	// fcd can find and remove the ones an earlier run left behind.
	viewLabel = "fcd.dev/view"
	// maxManifestSize bounds the manifests and configs read into memory.
	maxManifestSize = 4 << 20
)

// Platform is the only platform Prepare accepts.
var Platform = ocispec.Platform{OS: "linux", Architecture: "amd64"}

// Options configures a Puller. The zero value of each field means its
// default.
type Options struct {
	// Namespace is the containerd namespace images, content and snapshots
	// live in. It is required.
	Namespace string
	// Snapshotter is the containerd snapshotter; "" means "overlayfs",
	// the only one whose views LowerDirs understands.
	Snapshotter string
	// MaxCompressedSize refuses images whose compressed layers sum past it
	// before anything is fetched; 0 means DefaultMaxCompressedSize.
	MaxCompressedSize int64
	// MaxUncompressedSize refuses images that unpack to more bytes; 0
	// means DefaultMaxUncompressedSize.
	MaxUncompressedSize int64
	// HTTPClient is used for registry requests; nil means a client with
	// http.DefaultTransport.
	HTTPClient *http.Client
	// Logger receives debug records of pulls; nil means silence.
	Logger *slog.Logger
}

// PrepareOptions are per call.
type PrepareOptions struct {
	// Key names the read-only view created for this use of the image; it
	// must be unique among live views (the instance ID is a good key).
	// It is required.
	Key string
	// Credentials returns the registry credentials for host. It is called
	// whenever a registry answers 401, so temporary credentials may
	// change between calls. Nil means anonymous access.
	Credentials func(host string) (user, secret string, err error)
}

// Stats describes what Prepare did, for billing and measurements.
type Stats struct {
	// Cached is true when the image was already unpacked on this host and
	// nothing but its manifest was read from the registry.
	Cached bool
	// BytesFetched is the number of compressed layer bytes downloaded.
	BytesFetched int64
	// UnpackedBytes is the number of uncompressed bytes written while
	// unpacking layers that were not unpacked before.
	UnpackedBytes int64
	// Duration is the wall time of Prepare.
	Duration time.Duration
}

// Image is a prepared image: its configuration and a read-only root
// filesystem. Release must be called when the root filesystem is no
// longer mounted.
type Image struct {
	// Ref is the normalized reference that was prepared.
	Ref string
	// Digest is the digest of the linux/amd64 manifest.
	Digest digest.Digest
	// Config is the image's runtime configuration (entrypoint, cmd, env,
	// user, working dir, exposed ports).
	Config ocispec.ImageConfig
	// ChainID identifies the unpacked layer chain.
	ChainID digest.Digest
	// LowerDirs are the read-only layer directories, top-most first, in
	// the order of an overlay mount's lowerdir option.
	LowerDirs []string
	// Stats describes the pull.
	Stats Stats

	release func(context.Context) error
}

// Release removes the read-only view of the image. The image itself stays
// in the content store and snapshotter. Release is safe to call more than
// once.
func (i *Image) Release(ctx context.Context) error {
	if i.release == nil {
		return nil
	}
	r := i.release
	i.release = nil
	return r(ctx)
}

// Puller prepares images through one containerd client. It is safe for
// concurrent use; concurrent pulls of the same reference share one pull.
type Puller struct {
	client *containerd.Client
	opts   Options
	log    *slog.Logger
	group  singleflight.Group
}

// New returns a Puller using client. The client is not closed by the Puller.
func New(client *containerd.Client, opts Options) (*Puller, error) {
	if opts.Namespace == "" {
		return nil, errors.New("puller: Options.Namespace is required")
	}
	if opts.Snapshotter == "" {
		opts.Snapshotter = DefaultSnapshotter
	}
	if opts.MaxCompressedSize == 0 {
		opts.MaxCompressedSize = DefaultMaxCompressedSize
	}
	if opts.MaxUncompressedSize == 0 {
		opts.MaxUncompressedSize = DefaultMaxUncompressedSize
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Transport: http.DefaultTransport}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Puller{client: client, opts: opts, log: log}, nil
}

// Normalize returns the fully qualified form of ref ("busybox" becomes
// "docker.io/library/busybox:latest").
func Normalize(ref string) (string, error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrInvalidReference, ref, err)
	}
	return named.String(), nil
}

// Prepare makes ref's linux/amd64 image available as a read-only root
// filesystem: it resolves ref, checks platform and size, fetches the
// missing blobs, unpacks the layers not yet unpacked and creates a view
// named opts.Key. The returned Image must be released. On error nothing
// created by this call is left behind (fetched blobs and unpacked layers
// stay cached).
func (p *Puller) Prepare(ctx context.Context, ref string, opts PrepareOptions) (_ *Image, err error) {
	start := time.Now()
	if opts.Key == "" {
		return nil, errors.New("puller: PrepareOptions.Key is required")
	}
	ref, err = Normalize(ref)
	if err != nil {
		return nil, err
	}
	ctx = namespaces.WithNamespace(ctx, p.opts.Namespace)
	resolver := p.resolver(opts.Credentials)

	name, desc, err := resolver.Resolve(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", ref, err)
	}
	pinned := pin(name, desc.Digest)
	// Concurrent starts of one image share a single fetch and unpack.
	v, err, _ := p.group.Do(pinned, func() (any, error) {
		return p.pull(ctx, resolver, pinned, desc)
	})
	if err != nil {
		return nil, err
	}
	pulled := v.(*pulled)

	mounts, err := p.client.SnapshotService(p.opts.Snapshotter).View(ctx, opts.Key, pulled.chainID.String(),
		snapshots.WithLabels(map[string]string{
			"containerd.io/gc.root": time.Now().UTC().Format(time.RFC3339),
			viewLabel:               "1",
		}))
	if err != nil {
		return nil, fmt.Errorf("view %s of %s: %w", opts.Key, ref, err)
	}
	sn := p.client.SnapshotService(p.opts.Snapshotter)
	release := func(ctx context.Context) error {
		ctx = namespaces.WithNamespace(ctx, p.opts.Namespace)
		if err := sn.Remove(ctx, opts.Key); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove view %s: %w", opts.Key, err)
		}
		return nil
	}
	defer func() {
		if err != nil {
			_ = release(context.WithoutCancel(ctx))
		}
	}()
	lower, err := LowerDirs(mounts)
	if err != nil {
		return nil, fmt.Errorf("view %s of %s: %w", opts.Key, ref, err)
	}
	stats := pulled.stats
	stats.Duration = time.Since(start)
	p.log.DebugContext(ctx, "image prepared", "ref", ref, "digest", pulled.manifest,
		"cached", stats.Cached, "bytes", stats.BytesFetched, "duration", stats.Duration)
	return &Image{
		Ref:       ref,
		Digest:    pulled.manifest,
		Config:    pulled.config.Config,
		ChainID:   pulled.chainID,
		LowerDirs: lower,
		Stats:     stats,
		release:   release,
	}, nil
}

// RemoveViews removes every view an earlier Prepare created and nobody
// released, e.g. after a crash. Callers must make sure no view is in use.
func (p *Puller) RemoveViews(ctx context.Context) error {
	ctx = namespaces.WithNamespace(ctx, p.opts.Namespace)
	sn := p.client.SnapshotService(p.opts.Snapshotter)
	var keys []string
	err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if info.Labels[viewLabel] != "" {
			keys = append(keys, info.Name)
		}
		return nil
	}, `labels."`+viewLabel+`"`)
	if err != nil {
		return fmt.Errorf("list views: %w", err)
	}
	var errs []error
	for _, k := range keys {
		if err := sn.Remove(ctx, k); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove view %s: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

func pin(name string, dgst digest.Digest) string {
	if i := strings.Index(name, "@"); i >= 0 {
		name = name[:i]
	}
	return name + "@" + dgst.String()
}

func (p *Puller) resolver(creds func(string) (string, string, error)) remotes.Resolver {
	authOpts := []docker.AuthorizerOpt{docker.WithAuthClient(p.opts.HTTPClient)}
	if creds != nil {
		authOpts = append(authOpts, docker.WithAuthCreds(creds))
	}
	return docker.NewResolver(docker.ResolverOptions{
		Hosts: docker.ConfigureDefaultRegistries(
			docker.WithClient(p.opts.HTTPClient),
			docker.WithPlainHTTP(docker.MatchLocalhost),
			docker.WithAuthorizer(docker.NewDockerAuthorizer(authOpts...)),
		),
	})
}

type pulled struct {
	manifest digest.Digest
	config   ocispec.Image
	chainID  digest.Digest
	stats    Stats
}

// pull checks, fetches and unpacks the image pinned to desc.
func (p *Puller) pull(ctx context.Context, resolver remotes.Resolver, pinned string, desc ocispec.Descriptor) (*pulled, error) {
	ctx, done, err := p.client.WithLease(ctx)
	if err != nil {
		return nil, fmt.Errorf("lease for %s: %w", pinned, err)
	}
	defer done(context.WithoutCancel(ctx))

	fetcher, err := resolver.Fetcher(ctx, pinned)
	if err != nil {
		return nil, fmt.Errorf("fetcher for %s: %w", pinned, err)
	}
	mdesc, manifest, config, err := p.selectManifest(ctx, fetcher, pinned, desc)
	if err != nil {
		return nil, err
	}
	if len(manifest.Layers) != len(config.RootFS.DiffIDs) {
		return nil, fmt.Errorf("image %s: %d layers but %d diff ids", pinned, len(manifest.Layers), len(config.RootFS.DiffIDs))
	}
	var compressed int64
	for _, l := range manifest.Layers {
		compressed += l.Size
	}
	if compressed > p.opts.MaxCompressedSize {
		return nil, fmt.Errorf("image %s: compressed layers are %d bytes, over the %d byte limit: %w",
			pinned, compressed, p.opts.MaxCompressedSize, ErrTooLarge)
	}

	chainID := identity.ChainID(config.RootFS.DiffIDs)
	sn := p.client.SnapshotService(p.opts.Snapshotter)
	_, statErr := sn.Stat(ctx, chainID.String())
	res := &pulled{manifest: mdesc.Digest, config: config, chainID: chainID}
	res.stats.Cached = statErr == nil

	cs := p.client.ContentStore()
	for _, l := range manifest.Layers {
		if _, err := cs.Info(ctx, l.Digest); errdefs.IsNotFound(err) && !res.stats.Cached {
			res.stats.BytesFetched += l.Size
		}
	}
	// Fetch records the image and its manifest and config (cheap when they
	// are present); layer blobs are only fetched when they must be unpacked.
	handlerWrapper := func(h images.Handler) images.Handler {
		return images.HandlerFunc(func(ctx context.Context, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
			children, err := h.Handle(ctx, d)
			if err != nil || !res.stats.Cached || !images.IsManifestType(d.MediaType) {
				return children, err
			}
			var kept []ocispec.Descriptor
			for _, c := range children {
				if !images.IsLayerType(c.MediaType) {
					kept = append(kept, c)
				}
			}
			return kept, nil
		})
	}
	if _, err := p.client.Fetch(ctx, pinned,
		containerd.WithResolver(resolver),
		containerd.WithPlatformMatcher(platforms.OnlyStrict(Platform)),
		containerd.WithImageHandlerWrapper(handlerWrapper),
	); err != nil {
		return nil, fmt.Errorf("fetch %s: %w", pinned, err)
	}
	if res.stats.Cached {
		return res, nil
	}

	layers := make([]rootfs.Layer, len(manifest.Layers))
	for i, l := range manifest.Layers {
		layers[i] = rootfs.Layer{
			Blob: l,
			Diff: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: config.RootFS.DiffIDs[i]},
		}
	}
	a := &applier{cs: cs, limit: p.opts.MaxUncompressedSize}
	if _, err := rootfs.ApplyLayersWithOpts(ctx, layers, sn, a, nil); err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, fmt.Errorf("image %s: unpacked past %d bytes: %w", pinned, p.opts.MaxUncompressedSize, ErrTooLarge)
		}
		return nil, fmt.Errorf("unpack %s: %w", pinned, err)
	}
	res.stats.UnpackedBytes = a.written
	// Keep the unpacked chain alive after the lease ends, as containerd's
	// own unpacker does: the config blob references the top snapshot.
	label := "containerd.io/gc.ref.snapshot." + p.opts.Snapshotter
	if _, err := cs.Update(ctx, content.Info{
		Digest: manifest.Config.Digest,
		Labels: map[string]string{label: chainID.String()},
	}, "labels."+label); err != nil {
		return nil, fmt.Errorf("label config of %s: %w", pinned, err)
	}
	return res, nil
}

// selectManifest reads desc (an index or a manifest) from the registry and
// returns the linux/amd64 manifest and its config.
func (p *Puller) selectManifest(ctx context.Context, f remotes.Fetcher, ref string, desc ocispec.Descriptor) (ocispec.Descriptor, ocispec.Manifest, ocispec.Image, error) {
	var (
		manifest ocispec.Manifest
		config   ocispec.Image
	)
	if images.IsIndexType(desc.MediaType) {
		var idx ocispec.Index
		if err := fetchJSON(ctx, f, desc, &idx); err != nil {
			return desc, manifest, config, fmt.Errorf("read index of %s: %w", ref, err)
		}
		match := platforms.OnlyStrict(Platform)
		var offered []string
		found := false
		for _, m := range idx.Manifests {
			if m.Platform == nil {
				continue
			}
			offered = append(offered, platforms.Format(*m.Platform))
			if match.Match(*m.Platform) {
				desc, found = m, true
				break
			}
		}
		if !found {
			return desc, manifest, config, fmt.Errorf("image %s offers %v: %w", ref, offered, ErrPlatform)
		}
	}
	if !images.IsManifestType(desc.MediaType) {
		return desc, manifest, config, fmt.Errorf("image %s: unsupported media type %s", ref, desc.MediaType)
	}
	if err := fetchJSON(ctx, f, desc, &manifest); err != nil {
		return desc, manifest, config, fmt.Errorf("read manifest of %s: %w", ref, err)
	}
	if err := fetchJSON(ctx, f, manifest.Config, &config); err != nil {
		return desc, manifest, config, fmt.Errorf("read config of %s: %w", ref, err)
	}
	if got := platforms.Normalize(config.Platform); got.OS != Platform.OS || got.Architecture != Platform.Architecture {
		return desc, manifest, config, fmt.Errorf("image %s is %s/%s: %w", ref, config.OS, config.Architecture, ErrPlatform)
	}
	return desc, manifest, config, nil
}

func fetchJSON(ctx context.Context, f remotes.Fetcher, desc ocispec.Descriptor, v any) error {
	if desc.Size > maxManifestSize {
		return fmt.Errorf("%s is %d bytes, over %d", desc.Digest, desc.Size, maxManifestSize)
	}
	rc, err := f.Fetch(ctx, desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxManifestSize+1))
	if err != nil {
		return err
	}
	if desc.Digest != "" && digest.FromBytes(b) != desc.Digest {
		return fmt.Errorf("%s: digest mismatch", desc.Digest)
	}
	return json.Unmarshal(b, v)
}
