package gzindex

import "errors"

var (
	// ErrCorrupt reports a compressed stream that violates RFC 1951 or
	// RFC 1952: a bad block type, an invalid Huffman code, a distance
	// reaching before the start of the window, a bad gzip header or a
	// checksum mismatch. Errors wrapping it name the bit offset.
	ErrCorrupt = errors.New("gzindex: corrupt compressed stream")

	// ErrUnsupported reports a layer that is not gzip-compressed (zstd, xz,
	// bzip2 or an uncompressed tar). The wrapping error names the media type.
	ErrUnsupported = errors.New("gzindex: unsupported layer media type")

	// ErrBadIndex reports a serialized index that is truncated, fails its
	// checksum, has an unknown version or is internally inconsistent.
	ErrBadIndex = errors.New("gzindex: invalid index")

	// ErrDigestMismatch reports an index that was built for a different
	// layer than the one it is asked to serve.
	ErrDigestMismatch = errors.New("gzindex: index does not match layer digest")

	// ErrNotRegular reports a file read of an entry that has no data of its
	// own (a directory, link, device or FIFO).
	ErrNotRegular = errors.New("gzindex: not a regular file")

	// ErrSparse reports a file read of a sparse tar entry, whose bytes are
	// not stored contiguously in the layer; such entries are indexed but
	// must be read from a full pull.
	ErrSparse = errors.New("gzindex: sparse entries cannot be read through the index")

	// ErrShortFetch reports a range fetch that returned fewer bytes than the
	// index says the blob has at that range.
	ErrShortFetch = errors.New("gzindex: range fetch returned too few bytes")

	// ErrChecksum reports file data whose CRC-32 differs from the one
	// recorded at build time: the blob behind the fetcher is not the layer
	// the index was built from.
	ErrChecksum = errors.New("gzindex: file data checksum mismatch")

	// ErrNoDigests reports a chunk or digest query on a version 1 index,
	// which records neither chunk nor file digests; such an index can be
	// read unverified but cannot key a chunk cache. Rebuild it.
	ErrNoDigests = errors.New("gzindex: version 1 index has no chunk digests")
)
