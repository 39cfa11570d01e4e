// Package lazyfs serves image layers as read-only FUSE file systems whose
// bytes are fetched on demand, for use as overlayfs lower directories
// (see DESIGN.md, "Image acceleration").
//
// # Vocabulary and life cycle
//
// A Source is one layer as seen from here: its tar entries, the bytes of
// its regular files at any offset, each file's digest, and the order in
// which an instance is expected to read files at start-up. Two sources
// exist: EStargz (the layer's TOC; chunks are gzip members, each checked
// against the TOC's chunkDigest, the TOC against the
// "containerd.io/snapshot/stargz/toc.digest" annotation) and GzIndex (an
// index-only artifact over the unmodified gzip blob, puller/gzindex
// format v2 or v3; aligned compressed chunks, 16 KiB as fcd converts,
// verified by sha256; with v3 only the index's head is read before
// mounting, and its windows come by range from the index blob
// (LayerOptions.IndexBlob) as reads need them). Both
// read compressed bytes through a Blob, which puller/remote implements
// (single-range GETs, host-wide verified chunk cache, priorities).
//
// Mount turns a Source into a Layer: the tree is built once, in memory,
// from the entries, as a full unpack of the layer with containerd's
// overlayfs whiteout conversion would leave it, and mounted read-only:
//
//   - a later entry replaces an earlier one of the same name; a directory
//     over a directory only changes its attributes;
//   - parents no entry names are made 0755 root:root;
//   - ".wh.name" becomes a character device 0/0 "name" (an overlayfs
//     whiteout), ".wh..wh..opq" the xattr trusted.overlay.opaque=y on its
//     directory, other ".wh..wh." entries (AUFS metadata) are dropped;
//   - hard links are one inode under several names (same st_ino); a hard
//     link to a file outside the layer is refused (ErrUnsupported): the
//     layer cannot see below itself; so is a hard link that keeps alive a
//     file a later entry of the same name replaced (a Source serves a
//     name's last entry only);
//   - modes (setuid, setgid, sticky), owners, times, symlinks and xattrs
//     as recorded; character and block devices and FIFOs are reproduced
//     as nodes (as a full unpack by root does); the FUSE mount itself is
//     nodev and nosuid, the overlay on top decides for the container;
//   - eStargz's landmark files (".prefetch.landmark",
//     ".no.prefetch.landmark") are not part of the tree.
//
// A layer's creator is not trusted, and fcd parses it as root: what a
// small TOC or index could make it allocate or compute is bounded (TOC
// bytes and entries, names and symlink targets by PATH_MAX and
// NAME_MAX, extended attributes, the sum of file sizes, the bytes one
// chunk decodes from and to), and a layer past a bound, or with a name a
// full unpack could not create (a NUL byte, a whiteout of "." or ".."),
// is refused with ErrUnsupported, so that it is pulled whole instead.
// Chunks of a TOC that start at one place but differ are ErrCorrupt.
//
// The tree of a layer is held in memory for as long as it is mounted: a
// few hundred bytes per entry. go-fuse's inodes are made only as the
// kernel looks names up, so mounting costs little beyond reading the
// tree.
//
// The kernel may cache entries and attributes for a day (layers never
// change), keeps file pages across opens (FOPEN_KEEP_CACHE), sends no
// FLUSH at close (FOPEN_NOFLUSH: a layer is never written) and caches
// symlink targets. A layer without any xattr is mounted with xattr
// requests disabled, so the kernel stops sending them (the costliest FUSE
// requests of a run phase, SOCI #971); getxattr then answers ENOTSUP
// rather than ENODATA.
//
// # Reads
//
// A read reaching the daemon is served from the Source at OnDemand
// priority. A failed fetch is EIO, logged with the layer and the file;
// the mount stays up and a later read fetches again. The kernel's
// FUSE_INTERRUPT cancels the read's context; a fetch shared by several
// readers is cancelled when the last of them gives up (a GET already sent
// for verified chunks still completes, and puller/remote caches them).
//
// # Start-up and background fetch
//
// Manager starts, at mount, a prefetch of the source's StartupOrder (an
// eStargz landmark: files in order, several at once); a user that knows
// better (a recorded start-up, puller/lazy) stops it (SkipStartupOrder)
// and prefetches exact ranges with PrefetchRange. Observe reports the
// reads instances make, for recording, and ObserveLookups the names they
// look up, absent ones included: a module loader probes thousands of
// names at start-up, and through an overlayfs each name missing from the
// upper layers is one lookup in every lower FUSE layer, a round trip to
// the daemon each. WarmLookups looks such names up ahead of the instance
// (the kernel keeps the answers, absent ones too, for the mount's entry
// timeout), so its own lookups are answered by the dentry cache. With
// ManagerOptions.Background,
// once an instance is ready (StartBackground) the rest of the layer is
// fetched at Background priority: a GzIndex fetches its whole blob into
// the chunk cache with many reads outstanding, then files are made local
// several at a time, so the link stays full whatever the files' sizes.
// Readers of a higher priority never wait behind a fetch of a lower one
// (flights): they fetch at their own, which raises the pending requests.
//
// Small files are where a start-up's time goes (a Python start reads two
// thousand of them): one GET each would cost the registry and this host
// far more CPU than their bytes (the reference registry reads 4 MiB from
// its storage for any range), and never fill the link. So a layer asks
// for the bytes of a whole group of a recorded start-up's reads at once
// (PrefetchRanges), and of the small files that lie close together in
// the blob for the background fetch (FetchAll): runs of eStargz gzip
// members, or index-only chunks, at most 32 KiB apart, the bytes between
// included and decoded too (a start-up reads its neighbours' files), each
// member fetched once however many groups want it; the fetcher joins the
// runs pending together into GETs of up to 4 MiB. An eStargz layer also
// says which members a read needs (Extents) and fetches any stretch of
// its blob in one GET (FetchExtent), so that a replay plans the GETs of
// a whole record at once. A Manager's
// layers defer making small files local until StartBackground
// (MountOptions.DeferSmall): meanwhile they are held in memory, verified
// (up to 256 MiB a layer), and served from there by the daemon, since a
// file creation costs more CPU than serving a small file (on ext4 without
// a journal, about half a millisecond: the allocator steps over every
// inode freed in the last minute); once the instance has started they
// are written out for passthrough. A whole-file chunk is then not stored
// in the chunk store too.
//
// # Passthrough
//
// With a cache directory (MountOptions.CacheDir), a file whose every page
// has been served through the daemon, or a small file at its first read,
// is materialized: read whole, checked against its sha256, written under
// CacheDir/files (named by digest, so layers share copies) and from then
// on opened with FUSE passthrough: the kernel reads the local file
// directly, at page-cache speed, without the daemon. The cache directory
// must be on a non-stacked file system (ext4, xfs): the kernel refuses
// backing files on overlayfs or FUSE, and go-fuse turns passthrough off
// for the whole mount at the first refusal. Mount checks the file system
// up front; if a refusal happens anyway, the layer notices (a read
// arrives on a passthrough handle), logs it once, stops materializing and
// serves reads from the local copy through the daemon. The kernel fails
// a passthrough open of an inode that still has an open served through
// the daemon (its cached I/O mode) with EIO, so a file is opened for
// passthrough only once the daemon has seen every such open released; an
// open before that (a second reader of a file just materialized) is
// served through the daemon like the first.
//
// # Sharing
//
// Manager keeps one mount per layer digest for all images and instances,
// counts references, and unmounts a layer unused for IdleTimeout. Mounts
// die with the process serving them (go-fuse cannot hand a live FUSE
// connection to another process), so a new Manager detaches the mounts a
// previous process left under its root.
//
// # What it does not do
//
// It does not talk to registries, choose between sources or images, keep
// the chunk cache (puller/remote, cache), or build the overlay with the
// writable layer (instance).
package lazyfs
