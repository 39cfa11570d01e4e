package lazyfs

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"

	"github.com/fcd-dev/fcd/puller/remote"
)

// tocEntry holds the fields of an eStargz TOC entry (estargz.TOCEntry's
// JSON names) that a layer uses. The TOC is on a cold start's critical
// path, decoded before anything can be read: a large image's TOC has
// hundreds of thousands of entries, so it is decoded into this lean type
// with github.com/go-json-experiment/json (several times faster than
// encoding/json here, see BenchmarkParseTOC), skipping the fields no
// layer reads (user and group names).
type tocEntry struct {
	Name        string            `json:"name"`
	Type        string            `json:"type"`
	Size        int64             `json:"size,omitempty"`
	ModTime3339 string            `json:"modtime,omitempty"`
	LinkName    string            `json:"linkName,omitempty"`
	Mode        int64             `json:"mode,omitempty"`
	UID         int               `json:"uid,omitempty"`
	GID         int               `json:"gid,omitempty"`
	Offset      int64             `json:"offset,omitempty"`
	InnerOffset int64             `json:"innerOffset,omitempty"`
	DevMajor    int               `json:"devMajor,omitempty"`
	DevMinor    int               `json:"devMinor,omitempty"`
	Xattrs      map[string][]byte `json:"xattrs,omitempty"`
	Digest      string            `json:"digest,omitempty"`
	ChunkOffset int64             `json:"chunkOffset,omitempty"`
	ChunkSize   int64             `json:"chunkSize,omitempty"`
	ChunkDigest string            `json:"chunkDigest,omitempty"`
}

type jtoc struct {
	Version int        `json:"version"`
	Entries tocEntries `json:"entries"`
}

// tocEntries decodes a TOC's entries one by one, refusing more than
// maxEntries (ErrUnsupported) as they come: an empty entry costs a
// hundred times its bytes.
type tocEntries []tocEntry

func (es *tocEntries) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	switch tok.Kind() {
	case 'n':
		*es = nil
		return nil
	case '[':
	default:
		return fmt.Errorf("TOC entries are a JSON %v, want an array", tok.Kind())
	}
	*es = (*es)[:0]
	for {
		switch dec.PeekKind() {
		case ']', 0: // the end, or an error ReadToken reports
			_, err := dec.ReadToken()
			return err
		}
		if len(*es) == maxEntries {
			return fmt.Errorf("TOC of more than %d entries: %w", maxEntries, ErrUnsupported)
		}
		*es = append(*es, tocEntry{})
		if err := json.UnmarshalDecode(dec, &(*es)[len(*es)-1]); err != nil {
			return err
		}
	}
}

// tocOptions decode as encoding/json (which estargz writes with) would
// accept: names matched without regard to case, duplicate names and
// invalid UTF-8 let through.
var tocOptions = json.JoinOptions(
	json.MatchCaseInsensitiveNames(true),
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
)

// parseTOC decodes the TOC of a current-format eStargz blob from r, its
// gzip-compressed tar holding stargz.index.json (as
// estargz.GzipDecompressor.ParseTOC does), and returns it with the
// digest of its JSON.
func parseTOC(r io.Reader) (*jtoc, digest.Digest, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, "", fmt.Errorf("TOC gzip header: %w", err)
	}
	defer zr.Close()
	zr.Multistream(false)
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	if err != nil {
		return nil, "", fmt.Errorf("TOC tar header: %w", err)
	}
	if h.Name != estargz.TOCTarName {
		return nil, "", fmt.Errorf("TOC tar entry is %q, want %q", h.Name, estargz.TOCTarName)
	}
	return decodeTOC(tr)
}

// maxTOCBytes bounds the TOC JSON of a layer, which its gzip compression
// does not: a TOC of maxEntries ordinary entries is about half as long.
// A variable, so that tests can lower it.
var maxTOCBytes int64 = 512 << 20

// decodeTOC decodes TOC JSON from r while hashing it. A TOC of
// maxTOCBytes or more, or of more than maxEntries entries is refused
// (ErrUnsupported) as it is read, before it costs more.
func decodeTOC(r io.Reader) (*jtoc, digest.Digest, error) {
	hr := &hashReader{r: bufio.NewReaderSize(r, 256<<10), h: sha256.New(), left: maxTOCBytes}
	toc := new(jtoc)
	if err := json.UnmarshalRead(hr, toc, tocOptions); err != nil {
		return nil, "", fmt.Errorf("decode TOC JSON: %w", err)
	}
	// Hash what follows the JSON value too, as a digest of the whole
	// tar entry would.
	if _, err := io.Copy(io.Discard, hr); err != nil {
		return nil, "", fmt.Errorf("read TOC: %w", err)
	}
	return toc, digest.NewDigest(digest.SHA256, hr.h), nil
}

// tocPiece is what one read of a TOC asks for: the reads are made at
// once (the fetcher joins them into few GETs) and the TOC is decoded as
// they arrive, in order, so that decoding a large TOC overlaps fetching
// it instead of following it.
const tocPiece = 256 << 10

// readPieces returns a reader of the n bytes of blob at off, read in
// tocPiece reads made at once; after a read failed, its err is set. The
// reads run until done or ctx ends.
func readPieces(ctx context.Context, blob Blob, off, n int64) *pieceReader {
	k := (n + tocPiece - 1) / tocPiece
	pr := &pieceReader{pieces: make([]chan piece, k)}
	for i := range pr.pieces {
		ch := make(chan piece, 1)
		pr.pieces[i] = ch
		o := off + int64(i)*tocPiece
		go func() {
			b, err := blob.ReadRange(ctx, o, min(tocPiece, off+n-o), remote.OnDemand)
			ch <- piece{b, err}
		}()
	}
	return pr
}

type piece struct {
	b   []byte
	err error
}

// pieceReader reads pieces in order as they arrive.
type pieceReader struct {
	pieces []chan piece
	cur    []byte
	err    error // a read's failure
}

func (r *pieceReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if len(r.pieces) == 0 {
			return 0, io.EOF
		}
		pc := <-r.pieces[0]
		r.pieces = r.pieces[1:]
		if pc.err != nil {
			r.err = pc.err
			return 0, r.err
		}
		r.cur = pc.b
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// hashReader hashes what is read through it, and fails once more than
// left bytes were.
type hashReader struct {
	r    io.Reader
	h    hash.Hash
	left int64
}

func (h *hashReader) Read(p []byte) (int, error) {
	if h.left <= 0 {
		return 0, fmt.Errorf("TOC of %d bytes or more: %w", maxTOCBytes, ErrUnsupported)
	}
	n, err := h.r.Read(p[:min(int64(len(p)), h.left)])
	h.h.Write(p[:n])
	h.left -= int64(n)
	return n, err
}
