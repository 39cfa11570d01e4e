package gzindex

import (
	"archive/tar"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
)

const fuzzMaxOut = 256 << 10

// rawInflate decodes a bare DEFLATE stream with the package's decoder,
// up to limit bytes.
func rawInflate(data []byte, limit int) ([]byte, error) {
	var d inflater
	d.resetRaw(bytes.NewReader(data), make([]byte, 0, 512), make([]byte, windowSize+64<<10+maxMatch))
	var got []byte
	for len(got) < limit && d.st != stDone {
		if d.op+64<<10+maxMatch > len(d.out) {
			d.slide(windowSize)
		}
		start := d.op
		err := d.decode(d.op + 64<<10)
		got = append(got, d.out[start:d.op]...)
		if err != nil {
			return got, err
		}
	}
	return got[:min(len(got), limit)], nil
}

// FuzzInflate checks the decoder against compress/flate on arbitrary
// DEFLATE streams: the same bytes whenever compress/flate accepts the
// stream, and a clean error (no panic, no hang) otherwise.
func FuzzInflate(f *testing.F) {
	for _, data := range [][]byte{nil, []byte("hello, hello, hello"), bytes.Repeat([]byte("abc"), 5000)} {
		for _, level := range []int{-2, 0, 1, 9} {
			var b bytes.Buffer
			w, _ := flate.NewWriter(&b, level)
			w.Write(data)
			w.Close()
			f.Add(b.Bytes())
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(data)), fuzzMaxOut))
		got, err := rawInflate(data, fuzzMaxOut)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("got error %v, want one wrapping ErrCorrupt", err)
		}
		if wantErr == nil && len(want) < fuzzMaxOut {
			if err != nil {
				t.Fatalf("compress/flate accepts the stream, got error %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want %d (equal prefix %d)", len(got), len(want), commonPrefix(got, want))
			}
		}
	})
}

// FuzzGzipResume compresses arbitrary data, decodes it whole and from
// every block boundary, and compares.
func FuzzGzipResume(f *testing.F) {
	f.Add([]byte("hello, hello, hello"), 6, 2)
	f.Add(bytes.Repeat([]byte("0123456789abcdef"), 300), 1, 3)
	f.Add(make([]byte, 3000), 0, 1)
	f.Fuzz(func(t *testing.T, data []byte, level, members int) {
		if len(data) > 1<<20 {
			return
		}
		level = abs(level)%11 - 2 // HuffmanOnly, 0..8, and -1 stands for 9
		if level == -1 {
			level = 9
		}
		members = 1 + abs(members)%4
		var z []byte
		for i := range members {
			part := data[i*len(data)/members : (i+1)*len(data)/members]
			var b bytes.Buffer
			w, _ := gzip.NewWriterLevel(&b, level)
			w.Write(part)
			w.Close()
			z = append(z, b.Bytes()...)
		}
		got, bounds, err := inflateAll(z, 40000)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("got %d bytes, want %d", len(got), len(data))
		}
		var d inflater
		for i, b := range bounds {
			if len(bounds) > 8 && i%(len(bounds)/8) != 0 {
				continue
			}
			d.resetAt(bytes.NewReader(z[b.bit/8:]), b, data[b.out-int64(b.win):b.out], make([]byte, 0, 512), make([]byte, windowSize+40000+maxMatch))
			want := data[b.out:min(int64(len(data)), b.out+40000)]
			start := d.op
			if err := d.decode(start + len(want)); err != nil {
				t.Fatalf("resume at %+v: %v", b, err)
			}
			if !bytes.Equal(d.out[start:start+len(want)], want) {
				t.Fatalf("resume at %+v: wrong bytes", b)
			}
		}
	})
}

func abs(i int) int {
	if i < 0 {
		return -i
	}
	return i
}

// FuzzBuild feeds arbitrary layers to Build: an error or an index whose
// every file reads back as archive/tar reads it; never a panic or hang.
func FuzzBuild(f *testing.F) {
	f.Add(fuzzLayer(f, 6), 0)
	f.Add(fuzzLayer(f, 0), 1)
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0)
	f.Fuzz(func(t *testing.T, z []byte, span int) {
		x, err := Build(context.Background(), bytes.NewReader(z), Options{Span: int64(abs(span)%5000 + 1), MaxSpan: int64(abs(span)%3000 + 1),
			ChunkSize: MinChunkSize + int64(abs(span)%3)})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("got error %v, want ErrCorrupt or ErrUnsupported", err)
			}
			return
		}
		data, err := x.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if x, err = Load(data, x.Digest); err != nil {
			t.Fatal(err)
		}
		for i := range x.Chunks() {
			off, n := x.Chunk(i)
			if got := digest.SHA256.FromBytes(z[off : off+n]); x.ChunkDigest(i) != got {
				t.Fatalf("chunk %d: got %s, want %s", i, x.ChunkDigest(i), got)
			}
		}
		zr, err := gzip.NewReader(bytes.NewReader(z))
		if err != nil {
			return // both sides may legitimately differ on odd framing
		}
		tr := tar.NewReader(zr)
		r := NewReader(x, FileFetcher(bytes.NewReader(z)))
		for i := 0; ; i++ {
			h, err := tr.Next()
			if err != nil {
				return
			}
			want, _ := io.ReadAll(tr)
			e := &x.Entries[i]
			if e.Name != h.Name {
				t.Fatalf("entry %d: got %q, want %q", i, e.Name, h.Name)
			}
			if !e.IsRegular() || e.Sparse {
				continue
			}
			if got := digest.SHA256.FromBytes(want); e.Digest != got {
				t.Fatalf("%s: got digest %s, want %s", e.Name, e.Digest, got)
			}
			if e.Size == 0 {
				continue
			}
			got := make([]byte, e.Size)
			if _, err := r.ReadFileAt(context.Background(), e, got, 0); err != nil {
				t.Fatalf("%s: %v", e.Name, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: wrong bytes", e.Name)
			}
		}
	})
}

func fuzzLayer(t testing.TB, level int) []byte {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for i, body := range []string{"hello\n", "", string(bytes.Repeat([]byte("ab"), 3000))} {
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f%d", i), Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg,
			PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v"}})
		tw.Write([]byte(body))
	}
	tw.WriteHeader(&tar.Header{Name: "d/", Mode: 0o755, Typeflag: tar.TypeDir})
	tw.Close()
	return gzipBytes(t, tb.Bytes(), level)
}

// FuzzParseIndex feeds arbitrary bytes to the index parser (past the
// checksum, which would reject nearly all of them): errors, never panics.
func FuzzParseIndex(f *testing.F) {
	x, err := Build(context.Background(), bytes.NewReader(fuzzLayer(f, 6)), Options{Span: 1, MaxSpan: 1})
	if err != nil {
		f.Fatal(err)
	}
	data, _ := x.MarshalBinary()
	f.Add(data[:len(data)-32])
	x3, err := Build(context.Background(), bytes.NewReader(fuzzLayer(f, 6)), Options{Span: 1, MaxSpan: 1, Version: 3})
	if err != nil {
		f.Fatal(err)
	}
	data3, _ := x3.MarshalBinary()
	f.Add(data3[:len(data3)-32])
	if n, err := HeadSize(data3); err == nil {
		f.Add(data3[:n])
	}
	v1 := version1(f, x)
	f.Add(v1[:len(v1)-32])
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) < len(magic) {
			return
		}
		fuzzParsed(t, body, false)
		fuzzParsed(t, body, true)
	})
}

// fuzzParsed parses body, whole or as a head, and reads through what it
// parsed, if anything.
func fuzzParsed(t *testing.T, body []byte, headOnly bool) {
	{
		x, err := parse(body, headOnly)
		if err != nil {
			if !errors.Is(err, ErrBadIndex) {
				t.Fatalf("got error %v, want ErrBadIndex", err)
			}
			return
		}
		x.windows = func(_ context.Context, off, n int64, _ digest.Digest) ([]byte, error) {
			return make([]byte, min(n, 1<<16)), nil
		}
		// A parsed index must not make the reader misbehave.
		r := NewReader(x, func(context.Context, int64, int64) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(make([]byte, 100))), nil
		})
		for i := range x.Entries {
			buf := make([]byte, min(x.Entries[i].Size, 1<<16))
			r.ReadFileAt(context.Background(), &x.Entries[i], buf, 0)
		}
		r.ReadAt(context.Background(), make([]byte, 100), 0)
		for i := range x.Entries {
			x.FileChunks(&x.Entries[i], 0, 1<<16)
		}
		for i := range x.Chunks() {
			x.Chunk(i)
		}
	}
}

// version1 returns x serialized in format version 1 (x is changed).
func version1(t testing.TB, x *Index) []byte {
	x.version, x.chunkSize, x.chunkSums = 1, 0, nil
	for i := range x.Entries {
		x.Entries[i].Digest = ""
	}
	data, err := x.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestWriteFuzzCorpus regenerates testdata/fuzz seed corpora when
// GZINDEX_WRITE_CORPUS is set.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("GZINDEX_WRITE_CORPUS") == "" {
		t.Skip("set GZINDEX_WRITE_CORPUS=1 to regenerate seed corpora")
	}
	write := func(fuzz, name string, vals ...any) {
		dir := filepath.Join("testdata", "fuzz", fuzz)
		os.MkdirAll(dir, 0o755)
		s := "go test fuzz v1\n"
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				s += fmt.Sprintf("[]byte(%q)\n", v)
			case int:
				s += fmt.Sprintf("int(%d)\n", v)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog 0123456789\n"), 40)
	for _, level := range []int{-2, 0, 1, 6, 9} {
		var b bytes.Buffer
		w, _ := flate.NewWriter(&b, level)
		w.Write(text)
		w.Close()
		write("FuzzInflate", fmt.Sprintf("text-level%d", level), b.Bytes())
		c := append([]byte{}, b.Bytes()...)
		c[len(c)/2] ^= 0x55
		write("FuzzInflate", fmt.Sprintf("corrupt-level%d", level), c)
		write("FuzzGzipResume", fmt.Sprintf("text-level%d", level), text, level+1, 3)
		write("FuzzBuild", fmt.Sprintf("layer-level%d", level), fuzzLayer(t, level), 100+level)
	}
	write("FuzzInflate", "stored-bad-nlen", []byte{1, 5, 0, 5, 0, 'a', 'b', 'c', 'd', 'e'})
	write("FuzzInflate", "dist-too-far", []byte{0x63, 0x00, 0x02, 0x00})
	write("FuzzBuild", "zstd", []byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0}, 1)
	write("FuzzBuild", "truncated", fuzzLayer(t, 6)[:60], 1)
	x, err := Build(context.Background(), bytes.NewReader(fuzzLayer(t, 6)), Options{Span: 1, MaxSpan: 1})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := x.MarshalBinary()
	write("FuzzParseIndex", "valid", data[:len(data)-32])
	write("FuzzParseIndex", "truncated", data[:len(data)/2])
	v1 := version1(t, x)
	write("FuzzParseIndex", "valid-v1", v1[:len(v1)-32])
	x3, err := Build(context.Background(), bytes.NewReader(fuzzLayer(t, 6)), Options{Span: 1, MaxSpan: 1, Version: 3})
	if err != nil {
		t.Fatal(err)
	}
	data3, _ := x3.MarshalBinary()
	write("FuzzParseIndex", "valid-v3", data3[:len(data3)-32])
	n, err := HeadSize(data3)
	if err != nil {
		t.Fatal(err)
	}
	write("FuzzParseIndex", "head-v3", data3[:n])
}
