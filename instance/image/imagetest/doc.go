// Package imagetest is the conformance suite of image.Images, modelled on
// containerd's snapshots/testsuite: every implementation (the full pull of
// package puller today, a lazy pull with FUSE layers later) runs it from
// its own tests:
//
//	func TestConformance(t *testing.T) {
//		imagetest.Run(t, func(t *testing.T) image.Images { return newImages(t) })
//	}
//
// Run serves its own registry (go-containerregistry's, plain HTTP on
// 127.0.0.1:0, behind HTTP basic auth with the credentials User and
// Secret), pushes its test images there and checks:
//
//   - Tree: the tree an overlay mount of LowerDirs shows equals the
//     image's layers applied in order by an independent applier in this
//     package (apply.go): regular files and their contents, modes
//     (setuid, setgid, sticky included), owners, xattrs (user.* and
//     security.capability), symlinks, hard links (names linked in one
//     layer share an inode), whiteouts and opaque directories across
//     layers, empty directories, long names and link targets (PAX), and
//     device nodes and FIFOs, which are reproduced (type, permissions,
//     major and minor), not refused. Timestamps are not compared. Digest
//     is the manifest's digest, Config the image's.
//   - SharedPull: concurrent Prepare calls of one image, all started
//     before the registry serves any blob, get the same image and fetch
//     no blob byte twice (bytes served per blob at most its size), for a
//     full and a lazy pull alike.
//   - Release: Release is idempotent and frees the key for a new Prepare;
//     Ready is idempotent.
//   - Unauthorized: wrong or missing credentials fail Prepare with an
//     error wrapping image.ErrUnauthorized (errdefs unauthenticated) whose
//     message names Options.Role.
//
// The suite needs whatever the implementation needs (root, containerd,
// FUSE) and root to mount the overlay it compares; the constructor should
// skip the test (or fail it on CI, internal/testenv) when they are
// missing. newImages is called once per test; images pushed by one Run
// are new to the host (random content) where the test needs a cold pull.
package imagetest
