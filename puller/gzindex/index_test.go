package gzindex

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
)

// smallLayer is a gzip layer of n files with mixed contents.
func smallLayer(t testing.TB, n int) (z, tarBytes []byte) {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	text := testInputs()["text"]
	for i := range n {
		body := text[i*997%len(text):][:min(i*131%9000, len(text)-i*997%len(text))]
		hdr := &tar.Header{Name: fmt.Sprintf("dir/f%04d", i), Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg,
			Uid: i, Uname: "u", PAXRecords: map[string]string{"SCHILY.xattr.user.i": fmt.Sprint(i)}}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	tw.WriteHeader(&tar.Header{Name: "dir/link", Linkname: "dir/f0003", Typeflag: tar.TypeLink})
	tw.WriteHeader(&tar.Header{Name: "dir/sym", Linkname: "f0003", Typeflag: tar.TypeSymlink})
	tw.WriteHeader(&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666})
	tw.Close()
	return gzipBytes(t, tb.Bytes(), 6), tb.Bytes()
}

// smallIndex returns the index of a small layer, and its serialized form.
func smallIndex(t *testing.T) (*Index, []byte) {
	t.Helper()
	z, _ := smallLayer(t, 50)
	x, err := Build(context.Background(), bytes.NewReader(z), Options{Span: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	data, err := x.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return x, data
}

func TestLoadRejects(t *testing.T) {
	x, data := smallIndex(t)
	other := "sha256:" + fmt.Sprintf("%064x", 1)
	flipped := func(i int) []byte {
		b := bytes.Clone(data)
		b[i] ^= 1
		return b
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		digest string
		want   error
	}{
		{"checksum", flipped(len(data) / 2), x.Digest, ErrBadIndex},
		{"checksum byte", flipped(len(data) - 1), x.Digest, ErrBadIndex},
		{"magic", flipped(0), x.Digest, ErrBadIndex},
		{"truncated", data[:len(data)-40], x.Digest, ErrBadIndex},
		{"empty", nil, x.Digest, ErrBadIndex},
		{"other layer", data, other, ErrDigestMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Load(tc.data, tc.digest); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := Load(data, "md5:abc"); err == nil {
		t.Fatal("got nil error for a malformed digest, want one")
	}
	// Every corruption the checksum would miss must still be caught by
	// the parser: re-sign after flipping a byte of the body.
	for i := len(magic); i < len(data)-32; i += max(1, (len(data)-32)/300) {
		b := flipped(i)
		body := b[:len(b)-32]
		if _, err := parse(body, false); err != nil && !errors.Is(err, ErrBadIndex) {
			t.Fatalf("byte %d: got %v, want ErrBadIndex", i, err)
		}
	}
}

func TestIndexContents(t *testing.T) {
	z, tarBytes := smallLayer(t, 40)
	x, err := Build(context.Background(), bytes.NewReader(z), Options{})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := x.MarshalBinary()
	if x, err = Load(data, x.Digest); err != nil {
		t.Fatal(err)
	}
	if got, want := len(x.Entries), 43; got != want {
		t.Fatalf("got %d entries, want %d", got, want)
	}
	tr := tar.NewReader(bytes.NewReader(tarBytes))
	for i := range x.Entries {
		h, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		e := x.Entries[i]
		if e.Name != h.Name || e.Type != h.Typeflag || e.Mode != h.Mode || e.UID != h.Uid || e.Uname != h.Uname ||
			e.Size != h.Size || !e.ModTime.Equal(h.ModTime) || e.Linkname != h.Linkname || e.Devmajor != h.Devmajor || e.Devminor != h.Devminor {
			t.Fatalf("entry %d: got %+v, want %+v", i, e, h)
		}
		if got, want := e.Xattrs()["user.i"], h.PAXRecords["SCHILY.xattr.user.i"]; got != want {
			t.Fatalf("entry %s: got xattr %q, want %q", e.Name, got, want)
		}
	}
	r := NewReader(x, FileFetcher(bytes.NewReader(z)))
	for _, tc := range []struct {
		name string
		want error
	}{
		{"dir/sym", ErrNotRegular},
		{"dev/null", ErrNotRegular},
	} {
		e, ok := x.Lookup(tc.name)
		if !ok {
			t.Fatalf("Lookup(%q) failed", tc.name)
		}
		if _, err := r.ReadFile(context.Background(), e); !errors.Is(err, tc.want) {
			t.Fatalf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	link, _ := x.Lookup("/dir/link")
	target, _ := x.Lookup("./dir/f0003")
	a, err1 := r.ReadFile(context.Background(), link)
	b, err2 := r.ReadFile(context.Background(), target)
	if err1 != nil || err2 != nil || !bytes.Equal(a, b) || len(a) == 0 {
		t.Fatalf("hard link: got %d bytes (%v), want %d (%v)", len(a), err1, len(b), err2)
	}
}

func TestBuildRefuses(t *testing.T) {
	z, tarBytes := smallLayer(t, 5)
	for _, tc := range []struct {
		name  string
		data  []byte
		opts  Options
		want  error
		media string
	}{
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd, 4, 0, 0, 0}, Options{}, ErrUnsupported, MediaTypeOCIZstd},
		{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0, 0}, Options{}, ErrUnsupported, "xz"},
		{"uncompressed tar", tarBytes, Options{}, ErrUnsupported, MediaTypeOCITar},
		{"declared zstd", z, Options{MediaType: MediaTypeOCIZstd}, ErrUnsupported, MediaTypeOCIZstd},
		{"garbage", []byte("hello"), Options{}, ErrCorrupt, ""},
		{"truncated", z[:len(z)/2], Options{}, ErrCorrupt, ""},
		{"gzip of non-tar", gzipBytes(t, bytes.Repeat([]byte("x"), 2000), 6), Options{}, ErrCorrupt, ""},
		{"wrong digest", z, Options{Digest: "sha256:" + fmt.Sprintf("%064x", 2)}, ErrDigestMismatch, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(context.Background(), bytes.NewReader(tc.data), tc.opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.media != "" && !bytes.Contains([]byte(err.Error()), []byte(tc.media)) {
				t.Fatalf("got %q, want it to name %q", err, tc.media)
			}
		})
	}
}

func TestBuildCanceled(t *testing.T) {
	z, _ := smallLayer(t, 20)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Build(ctx, bytes.NewReader(z), Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestReaderConcurrent reads every file from many goroutines at once
// (run with -race).
func TestReaderConcurrent(t *testing.T) {
	z, _ := smallLayer(t, 300)
	x, err := Build(context.Background(), bytes.NewReader(z), Options{Span: 1 << 10, MaxSpan: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if x.Checkpoints() < 3 {
		t.Fatalf("got %d checkpoints, want several", x.Checkpoints())
	}
	r := NewReader(x, FileFetcher(bytes.NewReader(z)))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < len(x.Entries); i += 3 {
				e := &x.Entries[i]
				if !e.IsRegular() {
					continue
				}
				if _, err := r.ReadFile(context.Background(), e); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestReaderBadBlob serves the reader a different blob, a short one and
// a failing one: errors, never wrong bytes.
func TestReaderBadBlob(t *testing.T) {
	z, _ := smallLayer(t, 100)
	x, err := Build(context.Background(), bytes.NewReader(z), Options{Span: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	_, tarBytes := smallLayer(t, 100)
	other := gzipBytes(t, tarBytes, 1)
	failing := func(context.Context, int64, int64) (io.ReadCloser, error) { return nil, errors.New("registry down") }
	short := func(_ context.Context, off, n int64) (io.ReadCloser, error) {
		return io.NopCloser(io.NewSectionReader(bytes.NewReader(z), off, n/2)), nil
	}
	e := &x.Entries[60]
	for name, fetch := range map[string]Fetcher{"other": FileFetcher(bytes.NewReader(other)), "short": short, "failing": failing} {
		t.Run(name, func(t *testing.T) {
			b, err := NewReader(x, fetch).ReadFile(context.Background(), e)
			if err == nil {
				t.Fatalf("got %d bytes and no error, want an error", len(b))
			}
		})
	}
	if _, err := NewReader(x, short).ReadFile(context.Background(), e); !errors.Is(err, ErrShortFetch) {
		t.Fatalf("short fetch: got %v, want ErrShortFetch", err)
	}
}

// TestLoadBounds: an index whose table inflates past maxTableBytes, or
// holds more than maxEntries entries, is refused before it is decoded
// (a few KiB of deflate may claim gigabytes).
func TestLoadBounds(t *testing.T) {
	x, data := smallIndex(t)
	if _, err := Load(data, x.Digest); err != nil {
		t.Fatalf("Load within the bounds: %v", err)
	}
	for _, tc := range []struct {
		name  string
		lower func()
	}{
		{"entries", func() { maxEntries = len(x.Entries) - 1 }},
		{"table bytes", func() { maxTableBytes = 64 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries, table := maxEntries, maxTableBytes
			t.Cleanup(func() { maxEntries, maxTableBytes = entries, table })
			tc.lower()
			if _, err := Load(data, x.Digest); !errors.Is(err, ErrBadIndex) {
				t.Fatalf("got %v, want ErrBadIndex", err)
			}
		})
	}
}
