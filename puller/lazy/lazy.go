// Package lazy prepares images lazily: it implements image.Images with
// one read-only FUSE mount per layer (puller/lazyfs), whose bytes are
// fetched on demand through puller/remote, instead of pulling and
// unpacking every layer first.
//
// An image is lazy when its manifest's layers are eStargz (each carries
// the "containerd.io/snapshot/stargz/toc.digest" annotation: the full
// acceleration mode) or when the reference names an index-only artifact
// (artifactType application/vnd.fcd.gzindex.v1+json, subject = the
// original manifest, one gzindex per layer: the index-only mode). Any
// other image is refused with ErrNotLazy; the caller pulls it whole.
//
// It owns resolving the reference and reading the manifests, config and
// indexes (a version 3 index, named with its head by the
// dev.fcd.gzindex.head annotation, is read by its head alone when its
// layer is mounted, its windows by range later); layer mounts are shared host-wide by lazyfs.Manager, fetching
// and caching by remote.Fetcher.
//
// A layer mount is shared by every image that has the layer, so the
// credentials of the call that mounted it first fetch its bytes for all
// later users too, for as long as it stays mounted (a layer's digest
// names its content, so the bytes are the same; only the authority to
// read them is borrowed).
//
// Start-up records (Options.Records, kept in fcd's bbolt file under
// lazy/v1, see records.go): the first lazy start of an image records the
// reads its layers serve, in order, from the mount until Ready plus
// Options.RecordSettle (cut short when fcd stops: Close), by the digest of
// the manifest mounted. A later start of that image, in this process or
// after a restart with nothing cached but fcd.db, replays the record as
// its prefetch as soon as its layers are mounted, before the container
// exists: every recorded range, in order, many at once at Prefetch
// priority, so reads the instance makes meanwhile go first. Layers are
// shared, so a record also holds what other images read from a shared
// layer meanwhile.
//
// Metering: the pull ends at Ready; its bytes are those fetched through
// the blobs this call opened (a layer already mounted by another image
// counts there). Not done yet: choosing between the original and its
// "_accelerated" tag (the caller names the reference) and falling back
// to a full pull on ErrNotLazy (the caller's choice too).
package lazy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/reference"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	remoteerrors "github.com/containerd/containerd/remotes/errors"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/fcd-dev/fcd/billing"
	"github.com/fcd-dev/fcd/instance/image"
	"github.com/fcd-dev/fcd/puller"
	"github.com/fcd-dev/fcd/puller/lazyfs"
	"github.com/fcd-dev/fcd/puller/remote"
)

// The index-only artifact's conventions; they must equal puller/accel's
// ArtifactTypeGzindex, AnnotationLayer and AnnotationIndexHead.
const (
	artifactTypeGzindex = "application/vnd.fcd.gzindex.v1+json"
	annotationLayer     = "dev.fcd.gzindex.layer"
	annotationIndexHead = "dev.fcd.gzindex.head"
	annotationSource    = "dev.fcd.accelerated.source"
)

// maxManifestSize bounds manifests, configs and indexes read into memory.
const maxManifestSize = 64 << 20

// ErrNotLazy is returned by Prepare for an image whose layers can only be
// pulled whole (neither eStargz nor index-only). It wraps
// errdefs.ErrNotImplemented.
var ErrNotLazy = fmt.Errorf("lazy: image cannot be mounted lazily: %w", errdefs.ErrNotImplemented)

// Options configures New.
type Options struct {
	// Fetcher reads layer bytes from registries. Required.
	Fetcher *remote.Fetcher
	// Layers shares layer mounts host-wide. Required.
	Layers *lazyfs.Manager
	// Chunks keeps eStargz chunks host-wide (lazyfs.EStargzOptions).
	// Nil: none.
	Chunks lazyfs.ChunkStore
	// Meter receives one record per pull, at Ready. Nil: not metered.
	Meter puller.Meter
	// Hosts configures the registries for a call's credentials. Nil means
	// containerd's defaults: HTTPS, plain HTTP for localhost, the docker
	// token authorizer fed by the credentials.
	Hosts func(creds remote.Credentials) docker.RegistryHosts
	// MetadataBytes bounds the memory that keeps manifests, configs and
	// layer indexes read by Prepare, so that concurrent and later calls
	// for one image share one fetch of each. Zero means
	// DefaultMetadataBytes; negative keeps none (concurrent calls still
	// share their fetches).
	MetadataBytes int64
	// Records keeps start-up records: the first lazy start of an image
	// records what it reads until Ready plus RecordSettle, and later cold
	// starts prefetch exactly that, in order. Nil: no recording.
	Records *Records
	// Recorded, when set, is called with each record saved, e.g. to bake
	// it into the image's accelerated form (puller/accel Service.Rebake).
	Recorded func(Record)
	// RecordSettle is how long a recording goes on after Ready. Zero means
	// DefaultRecordSettle; negative, none.
	RecordSettle time.Duration
	// Logger receives start-up recording and replay logs. Nil: silent.
	Logger *slog.Logger
}

// Images implements image.Images lazily. It is safe for concurrent use.
type Images struct {
	opts Options
	meta *metadata
	log  *slog.Logger

	mu        sync.Mutex
	recording map[digest.Digest]*startupRecorder // images whose start-up is being recorded
}

var _ image.Images = (*Images)(nil)

// New returns Images.
func New(opts Options) (*Images, error) {
	if opts.Fetcher == nil || opts.Layers == nil {
		return nil, errors.New("lazy: Options.Fetcher and Options.Layers are required")
	}
	if opts.Hosts == nil {
		opts.Hosts = defaultHosts
	}
	if opts.MetadataBytes == 0 {
		opts.MetadataBytes = DefaultMetadataBytes
	}
	if opts.RecordSettle == 0 {
		opts.RecordSettle = DefaultRecordSettle
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Images{opts: opts, meta: newMetadata(max(opts.MetadataBytes, 0)), log: log, recording: make(map[digest.Digest]*startupRecorder)}, nil
}

func defaultHosts(creds remote.Credentials) docker.RegistryHosts {
	var authOpts []docker.AuthorizerOpt
	if creds != nil {
		authOpts = append(authOpts, docker.WithAuthCreds(creds))
	}
	return docker.ConfigureDefaultRegistries(
		docker.WithPlainHTTP(docker.MatchLocalhost),
		docker.WithAuthorizer(docker.NewDockerAuthorizer(authOpts...)),
	)
}

// Prepare resolves ref, reads its manifest (and, for an index-only
// artifact, the original manifest and the layer indexes), mounts every
// layer through the shared manager and returns the mounts as LowerDirs.
// Layer bytes are fetched as the instance reads them; the pull is metered
// until Ready.
func (i *Images) Prepare(ctx context.Context, ref string, opts image.Options) (_ image.Image, err error) {
	start := time.Now()
	name, err := puller.Normalize(ref)
	if err != nil {
		return nil, err
	}
	tm := newTiming(start)
	var creds remote.Credentials
	if opts.Credentials != nil {
		creds = remote.Credentials(image.TimeCredentials(opts.Credentials, &tm.auth))
	}
	hosts := i.opts.Hosts(creds)
	defer func() {
		if err != nil && unauthorized(err) && !errors.Is(err, puller.ErrUnauthorized) {
			err = fmt.Errorf("%w: the registry refused the function's credentials (role %s): %w", puller.ErrUnauthorized, opts.Role, err)
		}
	}()
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: hosts})
	t := time.Now()
	rname, desc, err := resolver.Resolve(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", name, err)
	}
	rf, err := resolver.Fetcher(ctx, rname)
	if err != nil {
		return nil, err
	}
	f, err := i.shared(rname, puller.RegistryOnly(rf))
	if err != nil {
		return nil, err
	}
	mdesc, m, err := manifest(ctx, f, name, desc)
	if err != nil {
		return nil, err
	}
	tm.resolve = image.SpanOf(start, t, time.Now())
	var indexes map[digest.Digest]layerIndex
	source := mdesc.Digest
	if s, err := digest.Parse(m.Annotations[annotationSource]); err == nil {
		source = s
	}
	if m.ArtifactType == artifactTypeGzindex {
		t := time.Now()
		if indexes, err = readIndexes(ctx, f, m); err != nil {
			return nil, fmt.Errorf("index-only artifact %s: %w", name, err)
		}
		tm.index.Add(t, time.Now())
		if m.Subject == nil {
			return nil, fmt.Errorf("index-only artifact %s has no subject: %w", name, ErrNotLazy)
		}
		mdesc = *m.Subject
		source = mdesc.Digest
		if err := readJSON(ctx, f, mdesc, &m); err != nil {
			return nil, fmt.Errorf("manifest of %s: %w", name, err)
		}
	}
	var config ocispec.Image
	if err := readJSON(ctx, f, m.Config, &config); err != nil {
		return nil, fmt.Errorf("config of %s: %w", name, err)
	}
	if p := platforms.Normalize(config.Platform); p.OS != puller.Platform.OS || p.Architecture != puller.Platform.Architecture {
		return nil, fmt.Errorf("image %s is %s/%s: %w", name, config.OS, config.Architecture, puller.ErrPlatform)
	}
	// The layers come from the registry (package remote), never from
	// URLs; an image that names some is refused as the full pull refuses
	// it.
	for _, l := range m.Layers {
		if err := puller.CheckURLs(l); err != nil {
			return nil, fmt.Errorf("image %s: %w", name, err)
		}
	}
	v := &view{i: i, ref: ref, opts: opts, start: start, timing: tm, digest: mdesc.Digest, source: source, config: config.Config}
	defer func() {
		if err != nil {
			v.Release(context.WithoutCancel(ctx))
		}
	}()
	if err := v.acquireAll(ctx, rname, m.Layers, hosts, creds, indexes); err != nil {
		return nil, fmt.Errorf("image %s: %w", name, err)
	}
	v.startup()
	return v, nil
}

// blobReader reads a small blob whole and verified.
type blobReader func(ctx context.Context, desc ocispec.Descriptor) ([]byte, error)

// shared returns the blobReader of repository name (a resolved
// reference) that reads through f and shares its reads with every other
// Prepare call (Images.meta).
func (i *Images) shared(name string, f remotes.Fetcher) (blobReader, error) {
	spec, err := reference.Parse(name)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
		return i.meta.read(ctx, spec.Locator, desc.Digest, func(ctx context.Context) ([]byte, error) {
			return readBlob(ctx, f, desc)
		})
	}, nil
}

// manifest returns the linux/amd64 manifest desc names (desc itself, or
// its entry in an index).
func manifest(ctx context.Context, f blobReader, name string, desc ocispec.Descriptor) (ocispec.Descriptor, ocispec.Manifest, error) {
	var m ocispec.Manifest
	if images.IsIndexType(desc.MediaType) {
		var idx ocispec.Index
		if err := readJSON(ctx, f, desc, &idx); err != nil {
			return desc, m, fmt.Errorf("index of %s: %w", name, err)
		}
		match := platforms.OnlyStrict(puller.Platform)
		i := slices.IndexFunc(idx.Manifests, func(d ocispec.Descriptor) bool { return d.Platform != nil && match.Match(*d.Platform) })
		if i < 0 {
			return desc, m, fmt.Errorf("image %s: %w", name, puller.ErrPlatform)
		}
		desc = idx.Manifests[i]
	}
	if !images.IsManifestType(desc.MediaType) {
		return desc, m, fmt.Errorf("image %s: unsupported media type %s", name, desc.MediaType)
	}
	if err := readJSON(ctx, f, desc, &m); err != nil {
		return desc, m, fmt.Errorf("manifest of %s: %w", name, err)
	}
	return desc, m, nil
}

// mountKey names the shared mount (lazyfs.Manager) of layer d served
// with index: d itself for a layer whose blob holds its own table of
// contents (eStargz; no index), d and the index's digest together for an
// index-only one. An index-only layer's file table (names, modes, link
// targets, where each file's bytes are) comes from its index, which only
// the artifact names; chunk digests check the bytes, not which file they
// are. Another artifact, another image creator's, may name another index
// for the same layer, and must not decide what the instances of images
// mounting it under this index see.
func mountKey(d digest.Digest, index layerIndex) digest.Digest {
	if index.desc.Digest == "" {
		return d
	}
	return digest.FromString(d.String() + " " + index.desc.Digest.String())
}

// layerIndex is the index of one layer from an index-only artifact, the
// blob desc: read whole (data), or, for a version 3 index
// (AnnotationIndexHead), the length and digest of its head, which the
// layer's mount reads by range, the windows following as reads need them.
type layerIndex struct {
	data       []byte
	desc       ocispec.Descriptor
	headSize   int64
	headDigest digest.Digest
}

// readIndexes reads an index-only artifact's layer indexes, by the digest
// of the layer each serves: those with a head are left to the layers'
// mounts, each of the others fetched whole, all at once.
func readIndexes(ctx context.Context, f blobReader, m ocispec.Manifest) (map[digest.Digest]layerIndex, error) {
	out := make([]layerIndex, len(m.Layers))
	layers := make([]digest.Digest, len(m.Layers))
	g, gctx := errgroup.WithContext(ctx)
	for i, l := range m.Layers {
		d, err := digest.Parse(l.Annotations[annotationLayer])
		if err != nil {
			return nil, fmt.Errorf("index %s: annotation %s: %w", l.Digest, annotationLayer, err)
		}
		layers[i] = d
		if h, ok := l.Annotations[annotationIndexHead]; ok {
			if out[i], err = parseHead(l, h); err != nil {
				return nil, fmt.Errorf("index %s: annotation %s: %w", l.Digest, annotationIndexHead, err)
			}
			continue
		}
		out[i].desc = l
		g.Go(func() error {
			b, err := f(gctx, l)
			if err != nil {
				return fmt.Errorf("index %s: %w", l.Digest, err)
			}
			out[i].data = b
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	byLayer := make(map[digest.Digest]layerIndex, len(out))
	for i, d := range layers {
		byLayer[d] = out[i]
	}
	return byLayer, nil
}

// parseHead reads annotationIndexHead's "<size>@<digest>" on index l.
func parseHead(l ocispec.Descriptor, v string) (layerIndex, error) {
	size, dg, ok := strings.Cut(v, "@")
	n, err := strconv.ParseInt(size, 10, 64)
	if !ok || err != nil || n <= 0 || n > l.Size || n > maxManifestSize {
		return layerIndex{}, fmt.Errorf("bad head size in %q", v)
	}
	d, err := digest.Parse(dg)
	if err != nil || d.Algorithm() != digest.SHA256 {
		return layerIndex{}, fmt.Errorf("bad head digest in %q", v)
	}
	return layerIndex{desc: l, headSize: n, headDigest: d}, nil
}

// readBlob reads a small blob whole and checks its digest.
func readBlob(ctx context.Context, f remotes.Fetcher, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > maxManifestSize {
		return nil, fmt.Errorf("%s is %d bytes, over %d", desc.Digest, desc.Size, maxManifestSize)
	}
	rc, err := f.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, desc.Size+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != desc.Size || digest.FromBytes(b) != desc.Digest {
		return nil, fmt.Errorf("%s: fetched content does not match its descriptor: %w", desc.Digest, errdefs.ErrDataLoss)
	}
	return b, nil
}

func readJSON(ctx context.Context, f blobReader, desc ocispec.Descriptor, v any) error {
	b, err := f(ctx, desc)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// unauthorized tells whether err is a registry's refusal of credentials.
func unauthorized(err error) bool {
	if errors.Is(err, docker.ErrInvalidAuthorization) || errors.Is(err, remote.ErrUnauthorized) {
		return true
	}
	var us remoteerrors.ErrUnexpectedStatus
	if errors.As(err, &us) {
		return us.StatusCode == http.StatusUnauthorized || us.StatusCode == http.StatusForbidden
	}
	return false
}

// view is one prepared use of a lazy image.
type view struct {
	i      *Images
	ref    string
	opts   image.Options
	start  time.Time
	timing *timing
	digest digest.Digest
	source digest.Digest // the image digest was converted from, or digest
	config ocispec.ImageConfig

	// Start-up recording or replay (startup.go), set by Prepare.
	rec        *startupRecorder
	stopReplay context.CancelFunc
	replayDone chan struct{}

	mu       sync.Mutex
	layers   []digest.Digest // acquired, bottom first
	keys     []digest.Digest // their mounts' (mountKey), bottom first
	mounted  []*lazyfs.Layer // acquired, bottom first
	lower    []string        // top first
	blobs    []*remote.Blob
	ready    bool
	end      time.Time
	released bool
}

var _ image.Image = (*view)(nil)

// acquireAll mounts (or shares) the layers, all at once: an eStargz
// layer's TOC costs round trips of its own, and the start-up prefetch
// begins only once every layer is known. The layers acquired are kept,
// bottom first, for Release, also when another failed.
func (v *view) acquireAll(ctx context.Context, name string, ls []ocispec.Descriptor, hosts docker.RegistryHosts, creds remote.Credentials, indexes map[digest.Digest]layerIndex) error {
	layers := make([]*lazyfs.Layer, len(ls))
	blobs := make([]*remote.Blob, len(ls))
	keys := make([]digest.Digest, len(ls))
	g, gctx := errgroup.WithContext(ctx)
	for i, l := range ls {
		keys[i] = mountKey(l.Digest, indexes[l.Digest])
		g.Go(func() (err error) {
			layers[i], blobs[i], err = v.acquire(gctx, name, l, keys[i], hosts, creds, indexes[l.Digest])
			return err
		})
	}
	err := g.Wait()
	v.mu.Lock()
	defer v.mu.Unlock()
	for i, l := range ls {
		if layers[i] == nil {
			continue
		}
		v.layers = append(v.layers, l.Digest)
		v.keys = append(v.keys, keys[i])
		v.mounted = append(v.mounted, layers[i])
		v.lower = append([]string{layers[i].Dir()}, v.lower...)
		v.blobs = append(v.blobs, blobs[i])
	}
	return err
}

// acquire mounts (or shares) layer l as key (mountKey). The Source is
// opened only by the first image that mounts it; its blob, and so its
// credentials, serve the layer for every later user.
func (v *view) acquire(ctx context.Context, name string, l ocispec.Descriptor, key digest.Digest, hosts docker.RegistryHosts, creds remote.Credentials, index layerIndex) (*lazyfs.Layer, *remote.Blob, error) {
	blob, err := v.i.opts.Fetcher.Blob(name, l, hosts, creds)
	if err != nil {
		return nil, nil, err
	}
	mounting := time.Now()
	defer func() { v.timing.mount.Add(mounting, time.Now()) }()
	layer, err := v.i.opts.Layers.Acquire(ctx, key, func(ctx context.Context) (lazyfs.Source, error) {
		t := time.Now()
		lo := lazyfs.LayerOptions{Index: index.data, Chunks: v.i.opts.Chunks}
		if index.headSize > 0 {
			ib, err := v.i.opts.Fetcher.Blob(name, index.desc, hosts, creds)
			if err != nil {
				return nil, err
			}
			if lo.Index, err = ib.ReadChunk(ctx, 0, index.headSize, index.headDigest, remote.OnDemand); err != nil {
				return nil, fmt.Errorf("index %s: %w", index.desc.Digest, err)
			}
			lo.IndexBlob = ib
		}
		src, err := lazyfs.OpenLayer(ctx, l, blob, lo)
		mounting = time.Now()
		v.timing.index.Add(t, mounting)
		if errors.Is(err, lazyfs.ErrUnsupported) {
			err = fmt.Errorf("%w: %w", ErrNotLazy, err)
		}
		return src, err
	})
	if err != nil {
		return nil, nil, err
	}
	return layer, blob, nil
}

func (v *view) Digest() digest.Digest       { return v.digest }
func (v *view) Config() ocispec.ImageConfig { return v.config }
func (v *view) LowerDirs() []string         { return slices.Clone(v.lower) }

// Stats counts the bytes this image's own blobs fetched; a layer another
// image mounted first is read through that image's blob and counts
// there.
func (v *view) Stats() image.Stats {
	v.mu.Lock()
	defer v.mu.Unlock()
	var n int64
	for _, b := range v.blobs {
		n += b.Stats().NetworkBytes
	}
	end := v.end
	if end.IsZero() {
		end = time.Now()
	}
	st := image.Stats{Cached: n == 0, BytesFetched: n, Duration: end.Sub(v.start)}
	v.timing.fill(v.start, &st)
	return st
}

// backgroundDelay is how long after Ready the background fetch of an
// image's layers begins: long enough for the request that waited for the
// start to be answered without it competing for the CPU, short enough
// that the run phase soon reads local bytes.
const backgroundDelay = time.Second

// Ready ends the lazy pull: the instance's start-up reads are done.
func (v *view) Ready(ctx context.Context) error {
	st := v.Stats()
	v.mu.Lock()
	if v.ready {
		v.mu.Unlock()
		return nil
	}
	v.ready, v.end = true, v.start.Add(st.Duration)
	keys := append([]digest.Digest(nil), v.keys...)
	v.mu.Unlock()
	v.logLayerOps()
	// The background fetch (and making the small files held in memory
	// local, thousands of file creations) waits a moment, so it does not
	// compete for the CPU with the request that waited for this start.
	time.AfterFunc(backgroundDelay, func() {
		for _, k := range keys {
			v.i.opts.Layers.StartBackground(k)
		}
	})
	if v.rec != nil {
		if settle := v.i.opts.RecordSettle; settle > 0 {
			v.rec.ready(settle)
		} else {
			v.rec.finish(true)
		}
	}
	if v.i.opts.Meter == nil {
		return nil
	}
	_, err := v.i.opts.Meter.MeterPull(ctx, billing.PullRecord{
		Function: v.opts.Function, Image: v.ref, InstanceID: v.opts.InstanceID, MemoryMB: v.opts.MemoryMB,
		Start: v.start, End: v.end, Bytes: st.BytesFetched, CacheHit: st.Cached,
	})
	if err != nil {
		return fmt.Errorf("meter pull of %s: %w", v.ref, err)
	}
	return nil
}

// Release drops this use's references to its layers; the manager
// unmounts a layer once nothing has used it for its idle time.
func (v *view) Release(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.released {
		return nil
	}
	v.released = true
	v.endStartup(v.ready)
	for _, k := range v.keys {
		v.i.opts.Layers.Release(k)
	}
	return nil
}
