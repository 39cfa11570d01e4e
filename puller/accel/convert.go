package accel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/remotes/docker"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Mode is how an image is accelerated.
type Mode string

const (
	// ModeFull writes an eStargz copy of the image.
	ModeFull Mode = "full"
	// ModeIndexOnly writes a gzindex artifact next to the untouched image.
	ModeIndexOnly Mode = "index-only"
)

// Check returns ErrInvalidMode for anything but the two modes.
func (m Mode) Check() error {
	switch m {
	case ModeFull, ModeIndexOnly:
		return nil
	}
	return fmt.Errorf("%w %q: want %q or %q", ErrInvalidMode, m, ModeFull, ModeIndexOnly)
}

const (
	// TagSuffix names the accelerated image of <tag>: <tag>_accelerated.
	TagSuffix = "_accelerated"

	// AnnotationSource, on an accelerated manifest, is the digest of the
	// source manifest it was made from.
	AnnotationSource = "dev.fcd.accelerated.source"
	// AnnotationMode, on an accelerated manifest, is its Mode.
	AnnotationMode = "dev.fcd.accelerated.mode"
	// AnnotationStartupFiles, on a full-mode accelerated manifest, is the
	// number of files of the source's start-up record put first in its
	// layers (before the prefetch landmark); absent when it was converted
	// without a record.
	AnnotationStartupFiles = "dev.fcd.accelerated.startup-files"
	// AnnotationLayer, on a layer of an index-only artifact, is the digest
	// of the source layer the index serves.
	AnnotationLayer = "dev.fcd.gzindex.layer"
	// AnnotationLayerUncompressed, on a layer of an index-only artifact,
	// is the source layer's uncompressed (tar) size.
	AnnotationLayerUncompressed = "dev.fcd.gzindex.uncompressed-size"
	// AnnotationIndexHead, on a layer of an index-only artifact whose
	// index is format version 3, is "<size>@<digest>": the length of the
	// index's head (gzindex.HeadSize) and the sha256 of those first bytes,
	// so that a reader fetches the head alone, by range, verified against
	// the manifest, and each window later (gzindex.LoadHead). Absent on
	// older indexes, which are read whole.
	AnnotationIndexHead = "dev.fcd.gzindex.head"

	// ArtifactTypeGzindex is the artifactType of index-only artifacts.
	ArtifactTypeGzindex = "application/vnd.fcd.gzindex.v1+json"
	// MediaTypeGzindex is the media type of one serialized gzindex
	// (gzindex.Index.MarshalBinary; the format version is inside it).
	MediaTypeGzindex = "application/vnd.fcd.gzindex.v1"
)

// AcceleratedTag returns the tag of tag's accelerated image.
func AcceleratedTag(tag string) string { return tag + TagSuffix }

// IsAcceleratedTag reports whether tag names an accelerated image.
func IsAcceleratedTag(tag string) bool { return strings.HasSuffix(tag, TagSuffix) }

// Credentials returns the user name and password for a registry host
// (host:port as in image references); empty strings mean anonymous. It has
// the shape of puller.PrepareOptions.Credentials and
// registry.CredentialsFunc.
type Credentials func(host string) (user, secret string, err error)

// Options configures a Converter. The zero value of each field is its
// default.
type Options struct {
	// Credentials authenticates to registries. Nil means anonymous.
	Credentials Credentials
	// Transport carries registry requests, token requests and redirects
	// included. Nil means http.DefaultTransport. fcd passes a
	// puller.RegistryTransport, whose connections puller.AddressPolicy
	// checks (its refusals, errdefs PermissionDenied, fail a conversion
	// or an on-demand resolution for good) and which reaches each
	// registry as -registry-hosts-dir says.
	Transport http.RoundTripper
	// PlainHTTP reports whether a registry host (host:port as in image
	// references) may be spoken to in plain HTTP; registry requests in
	// plain HTTP to any other fail with ErrPlainHTTP, or with its error
	// when it returns one. fcd passes puller.RegistryTransport.PlainHTTP.
	// Nil means registries on loopback (docker.MatchLocalhost).
	PlainHTTP func(host string) (bool, error)
	// Parallelism bounds the layers converted at once. Zero means
	// runtime.GOMAXPROCS(0).
	Parallelism int
	// CompressionLevel is the gzip level of full-mode layers
	// (klauspost/compress levels, 1-9). Zero means 1, the fastest.
	CompressionLevel int
	// TempDir holds full mode's intermediate files (about the layer's
	// uncompressed size plus twice its compressed size, per layer in
	// flight; with MaxUncompressedSize, at most about twice that per
	// conversion). Empty means os.TempDir(). A conversion removes its
	// files when it ends, whether it succeeds, fails or is cancelled.
	TempDir string
	// MaxUncompressedSize bounds the bytes a source image's layers unpack
	// to, all together: a conversion reading past it fails with
	// ErrTooLarge, which bounds its temporary files and its time on a
	// decompression bomb. Index-only conversions learn a layer's size as
	// they finish it. Zero means DefaultMaxUncompressedSize; negative,
	// no limit.
	MaxUncompressedSize int64
	// MaxEntries bounds the tar entries of a source image's layers, all
	// together, as MaxUncompressedSize bounds their bytes: a conversion
	// keeps a table of contents entry in memory for each (see
	// DefaultMaxEntries). Index-only conversions count a layer's entries
	// as they finish it. Zero means DefaultMaxEntries; negative, no
	// limit.
	MaxEntries int64
	// MaxHeaderBytes bounds the bytes of the entries' names, link targets
	// and PAX records (extended attributes among them), all together and
	// counted as MaxEntries is: a conversion keeps them in memory. Zero
	// means DefaultMaxHeaderBytes; negative, no limit.
	MaxHeaderBytes int64
	// Logger receives a record per conversion. Nil means silent.
	Logger *slog.Logger
	// Records, when set, supplies the files an image read at start-up
	// (puller/lazy keeps them): a full-mode conversion puts them first,
	// before the prefetch landmark, ahead of Request.Prefetch. Nil: only
	// Request.Prefetch is prioritized.
	Records StartupRecords
}

// StartupRecords returns the files an image read at start-up, as absolute
// paths in the order first read, by the image's manifest digest; nil when
// none were recorded.
type StartupRecords interface {
	StartupFiles(ctx context.Context, source string) ([]string, error)
}

// Converter converts images. It is safe for concurrent use.
type Converter struct {
	opts Options
	log  *slog.Logger

	mu sync.Mutex
	// lookups are Resolve's pullers, by registry and the credentials they
	// authenticate with (see lookupPuller).
	lookups map[lookupKey]*remote.Puller
}

// platform is the one platform fcd runs images of.
var platform = v1.Platform{OS: "linux", Architecture: "amd64"}

// lookupKey names a look-up puller: a registry, and a digest of the
// credentials it holds, so that new credentials get a new one.
type lookupKey struct {
	registry string
	creds    [sha256.Size]byte
}

// NewConverter returns a Converter for opts.
func NewConverter(opts Options) *Converter {
	if opts.Parallelism <= 0 {
		opts.Parallelism = runtime.GOMAXPROCS(0)
	}
	if opts.CompressionLevel == 0 {
		opts.CompressionLevel = 1
	}
	if opts.TempDir == "" {
		opts.TempDir = os.TempDir()
	}
	if opts.MaxUncompressedSize == 0 {
		opts.MaxUncompressedSize = DefaultMaxUncompressedSize
	}
	if opts.MaxEntries == 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.MaxHeaderBytes == 0 {
		opts.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Converter{opts: opts, log: log, lookups: make(map[lookupKey]*remote.Puller)}
}

// Request is one conversion.
type Request struct {
	// Ref is the source image, a tag: registry/repository:tag.
	Ref string
	// Digest, when set, pins the source manifest ("sha256:..."): that
	// manifest in Ref's repository is converted, whatever the tag points
	// at now, and the result is still tagged <tag>_accelerated.
	Digest string
	// Mode is ModeFull or ModeIndexOnly.
	Mode Mode
	// Prefetch lists absolute paths, one per entry; a trailing "/" means
	// the directory and everything under it. Full mode puts them first in
	// each layer holding them, in this order. Ignored by index-only mode.
	Prefetch []string
	// Progress, when set, is called as the conversion advances, at most a
	// few times a second and once after each layer, never concurrently.
	Progress func(Progress)
	// KeepIndexes, when set, keeps index-only indexes that the registry
	// refuses to take (fcd may not push there) instead of failing.
	KeepIndexes KeepIndexes
}

// KeepIndexes stores the indexes of the source manifest with digest
// source, by layer digest.
type KeepIndexes func(ctx context.Context, source string, indexes map[string][]byte) error

// Progress is a conversion's advance. Bytes count the source layers'
// compressed bytes read.
type Progress struct {
	LayersDone int   `json:"layersDone"`
	Layers     int   `json:"layers"`
	BytesDone  int64 `json:"bytesDone"`
	Bytes      int64 `json:"bytes"`
	// BytesPerSecond is the mean rate since the conversion started.
	BytesPerSecond float64 `json:"bytesPerSecond"`
	// ETA is the estimated time left at that rate; zero when unknown.
	ETA time.Duration `json:"eta"`
}

// Result describes an accelerated image.
type Result struct {
	// Source is the source manifest, digest-pinned: repo@sha256:...
	Source string `json:"source"`
	// SourceDigest is the source manifest's digest.
	SourceDigest string `json:"sourceDigest"`
	// Target is the accelerated image's tag, TargetDigest its manifest's
	// digest.
	Target       string `json:"target"`
	TargetDigest string `json:"targetDigest"`
	Mode         Mode   `json:"mode"`
	// SourceSize and TargetSize are the compressed layer bytes of the
	// source and of the accelerated image (index-only: the indexes).
	SourceSize int64 `json:"sourceSize"`
	TargetSize int64 `json:"targetSize"`
	// UncompressedSize is the sum of the source layers' tar sizes, when the
	// conversion read them (zero for a Result from Lookup).
	UncompressedSize int64 `json:"uncompressedSize,omitempty"`
	// Reused is true when a current accelerated image already existed and
	// nothing was converted.
	Reused bool `json:"reused,omitempty"`
	// Local is true for index-only indexes the registry refused and
	// Request.KeepIndexes kept; Target and TargetDigest are then empty.
	Local bool `json:"local,omitempty"`
	// StartupFiles is the number of files of the source's start-up record
	// a full-mode image puts first; zero when none was recorded at its
	// conversion.
	StartupFiles int `json:"startupFiles,omitempty"`
}

// source is a resolved source image.
type source struct {
	tag    name.Tag
	img    v1.Image
	digest v1.Hash
	desc   v1.Descriptor
	layers []v1.Layer
	size   int64
}

// ParseTag parses ref as a tag that can be accelerated.
func ParseTag(ref string) (name.Tag, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return name.Tag{}, fmt.Errorf("%w: %s: %v", ErrInvalidRef, ref, err)
	}
	tag, ok := r.(name.Tag)
	if !ok {
		return name.Tag{}, fmt.Errorf("%w: %s is a digest; name a tag, whose <tag>%s is written", ErrInvalidRef, ref, TagSuffix)
	}
	if IsAcceleratedTag(tag.TagStr()) {
		return name.Tag{}, fmt.Errorf("%w: %s is already an accelerated image", ErrInvalidRef, ref)
	}
	return tag, nil
}

// Convert makes req.Ref's accelerated image, or finds a current one
// (Result.Reused), and returns it.
func (c *Converter) Convert(ctx context.Context, req Request) (res Result, err error) {
	if err := req.Mode.Check(); err != nil {
		return res, err
	}
	tag, err := ParseTag(req.Ref)
	if err != nil {
		return res, err
	}
	src, err := c.resolve(ctx, tag, req.Digest)
	if err != nil {
		return res, err
	}
	var record []string
	if req.Mode == ModeFull {
		record = c.startupFiles(ctx, src)
	}
	if prev, ok, err := c.lookup(ctx, src, req.Mode); err != nil {
		return res, err
	} else if ok && (len(record) == 0 || prev.StartupFiles > 0) {
		// A full-mode image converted before its source had a start-up
		// record is not current once it has one: converting again bakes
		// the record into its prefetch order.
		return prev, nil
	}
	start := time.Now()
	prog := newTracker(len(src.layers), src.size, req.Progress)
	switch req.Mode {
	case ModeFull:
		res, err = c.convertFull(ctx, src, record, req.Prefetch, prog)
	case ModeIndexOnly:
		res, err = c.convertIndex(ctx, src, prog, req.KeepIndexes)
	}
	if err != nil {
		return res, fmt.Errorf("accelerate %s (%s): %w", req.Ref, req.Mode, err)
	}
	c.log.Info("image accelerated", "source", res.Source, "target", res.Target, "mode", res.Mode,
		"sourceSize", res.SourceSize, "targetSize", res.TargetSize, "uncompressed", res.UncompressedSize,
		"duration", time.Since(start))
	return res, nil
}

// Lookup returns ref's current accelerated image in mode, if there is one:
// <tag>_accelerated whose AnnotationSource is the digest ref resolves to
// now. ok is false when there is none or it is stale.
func (c *Converter) Lookup(ctx context.Context, ref string, mode Mode) (res Result, ok bool, err error) {
	if err := mode.Check(); err != nil {
		return res, false, err
	}
	tag, err := ParseTag(ref)
	if err != nil {
		return res, false, err
	}
	src, err := c.resolve(ctx, tag, "")
	if err != nil {
		return res, false, err
	}
	return c.lookup(ctx, src, mode)
}

// Resolve returns the digest of ref's linux/amd64 manifest. A cold start
// calls it for every image with acceleration, before its pull: it keeps
// what it learnt of each repository's registry (its scheme, its token),
// so that a look-up after the first costs one request, the manifest's.
func (c *Converter) Resolve(ctx context.Context, ref string) (string, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrInvalidRef, ref, err)
	}
	p, err := c.lookupPuller(r.Context().RegistryStr())
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", ref, err)
	}
	img, err := remote.Image(r, remote.Reuse(p), remote.WithContext(ctx), remote.WithPlatform(platform))
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", ref, mapRemoteError(err))
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// lookupPuller returns the puller Resolve reads registry's manifests
// with: go-containerregistry's, which pings a repository's registry and
// gets its token once, then refreshes the token when it expires. It is
// kept for as long as the registry's credentials stay the same; new ones
// get a new puller.
func (c *Converter) lookupPuller(registry string) (*remote.Puller, error) {
	var user, secret string
	if c.opts.Credentials != nil {
		var err error
		if user, secret, err = c.opts.Credentials(registry); err != nil {
			return nil, err
		}
	}
	k := lookupKey{registry: registry, creds: sha256.Sum256([]byte(user + "\x00" + secret))}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.lookups[k]; p != nil {
		return p, nil
	}
	for old := range c.lookups {
		if old.registry == registry {
			delete(c.lookups, old)
		}
	}
	auth := authn.Anonymous
	if user != "" || secret != "" {
		auth = authn.FromConfig(authn.AuthConfig{Username: user, Password: secret})
	}
	p, err := remote.NewPuller(remote.WithAuth(auth), remote.WithTransport(c.transport()),
		remote.WithPlatform(platform))
	if err != nil {
		return nil, err
	}
	c.lookups[k] = p
	return p, nil
}

func (c *Converter) lookup(ctx context.Context, src *source, mode Mode) (Result, bool, error) {
	target := src.tag.Context().Tag(AcceleratedTag(src.tag.TagStr()))
	desc, err := remote.Get(target, c.remoteOptions(ctx)...)
	if isNotFound(err) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, false, fmt.Errorf("look up %s: %w", target, mapRemoteError(err))
	}
	if !desc.MediaType.IsImage() {
		return Result{}, false, nil
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return Result{}, false, nil
	}
	if m.Annotations[AnnotationSource] != src.digest.String() || m.Annotations[AnnotationMode] != string(mode) {
		return Result{}, false, nil
	}
	if mode == ModeIndexOnly && (m.Subject == nil || m.Subject.Digest != src.digest || len(m.Layers) != len(src.layers)) {
		return Result{}, false, nil
	}
	if mode == ModeIndexOnly && slices.ContainsFunc(m.Layers, func(l v1.Descriptor) bool { return l.Annotations[AnnotationIndexHead] == "" }) {
		// Indexes before version 3 have no head: a cold start fetches
		// them whole before mounting. Lazy readers still read them, but
		// converting again makes the image start faster.
		return Result{}, false, nil
	}
	res := c.result(src, target, desc.Digest, mode)
	res.Reused = true
	res.StartupFiles, _ = strconv.Atoi(m.Annotations[AnnotationStartupFiles])
	for _, l := range m.Layers {
		res.TargetSize += l.Size
	}
	return res, true, nil
}

func (c *Converter) result(src *source, target name.Tag, d v1.Hash, mode Mode) Result {
	return Result{
		Source:       src.tag.Context().Digest(src.digest.String()).String(),
		SourceDigest: src.digest.String(),
		Target:       target.String(),
		TargetDigest: d.String(),
		Mode:         mode,
		SourceSize:   src.size,
	}
}

// resolve reads the source's linux/amd64 manifest, or the manifest with
// digest pin in tag's repository, and its layers' sizes.
func (c *Converter) resolve(ctx context.Context, tag name.Tag, pin string) (*source, error) {
	var ref name.Reference = tag
	if pin != "" {
		if _, err := v1.NewHash(pin); err != nil {
			return nil, fmt.Errorf("%w: digest %q: %v", ErrInvalidRef, pin, err)
		}
		ref = tag.Context().Digest(pin)
	}
	img, err := remote.Image(ref, c.remoteOptions(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", tag, mapRemoteError(err))
	}
	src := &source{tag: tag, img: img}
	if src.digest, err = img.Digest(); err != nil {
		return nil, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	size, err := img.Size()
	if err != nil {
		return nil, err
	}
	src.desc = v1.Descriptor{MediaType: mt, Digest: src.digest, Size: size}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("read %s manifest: %w", tag, mapRemoteError(err))
	}
	for i, l := range m.Layers {
		// go-containerregistry would fetch a layer missing from the
		// registry from its URLs (Docker's foreign layers): requests to
		// a server the image's creator chose, from the host's network.
		if len(l.URLs) > 0 {
			return nil, fmt.Errorf("%w: layer %d (%s) names URLs outside the registry to fetch it from; only layers in the image's registry are converted", ErrUnsupported, i, l.Digest)
		}
	}
	if src.layers, err = img.Layers(); err != nil {
		return nil, fmt.Errorf("read %s layers: %w", tag, mapRemoteError(err))
	}
	for _, l := range src.layers {
		n, err := l.Size()
		if err != nil {
			return nil, err
		}
		src.size += n
	}
	return src, nil
}

func (c *Converter) remoteOptions(ctx context.Context) []remote.Option {
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(keychain{c.opts.Credentials}),
		remote.WithPlatform(platform),
		remote.WithJobs(c.opts.Parallelism),
	}
	return append(opts, remote.WithTransport(c.transport()))
}

// transport returns what carries the converter's registry requests.
func (c *Converter) transport() http.RoundTripper {
	rt := c.opts.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	plain := c.opts.PlainHTTP
	if plain == nil {
		plain = docker.MatchLocalhost
	}
	return httpsUnlessAllowed{rt: rt, plain: plain}
}

// httpsUnlessAllowed refuses, with ErrPlainHTTP, registry API requests
// (paths under /v2/) in plain HTTP to a host plain does not allow.
//
// References are parsed with name.Insecure, so that registries on
// loopback, the embedded one among them, and those a hosts directory
// serves over plain HTTP are spoken to in plain HTTP; but
// go-containerregistry then tries plain HTTP for any registry whose
// HTTPS ping fails (or is slow), and a network attacker who made it fail
// would get the conversion's credentials and pushes in the clear. The
// pullers speak plain HTTP only to loopback registries, or where a hosts
// directory says so; so does the converter. Token servers and redirects
// are the registry's choice, over HTTPS, and are left alone, as the
// pullers leave them.
type httpsUnlessAllowed struct {
	rt    http.RoundTripper
	plain func(host string) (bool, error)
}

func (t httpsUnlessAllowed) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && strings.HasPrefix(req.URL.Path, "/v2/") {
		ok, err := t.plain(req.URL.Host)
		if err == nil && !ok {
			err = fmt.Errorf("registry %s: %w", req.URL.Host, ErrPlainHTTP)
		}
		if err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
	}
	return t.rt.RoundTrip(req)
}

// keychain adapts Credentials to go-containerregistry.
type keychain struct{ creds Credentials }

func (k keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if k.creds == nil {
		return authn.Anonymous, nil
	}
	user, secret, err := k.creds(r.RegistryStr())
	if err != nil {
		return nil, err
	}
	if user == "" && secret == "" {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: user, Password: secret}), nil
}

func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

// mapRemoteError gives registry errors an errdefs category.
func mapRemoteError(err error) error {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return err
	}
	switch terr.StatusCode {
	case http.StatusNotFound:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: %w", ErrDenied, err)
	}
	return err
}

// tracker turns byte counts into Progress callbacks, throttled.
type tracker struct {
	mu    sync.Mutex
	fn    func(Progress)
	p     Progress
	start time.Time
	last  time.Time
}

// progressInterval is the least time between two byte-count reports.
const progressInterval = 250 * time.Millisecond

func newTracker(layers int, bytes int64, fn func(Progress)) *tracker {
	t := &tracker{fn: fn, p: Progress{Layers: layers, Bytes: bytes}, start: time.Now()}
	t.report(true)
	return t
}

// add counts n compressed source bytes read.
func (t *tracker) add(n int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.p.BytesDone += n
	t.report(false)
}

// layerDone counts one finished layer.
func (t *tracker) layerDone() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.p.LayersDone++
	t.report(true)
}

// report calls fn with t.mu held, so calls never overlap.
func (t *tracker) report(force bool) {
	if t.fn == nil {
		return
	}
	now := time.Now()
	if !force && now.Sub(t.last) < progressInterval {
		return
	}
	t.last = now
	if el := now.Sub(t.start).Seconds(); el > 0 && t.p.BytesDone > 0 {
		t.p.BytesPerSecond = float64(t.p.BytesDone) / el
		t.p.ETA = time.Duration(float64(t.p.Bytes-t.p.BytesDone) / t.p.BytesPerSecond * float64(time.Second))
	}
	t.fn(t.p)
}

// countingReader reports the bytes read through it to a tracker.
type countingReader struct {
	r interface{ Read([]byte) (int, error) }
	t *tracker
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.t.add(int64(n))
	}
	return n, err
}

// startupFiles returns the files of the source's start-up record, in the
// order first read; nil when there is none or it cannot be read (the
// conversion then goes on without).
func (c *Converter) startupFiles(ctx context.Context, src *source) []string {
	if c.opts.Records == nil {
		return nil
	}
	files, err := c.opts.Records.StartupFiles(ctx, src.digest.String())
	if err != nil {
		c.log.Warn("start-up record of the source; converting without", "source", src.digest.String(), "error", err)
		return nil
	}
	return files
}
