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
	"sync/atomic"
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
	"github.com/fcd-dev/fcd/instance/image"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
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

// Defaults of the bounds on a pull.
const (
	// DefaultPullTimeout bounds one shared pull, fetch and unpack.
	DefaultPullTimeout = 10 * time.Minute
	// DefaultResponseHeaderTimeout bounds the wait for a registry's
	// response headers.
	DefaultResponseHeaderTimeout = 30 * time.Second
	// DefaultStallTimeout bounds the silence within a response body.
	DefaultStallTimeout = 30 * time.Second
)

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
	// PullTimeout bounds one pull (fetch and unpack), which concurrent
	// Prepare calls of the image share, whoever still waits for it; 0
	// means DefaultPullTimeout. fcd derives it from the instance start
	// timeout. Each caller also stops waiting when its own ctx is done.
	PullTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a registry's response
	// headers; 0 means DefaultResponseHeaderTimeout.
	ResponseHeaderTimeout time.Duration
	// StallTimeout fails a read of a registry response body that waits
	// this long for a byte; 0 means DefaultStallTimeout.
	StallTimeout time.Duration
	// HostsDir is a containerd hosts directory (certs.d layout:
	// <HostsDir>/<host>/hosts.toml) saying how to reach each registry:
	// mirrors, plain HTTP, CAs, skip-verify. "" means loopback registries
	// in plain HTTP and every other in HTTPS.
	HostsDir string
	// HTTPClient is used for registry requests, its transport wrapped
	// with the two bounds above; nil means a client with
	// http.DefaultTransport.
	HTTPClient *http.Client
	// Addresses, when set, refuses registry connections to the addresses
	// it refuses, with ErrAddressRefused: HTTPClient's transport (and
	// those HostsDir's TLS settings make) must then be an *http.Transport,
	// whose DialContext is replaced by one that checks each address (see
	// AddressPolicy.Transport). Nil means any address may be reached.
	Addresses *AddressPolicy
	// Meter receives each pull once its instance is ready; nil means
	// pulls are not metered.
	Meter Meter
	// Logger receives debug records of pulls; nil means silence.
	Logger *slog.Logger
}

// Puller prepares images through one containerd client: the full pull,
// which fetches and unpacks every layer before Prepare returns. It is safe
// for concurrent use; concurrent pulls of the same image share one pull.
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
	if opts.PullTimeout == 0 {
		opts.PullTimeout = DefaultPullTimeout
	}
	if opts.ResponseHeaderTimeout == 0 {
		opts.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
	}
	if opts.StallTimeout == 0 {
		opts.StallTimeout = DefaultStallTimeout
	}
	hc := &http.Client{}
	if opts.HTTPClient != nil {
		*hc = *opts.HTTPClient
	}
	if hc.Transport == nil {
		// http.DefaultTransport keeps 2 idle connections per host: the
		// lazy fetcher's streams (6 per registry, puller/remote) would
		// open new ones after every burst of range GETs.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 16
		hc.Transport = tr
	}
	if opts.Addresses != nil {
		tr, ok := hc.Transport.(*http.Transport)
		if !ok {
			return nil, fmt.Errorf("puller: Options.Addresses needs an *http.Transport in Options.HTTPClient, not %T", hc.Transport)
		}
		gtr, err := opts.Addresses.Transport(tr)
		if err != nil {
			return nil, err
		}
		hc.Transport = gtr
	}
	hc.Transport = BoundTransport(hc.Transport, opts.ResponseHeaderTimeout, opts.StallTimeout)
	opts.HTTPClient = hc
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

var _ image.Images = (*Puller)(nil)

// Prepare makes ref's linux/amd64 image available as a read-only root
// filesystem: it resolves ref, checks platform and size, fetches the
// missing blobs, unpacks the layers not yet unpacked and creates a view
// named opts.Key. The returned Image must be released. On error nothing
// created by this call is left behind (fetched blobs and unpacked layers
// stay cached). See image.Images for the contract.
func (p *Puller) Prepare(ctx context.Context, ref string, opts image.Options) (_ image.Image, err error) {
	start := time.Now()
	if opts.Key == "" {
		return nil, errors.New("puller: image.Options.Key is required")
	}
	norm, err := Normalize(ref)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && unauthorized(err) {
			role := opts.Role
			if role == "" {
				role = "none"
			}
			err = fmt.Errorf("%w: the registry refused the function's credentials (role %s); a role whose repositories include this image is needed: %w", ErrUnauthorized, role, err)
		}
	}()
	ctx = namespaces.WithNamespace(ctx, p.opts.Namespace)
	auth := &image.BusyRecorder{Origin: start}
	resolver := p.resolver(image.TimeCredentials(opts.Credentials, auth))

	// Each caller resolves with its own credentials, so none can use a
	// pull it was not allowed to start; the pull itself is shared.
	t := time.Now()
	name, desc, err := resolver.Resolve(ctx, norm)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", norm, err)
	}
	resolved := image.SpanOf(start, t, time.Now())
	t = time.Now()
	pulled, err := p.shared(ctx, resolver, pin(name, desc.Digest), desc)
	if err != nil {
		return nil, err
	}
	fetched := image.SpanOf(start, t, time.Now())
	t = time.Now()

	sn := p.client.SnapshotService(p.opts.Snapshotter)
	mounts, err := sn.View(ctx, opts.Key, pulled.chainID.String(),
		snapshots.WithLabels(map[string]string{
			"containerd.io/gc.root": time.Now().UTC().Format(time.RFC3339),
			viewLabel:               "1",
		}))
	if err != nil {
		return nil, fmt.Errorf("view %s of %s: %w", opts.Key, norm, err)
	}
	img := &view{
		p:       p,
		ref:     ref,
		key:     opts.Key,
		opts:    opts,
		start:   start,
		digest:  pulled.manifest,
		config:  pulled.config.Config,
		stats:   pulled.stats,
		release: true,
	}
	defer func() {
		if err != nil {
			_ = img.Release(context.WithoutCancel(ctx))
		}
	}()
	if img.lower, err = LowerDirs(mounts); err != nil {
		return nil, fmt.Errorf("view %s of %s: %w", opts.Key, norm, err)
	}
	now := time.Now()
	img.stats.Duration = now.Sub(start)
	img.stats.Resolve, img.stats.Auth, img.stats.Mount = resolved, auth.Span(), image.SpanOf(start, t, now)
	if !img.stats.Cached {
		img.stats.Fetch = fetched
	}
	p.log.DebugContext(ctx, "image prepared", "ref", norm, "digest", pulled.manifest,
		"cached", img.stats.Cached, "bytes", img.stats.BytesFetched, "duration", img.stats.Duration)
	return img, nil
}

// shared runs the pull of pinned, or joins the one in flight. The pull
// runs on its own context bounded by Options.PullTimeout, so a caller
// that gives up does not fail the others; a pull that failed is
// forgotten, and the next Prepare starts afresh.
func (p *Puller) shared(ctx context.Context, resolver remotes.Resolver, pinned string, desc ocispec.Descriptor) (*pulled, error) {
	ch := p.group.DoChan(pinned, func() (any, error) {
		pctx, cancel := context.WithTimeoutCause(context.WithoutCancel(ctx), p.opts.PullTimeout,
			fmt.Errorf("pull %s not done within %s: %w", pinned, p.opts.PullTimeout, ErrRegistryTimeout))
		defer cancel()
		res, err := p.pull(pctx, resolver, pinned, desc)
		if err != nil && pctx.Err() != nil {
			if cause := context.Cause(pctx); !errors.Is(err, ErrRegistryTimeout) {
				err = fmt.Errorf("%w: %w", cause, err)
			}
		}
		return res, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*pulled), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("pull %s: gave up waiting: %w", pinned, context.Cause(ctx))
	}
}

// RemoveViews removes every view an earlier Prepare created and nobody
// released, e.g. after a crash. Callers must make sure no view is in use.
func (p *Puller) RemoveViews(ctx context.Context) error {
	keys, err := p.Views(ctx)
	if err != nil {
		return err
	}
	return p.RemoveViewKeys(ctx, keys)
}

// Views returns the keys of the views that exist now. Listed before this
// Puller prepares anything, they are an earlier process's, which
// RemoveViewKeys can remove while this one prepares new views.
func (p *Puller) Views(ctx context.Context) ([]string, error) {
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
		return nil, fmt.Errorf("list views: %w", err)
	}
	return keys, nil
}

// RemoveViewKeys removes the views of keys (from Views); views already
// gone are no error.
func (p *Puller) RemoveViewKeys(ctx context.Context, keys []string) error {
	ctx = namespaces.WithNamespace(ctx, p.opts.Namespace)
	sn := p.client.SnapshotService(p.opts.Snapshotter)
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
	return docker.NewResolver(docker.ResolverOptions{Hosts: p.registryHosts(creds)})
}

// bound wraps rt with the puller's response-header and stall bounds.
func (p *Puller) bound(rt http.RoundTripper) http.RoundTripper {
	return BoundTransport(rt, p.opts.ResponseHeaderTimeout, p.opts.StallTimeout)
}

type pulled struct {
	manifest digest.Digest
	config   ocispec.Image
	chainID  digest.Digest
	stats    image.Stats
}

// pull checks, fetches and unpacks the image pinned to desc. Index,
// manifest and config are read from the content store, and fetched (once)
// only when missing there; so a cached image costs no registry request
// beyond the caller's resolve.
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
	fetcher = RegistryOnly(fetcher)
	cs := p.client.ContentStore()
	mdesc, manifest, config, err := p.selectManifest(ctx, cs, fetcher, pinned, desc)
	if err != nil {
		return nil, err
	}
	// Refused before any layer is fetched, not when the fetch of that
	// layer comes to it.
	for _, l := range manifest.Layers {
		if err := CheckURLs(l); err != nil {
			return nil, fmt.Errorf("image %s: %w", pinned, err)
		}
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
	if !res.stats.Cached {
		// Layers are fetched only when they must be unpacked.
		n, err := p.fetchAll(ctx, cs, fetcher, manifest.Layers)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", pinned, err)
		}
		res.stats.BytesFetched = n
	}
	if err := p.record(ctx, cs, pinned, desc, mdesc); err != nil {
		return nil, err
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

// record labels the index and manifest with their children, for
// containerd's garbage collector, and names the image pinned in the image
// store, which roots it all once the pull's lease ends.
func (p *Puller) record(ctx context.Context, cs content.Store, pinned string, desc, mdesc ocispec.Descriptor) error {
	label := images.SetChildrenLabels(cs, images.ChildrenHandler(cs))
	for _, d := range []ocispec.Descriptor{mdesc, desc} {
		if _, err := label.Handle(ctx, d); err != nil {
			return fmt.Errorf("label %s of %s: %w", d.Digest, pinned, err)
		}
	}
	is := p.client.ImageService()
	img := images.Image{Name: pinned, Target: desc}
	if _, err := is.Create(ctx, img); errdefs.IsAlreadyExists(err) {
		_, err = is.Update(ctx, img)
		if err != nil {
			return fmt.Errorf("image record %s: %w", pinned, err)
		}
	} else if err != nil {
		return fmt.Errorf("image record %s: %w", pinned, err)
	}
	return nil
}

// selectManifest reads desc (an index or a manifest) and returns the
// linux/amd64 manifest and its config.
func (p *Puller) selectManifest(ctx context.Context, cs content.Store, f remotes.Fetcher, ref string, desc ocispec.Descriptor) (ocispec.Descriptor, ocispec.Manifest, ocispec.Image, error) {
	var (
		manifest ocispec.Manifest
		config   ocispec.Image
	)
	if images.IsIndexType(desc.MediaType) {
		var idx ocispec.Index
		if err := p.readJSON(ctx, cs, f, desc, &idx); err != nil {
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
	if err := p.readJSON(ctx, cs, f, desc, &manifest); err != nil {
		return desc, manifest, config, fmt.Errorf("read manifest of %s: %w", ref, err)
	}
	if err := p.readJSON(ctx, cs, f, manifest.Config, &config); err != nil {
		return desc, manifest, config, fmt.Errorf("read config of %s: %w", ref, err)
	}
	if got := platforms.Normalize(config.Platform); got.OS != Platform.OS || got.Architecture != Platform.Architecture {
		return desc, manifest, config, fmt.Errorf("image %s is %s/%s: %w", ref, config.OS, config.Architecture, ErrPlatform)
	}
	return desc, manifest, config, nil
}

// readJSON decodes the blob desc from the content store, fetching it into
// the store first (verified against its digest) when it is missing.
func (p *Puller) readJSON(ctx context.Context, cs content.Store, f remotes.Fetcher, desc ocispec.Descriptor, v any) error {
	if desc.Size > maxManifestSize {
		return fmt.Errorf("%s is %d bytes, over %d", desc.Digest, desc.Size, maxManifestSize)
	}
	if _, err := p.fetch(ctx, cs, f, desc); err != nil {
		return err
	}
	b, err := content.ReadBlob(ctx, cs, desc)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// fetch puts desc's blob into the content store unless it is there, and
// in both cases holds it in ctx's lease, so the garbage collector cannot
// take it while the pull runs. It reports whether it fetched.
//
// A fetch cut short (fcd killed mid-pull) leaves its ingest in the store,
// held by the pull's lease for a day, and the next fetch of the blob
// resumes it with a ranged request. When that resume fails without adding
// a byte to the ingest (a registry that refuses the range, as
// go-containerregistry's refuses open-ended ones), or the whole does not
// hash to the digest (the ingest's bytes were not the blob's), fetch
// fetches the blob again from its start, once. Otherwise every pull of
// the image would fail the same way until the lease expired.
func (p *Puller) fetch(ctx context.Context, cs content.Store, f remotes.Fetcher, desc ocispec.Descriptor) (bool, error) {
	ref := remotes.MakeRefKey(ctx, desc)
	before, statErr := cs.Status(ctx, ref)
	err := remotes.Fetch(ctx, cs, f, desc)
	if err != nil && statErr == nil && before.Offset > 0 && ctx.Err() == nil && !errdefs.IsAlreadyExists(err) {
		after, serr := cs.Status(ctx, ref)
		if serr == nil && (after.Offset <= before.Offset || errdefs.IsFailedPrecondition(err)) {
			p.log.WarnContext(ctx, "resuming a cut-short fetch failed; fetching the blob from its start",
				"digest", desc.Digest, "size", desc.Size, "offset", before.Offset, "error", err)
			err = refetch(ctx, cs, f, ref, desc)
		}
	}
	switch {
	case errdefs.IsAlreadyExists(err):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// refetch fetches desc's blob from its start into the ingest ref,
// truncating what the ingest held. It truncates rather than aborts the
// ingest: containerd closes the writer of a fetch that just failed after
// the fetch returns, and an abort racing that close fails.
func refetch(ctx context.Context, cs content.Store, f remotes.Fetcher, ref string, desc ocispec.Descriptor) error {
	cw, err := content.OpenWriter(ctx, cs, content.WithRef(ref), content.WithDescriptor(desc))
	if err != nil {
		return err
	}
	defer cw.Close()
	// containerd's writer truncates at the first write.
	if err := cw.Truncate(0); err != nil {
		return fmt.Errorf("truncate ingest %s: %w", ref, err)
	}
	rc, err := f.Fetch(ctx, desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.CopyBuffer(cw, io.LimitReader(rc, desc.Size), make([]byte, 1<<20)); err != nil {
		return fmt.Errorf("fetch %s from its start: %w", desc.Digest, err)
	}
	// Commit checks the size and the digest.
	if err := cw.Commit(ctx, desc.Size, desc.Digest); err != nil {
		return fmt.Errorf("fetch %s from its start: %w", desc.Digest, err)
	}
	return nil
}

// fetchAll fetches the missing blobs of descs concurrently and returns the
// bytes it fetched.
func (p *Puller) fetchAll(ctx context.Context, cs content.Store, f remotes.Fetcher, descs []ocispec.Descriptor) (int64, error) {
	var n atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for _, d := range descs {
		g.Go(func() error {
			fetched, err := p.fetch(gctx, cs, f, d)
			if err != nil {
				return fmt.Errorf("layer %s: %w", d.Digest, err)
			}
			if fetched {
				n.Add(d.Size)
			}
			return nil
		})
	}
	err := g.Wait()
	return n.Load(), err
}
