// Package puller turns an image reference into a read-only root filesystem
// that an instance can put a writable layer on top of. Its Puller is the
// full pull, one implementation of the image.Images contract that package
// instance consumes (see package instance/image for the contract and
// instance/image/imagetest for its conformance suite); a lazy pull (FUSE
// layers) will be another.
//
// The lifecycle of one image use is:
//
//	img, err := p.Prepare(ctx, ref, opts) // resolve, check, fetch, unpack, view
//	... overlay img.LowerDirs() under a writable upper dir, run the container ...
//	img.Ready(ctx)                        // instance ready: the pull is metered
//	img.Release(ctx)                      // drop the view; the image stays cached
//
// Prepare resolves the reference against any OCI registry (plain HTTP is
// used for loopback registries) with the caller's credentials, refuses
// images that are not linux/amd64 or that are too large, fetches the
// missing blobs into containerd's content store, unpacks the layers into
// containerd's overlayfs snapshotter (counting the uncompressed bytes as
// it goes) and returns a read-only view of the top snapshot as a list of
// directories for an overlay mount's lowerdir. Index, manifest and config
// are read back from the content store, so an image already on the host
// costs one registry request (the resolve). Concurrent Prepare calls of
// one image share one pull.
//
// Registry access is bounded (Options): response headers, a body's
// silence, and the whole pull each have a limit, and a registry that
// exceeds one fails Prepare with ErrRegistryTimeout naming it. A refused
// credential fails it with ErrUnauthorized. With an AddressPolicy
// (Options.Addresses), a connection to an address it refuses, whether the
// image's registry, its token server or a redirect names it, fails
// Prepare with ErrAddressRefused before anything is sent.
//
// Pulls are reported to a Meter (billing's ledger in fcd) when the
// instance is ready; see Meter for exactly what is reported.
//
// Package puller owns registry access and the pull itself; what stays in
// the content store and for how long (cache policy) is not its business.
package puller
