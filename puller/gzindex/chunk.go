package gzindex

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
)

const (
	// ChunkSize is the default size of the aligned compressed chunks a
	// version 2 index records digests for: chunk i covers bytes
	// [i*ChunkSize, min((i+1)*ChunkSize, CompressedSize)) of the blob.
	ChunkSize = 512 << 10
	// MinChunkSize is the smallest chunk size Build and Load accept.
	MinChunkSize = 4 << 10
)

// Version reports the format version the index was built for or loaded
// from: 2 has chunk and file digests, 1 has neither.
func (x *Index) Version() int { return max(x.version, 1) }

// ChunkSize returns the size of the compressed chunks the index has
// digests for, or 0 for a version 1 index, which has none.
func (x *Index) ChunkSize() int64 { return x.chunkSize }

// Chunks returns the number of compressed chunks with digests (0 for a
// version 1 index).
func (x *Index) Chunks() int { return len(x.chunkSums) / sha256.Size }

// Chunk returns the blob range [off, off+n) of chunk i. It panics if i is
// out of range, like a slice index.
func (x *Index) Chunk(i int) (off, n int64) {
	if i < 0 || i >= x.Chunks() {
		panic(fmt.Sprintf("gzindex: chunk %d of %d", i, x.Chunks()))
	}
	off = int64(i) * x.chunkSize
	return off, min(x.chunkSize, x.CompressedSize-off)
}

// ChunkDigest returns the sha256 of chunk i, or "" when i is out of range
// (always, for a version 1 index).
func (x *Index) ChunkDigest(i int) digest.Digest {
	if i < 0 || i >= x.Chunks() {
		return ""
	}
	return digest.NewDigestFromBytes(digest.SHA256, x.chunkSums[i*sha256.Size:(i+1)*sha256.Size])
}

// FetchRange returns the compressed bytes [from, to) of the blob that a
// read of the n uncompressed bytes at off (in the tar stream) decodes:
// from the checkpoint at or before off to the end of the deflate block
// holding the last byte.
func (x *Index) FetchRange(off, n int64) (from, to int64) {
	if n <= 0 || off >= x.Size {
		return 0, 0
	}
	end := min(off+n, x.Size)
	return x.checkpointFor(off).bit / 8, x.fetchEnd(end)
}

// FileChunks returns the chunks [first, end) that hold the compressed
// bytes a read of n bytes at off in e's data needs (a hard link reads its
// target), so a lazy reader can fetch and verify whole chunks. A read
// past the file's end is cut at it; an empty read needs no chunk. It
// fails for entries without readable data, and with ErrNoDigests for a
// version 1 index.
func (x *Index) FileChunks(e *Entry, off, n int64) (first, end int, err error) {
	if x.chunkSize == 0 {
		return 0, 0, ErrNoDigests
	}
	e, err = x.dataEntry(e)
	if err != nil {
		return 0, 0, err
	}
	if off < 0 || n < 0 {
		return 0, 0, fmt.Errorf("gzindex: negative offset or length (%d, %d)", off, n)
	}
	n = min(n, e.Size-off)
	if n <= 0 {
		return 0, 0, nil
	}
	from, to := x.FetchRange(e.Offset+off, n)
	return int(from / x.chunkSize), int((to + x.chunkSize - 1) / x.chunkSize), nil
}

// ChunkReader returns n bytes of the blob at off, a whole chunk, checked
// against want (sha256). remote.Blob.ReadChunk is one, with its priority
// bound.
type ChunkReader func(ctx context.Context, off, n int64, want digest.Digest) ([]byte, error)

// ChunkFetcher returns a Fetcher that serves any range of the blob from
// whole verified chunks read through read. It asks for up to
// ChunkReadahead chunks, or ChunkReadaheadBytes of them if that is more,
// at once (so a range spanning several chunks costs one round trip when
// read coalesces them) and hands them to the decoder
// in order; memory is those chunks per read in progress. Closing the body
// early cancels the chunk reads still outstanding. It fails with
// ErrNoDigests for a version 1 index.
func (x *Index) ChunkFetcher(read ChunkReader) Fetcher {
	return func(ctx context.Context, off, length int64) (io.ReadCloser, error) {
		if x.chunkSize == 0 {
			return nil, ErrNoDigests
		}
		if off < 0 || length < 0 || off+length > x.CompressedSize {
			return nil, fmt.Errorf("gzindex: range %d+%d outside the blob (%d bytes)", off, length, x.CompressedSize)
		}
		ctx, cancel := context.WithCancel(ctx)
		c := &chunkBody{ctx: ctx, cancel: cancel, x: x, read: read, off: off, end: off + length}
		c.next = int(off / x.chunkSize)
		return c, nil
	}
}

// ChunkReadahead is how many chunks a ChunkFetcher body asks for ahead of
// the decoder, at least; ChunkReadaheadBytes is how many bytes of chunks,
// so that small chunks keep as much on the wire as large ones. A body
// never asks for chunks past the range it serves.
const (
	ChunkReadahead      = 4
	ChunkReadaheadBytes = 2 << 20
)

// chunkBody reads [off, end) of the blob chunk by chunk, with readahead.
type chunkBody struct {
	ctx      context.Context
	cancel   context.CancelFunc
	x        *Index
	read     ChunkReader
	off, end int64
	next     int // next chunk to ask for
	ahead    []chan chunkResult
	cur      bytes.Reader
}

type chunkResult struct {
	i    int
	data []byte
	err  error
}

// launch asks for chunks until ChunkReadahead are outstanding or the
// range is covered.
func (c *chunkBody) launch() {
	ahead := max(ChunkReadahead, int(ChunkReadaheadBytes/c.x.chunkSize))
	for len(c.ahead) < ahead && int64(c.next)*c.x.chunkSize < c.end {
		i := c.next
		c.next++
		ch := make(chan chunkResult, 1)
		c.ahead = append(c.ahead, ch)
		go func() {
			off, n := c.x.Chunk(i)
			b, err := c.read(c.ctx, off, n, c.x.ChunkDigest(i))
			if err == nil && int64(len(b)) != n {
				err = fmt.Errorf("%w: chunk %d: got %d bytes, want %d", ErrShortFetch, i, len(b), n)
			}
			ch <- chunkResult{i: i, data: b, err: err}
		}()
	}
}

func (c *chunkBody) Read(p []byte) (int, error) {
	if c.cur.Len() == 0 {
		if c.off >= c.end {
			return 0, io.EOF
		}
		c.launch()
		r := <-c.ahead[0]
		c.ahead = c.ahead[1:]
		if r.err != nil {
			return 0, r.err
		}
		coff, n := c.x.Chunk(r.i)
		b := r.data[c.off-coff : min(n, c.end-coff)]
		c.cur.Reset(b)
		c.off += int64(len(b))
		c.launch()
	}
	return c.cur.Read(p)
}

// Close cancels the chunk reads still outstanding.
func (c *chunkBody) Close() error {
	c.cancel()
	return nil
}
