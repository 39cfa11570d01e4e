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
//     before the registry serves any blob, get the same image; then every
//     prepared tree is read at once and equals the reference. Prepare
//     and reads together fetch no blob byte twice (bytes served per blob,
//     manifests' and an artifact's subject's included, at most its size),
//     for a full pull (which fetches in Prepare) and a lazy pull (which
//     fetches as the trees are read) alike.
//   - Release: Release is idempotent and frees the key for a new Prepare;
//     Ready is idempotent.
//   - Unauthorized: wrong or missing credentials fail Prepare with an
//     error wrapping image.ErrUnauthorized (errdefs unauthenticated) whose
//     message names Options.Role.
//
// An implementation that only prepares accelerated images (package
// puller/lazy) runs the suite with RunWith and Options.Accelerate: every
// image the suite pushes is converted by that hook (puller/accel's
// Converter, in either mode) and the suite prepares the reference the
// hook returns, expecting the manifest digest it names; each check above
// then holds for the accelerated image as it does for the plain one.
//
// The suite needs whatever the implementation needs (root, containerd,
// FUSE) and root to mount the overlay it compares; the constructor should
// skip the test (or fail it on CI, internal/testenv) when they are
// missing. newImages is called once per test; images pushed by one Run
// are new to the host (random content) where the test needs a cold pull.
package imagetest
