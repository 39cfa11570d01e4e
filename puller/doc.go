// Package puller turns an image reference into a read-only root filesystem
// that an instance can put a writable layer on top of.
//
// The lifecycle of one image use is:
//
//	img, err := p.Prepare(ctx, ref, opts) // resolve, check, fetch, unpack, view
//	... overlay img.LowerDirs under a writable upper dir, run the container ...
//	img.Release(ctx)                      // drop the view; the image stays cached
//
// Prepare resolves the reference against any OCI registry (plain HTTP is
// used for loopback registries), refuses images that are not linux/amd64
// or that are too large, fetches the missing blobs into containerd's
// content store, unpacks the layers into containerd's overlayfs
// snapshotter (counting the uncompressed bytes as it goes) and returns a
// read-only view of the top snapshot as a list of directories for an
// overlay mount's lowerdir. A lazily mounted image (FUSE) will later be
// returned through the same call and the same Image shape.
//
// Package puller owns registry access and the pull itself; what stays in
// the content store and for how long (cache policy) is not its business.
package puller
