// Package image is the contract between an instance and what prepares its
// image: package instance consumes an Images, package puller's full pull
// implements it today, a lazy pull (FUSE layers) will too, and
// package imagetest holds every implementation to it.
//
// It is a leaf package of its own, not part of package instance, only so
// that an implementation can name these types without importing instance
// (whose tests use the puller). Package instance re-exports them under the
// same names.
package image

import (
	"context"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Images prepares the read-only root filesystems instances run on.
// instance.Manager consumes it and never builds one: cmd/fcd passes the
// full puller (package puller) today, and a lazy puller (FUSE layers) is a
// second implementation held to the same contract by package imagetest.
//
// Vocabulary and lifecycle of one image use:
//
//	img, err := images.Prepare(ctx, ref, opts) // pull starts
//	... overlay img.LowerDirs() under a writable layer, start the container,
//	    probe it ...
//	img.Ready(ctx)   // the instance passed its probe: the pull ends
//	img.Release(ctx) // the instance is gone: its view of the image goes
//
// Prepare resolves ref (a reference as the function names it), checks the
// image (linux/amd64, size limits), makes its layers available and returns
// them as directories for an overlay mount. Concurrent Prepare calls of
// one image share one pull; each call gets its own Image and must release
// it. On error nothing created by the call is left behind, and the next
// call starts afresh: a failed or timed-out pull is not remembered. When
// the registry refuses opts.Credentials, the error wraps
// puller.ErrUnauthorized (category errdefs.ErrUnauthenticated). Prepare is
// bounded: a registry that stops answering fails it with an error naming
// the registry host, within the implementation's configured bounds or the
// deadline of ctx, whichever comes first.
//
// Metering. An implementation reports each pull to its meter (package
// puller's Meter) exactly once, when Ready is called; an Image released
// without Ready (a failed start) is not metered. What it reports:
//
//   - start: when Prepare began;
//   - end: for a full pull, when Prepare returned (everything is local);
//     for a lazy pull, when Ready is called, i.e. once the instance's
//     start-up reads are satisfied;
//   - bytes: the compressed bytes fetched from the registry for this
//     image until end;
//   - cache hit: nothing had to be fetched (every layer, or every chunk
//     the start-up read, was already on the host); the pull is then free.
type Images interface {
	Prepare(ctx context.Context, ref string, opts Options) (Image, error)
}

// Options are the per-call options of Images.Prepare.
type Options struct {
	// Key names this use of the image (its read-only view); it must be
	// unique among live Images. The instance ID is used. Required.
	Key string
	// Credentials returns the registry credentials for host. It is called
	// whenever a registry asks for them, so temporary credentials may
	// change between calls. Nil means anonymous access.
	Credentials func(host string) (user, secret string, err error)
	// Role names whose credentials Credentials returns (the function's
	// role), for the message of an authorization error; "" means none.
	Role string

	// Function, InstanceID and MemoryMB are what the pull is metered
	// against: the function's name, the instance the pull is for, and
	// the function's memory size.
	Function   string
	InstanceID string
	MemoryMB   int
}

// Image is one prepared use of an image. Its methods other than Ready and
// Release only read what Prepare established and are safe to call
// concurrently.
type Image interface {
	// Digest is the digest of the linux/amd64 manifest.
	Digest() digest.Digest
	// Config is the image's runtime configuration (entrypoint, cmd, env,
	// user, working dir, exposed ports).
	Config() ocispec.ImageConfig
	// LowerDirs are the read-only layer directories, top-most first, in
	// the order of an overlay mount's lowerdir option. For a lazy image
	// they are FUSE mountpoints.
	LowerDirs() []string
	// Stats describes the pull so far; for a full pull it is final when
	// Prepare returns, for a lazy pull when Ready returns.
	Stats() Stats
	// Ready tells the image that the instance passed its probe (and its
	// initializer, if any). A lazy
	// image ends its pull (and its metering) there. Only the first call
	// counts. The error says only that metering failed; the image is
	// usable regardless.
	Ready(ctx context.Context) error
	// Release ends this use of the image: the view goes, the image stays
	// on the host. It is idempotent.
	Release(ctx context.Context) error
}

// Stats describes what an image's Prepare did, for measurements.
type Stats struct {
	// Cached is true when nothing but the manifest was read from the
	// registry: the image was already on the host.
	Cached bool
	// BytesFetched is the number of compressed bytes downloaded.
	BytesFetched int64
	// UnpackedBytes is the number of uncompressed bytes written while
	// unpacking layers that were not unpacked before.
	UnpackedBytes int64
	// Duration is from the start of Prepare to the end of the pull.
	Duration time.Duration

	// The steps of the pull, each timed from the start of Prepare. A step
	// an implementation does not take is the zero Span.
	//
	// Resolve is resolving the reference to a manifest digest and reading
	// the manifest (for a lazy image, its accelerated form's too).
	Resolve Span
	// Auth is the time spent in calls of Options.Credentials (temporary
	// credentials for the function's role), from the first call's start;
	// calls far apart (resolving, then a layer's first fetch) count only
	// their own time (BusyRecorder). It overlaps the steps that asked.
	Auth Span
	// Index is a lazy image's table of contents or index-only artifact:
	// fetching and reading it, over all layers opened by this Prepare.
	Index Span
	// Fetch is a full pull's download and unpacking of the layers; zero
	// when they were on the host.
	Fetch Span
	// Mount is making the layers directories: the snapshot view of a full
	// pull, the FUSE mounts of a lazy image.
	Mount Span
	// Prefetch is a lazy image's replay of its start-up record, from its
	// first request to its last answer (or to the Stats call while it
	// runs); it overlaps the container's start. PrefetchBytes is what it
	// made local: the bytes of the file ranges replayed, uncompressed.
	Prefetch      Span
	PrefetchBytes int64
}
