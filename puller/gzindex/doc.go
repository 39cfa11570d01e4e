// Package gzindex is the core of index-only image acceleration: it builds,
// serializes and serves a small index that lets a cold start read any
// file of a gzip-compressed tar layer from byte ranges of the original,
// untouched blob (see DESIGN.md, "Image acceleration").
//
// # Vocabulary
//
// A layer is a gzip stream (RFC 1952, one or more members, as gzip, pigz
// and eStargz write them) of a tar archive. A boundary is the start of a
// DEFLATE block (RFC 1951), a bit position in the compressed stream, or
// of a gzip member. A checkpoint is a boundary a reader can start from:
// its bit position, its offset in the uncompressed stream, and its window,
// the up to 32 KiB of output before it that back-references may copy.
//
// # Building
//
// Build reads the blob once, as a stream, with its own DEFLATE decoder
// (inflate.go), which, unlike compress/flate, reports boundaries and
// resumes at any of them. archive/tar parses the output; each entry's
// header and the offset of its data are recorded, and the whole stream is
// verified (gzip CRC-32 and sizes) and hashed (sha256). Memory stays a few
// hundred KiB plus the index, whatever the layer's size; nothing touches
// the disk.
//
// In the same pass Build records, for format version 2, the sha256 of
// every aligned compressed chunk of the blob (ChunkSize, 512 KiB: chunk i
// is blob bytes [i*ChunkSize, min((i+1)*ChunkSize, size))) and of every
// regular file's uncompressed data (Entry.Digest). Chunks are the lazy
// reader's fetch, verification and cache unit: FileChunks maps a file
// read to the chunks it needs, ChunkDigest names each one, and
// ChunkFetcher turns a reader of whole verified chunks into a Fetcher.
// File digests let a fully fetched file be materialized and checked.
//
// Checkpoints follow two policies, both measured in compressed bytes,
// which is what a reader fetches:
//
//   - file start (Options.Span, default 512 KiB): when a regular file's
//     data starts more than Span after the last checkpoint, the boundary
//     before it becomes one, so a small file costs at most about Span
//     plus one block to fetch;
//   - fixed (Options.MaxSpan, default 8 MiB): no two checkpoints are
//     further apart, bounding reads in the middle of large files.
//
// Windows make indexes big, so only the bytes of a window that a
// back-reference in the 32 KiB after its checkpoint actually copies are
// kept (the rest are zeroed, found by re-decoding that stretch from the
// compressed bytes retained since the checkpoint), and the window is then
// compressed. A window before incompressible data shrinks to almost
// nothing.
//
// # Reading
//
// Reader serves ReadAt-style reads of the uncompressed stream and of
// files through a Fetcher, a range fetcher over the blob (an HTTP range
// request to a registry plugs in). A read fetches from the checkpoint at
// or before the data to the end of the block holding its last byte (the
// index records every block start for this) and decodes only that. Reads
// are safe for concurrent use. ReadFile checks the file's CRC-32 recorded
// at build time, so a fetcher serving the wrong blob is an error. A
// caller that keeps decoded bytes resumes at any block boundary instead
// (BlockBefore, ReadAtFrom), with the WindowSize bytes before it as the
// window: a long read in pieces then decodes each stretch once, not
// again from the checkpoint for every piece.
//
// # Format
//
// MarshalBinary and Load use the versioned format documented in
// format.go: the layer's digest and sizes, a DEFLATE-compressed table of
// entries, checkpoints and block starts, the chunk and file digests
// (version 2), the compressed windows, and a sha256 over everything.
// Version 3 (Options.Version) adds each window's sha256 and a checksum
// after everything but the windows: that head loads alone (HeadSize,
// LoadHead), and a read fetches the window of its checkpoint through a
// WindowFetcher, verified, the first time it needs it (FetchWindows
// gets many in few requests). With dense checkpoints windows are most of
// an index, and a cold start needs only those of the checkpoints it
// reads from. Version 2 indexes still load whole.
// Version 1 indexes (no digests) still load and serve reads, unverified;
// the chunk queries refuse them with ErrNoDigests. Load verifies the checksum, every offset against
// the sizes, and that the index is for the digest it is asked to serve.
//
// # What it does not do
//
// It does not talk to registries, mount file systems, cache fetched bytes
// or decide which images to accelerate; those belong to puller and cache.
// zstd, xz, bzip2 and uncompressed layers are refused (ErrUnsupported);
// sparse tar entries are indexed but not readable through the index.
package gzindex
