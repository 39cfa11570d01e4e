package accel

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdcompression "github.com/containerd/containerd/archive/compression"
	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fuzzLimit is MaxUncompressedSize in the fuzz targets: small, so that
// inputs decompressing to much are refused quickly.
const fuzzLimit = 4 << 20

// fuzzEntries is MaxEntries in the fuzz targets.
const fuzzEntries = 1000

// tarSeeds are tars for the fuzz targets' corpora: the entry kinds a
// layer holds, the header extensions archive/tar reads (PAX, GNU long
// names, sparse), duplicates, landmarks, a huge claimed size, truncation.
func tarSeeds(t testing.TB) [][]byte {
	build := func(hdrs ...*tar.Header) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hdrs {
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				tw.Write(bytes.Repeat([]byte{'x'}, int(h.Size)))
			}
		}
		tw.Close()
		return buf.Bytes()
	}
	reg := func(name string, size int64) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeReg, Size: size, Mode: 0o644, ModTime: time.Unix(1700000000, 0)}
	}
	long := strings.Repeat("d/", 80) + "file"
	basic := build(
		&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755},
		reg("d/a", 10), reg("a", 3000),
		&tar.Header{Name: "d/s", Typeflag: tar.TypeSymlink, Linkname: "a", Mode: 0o777},
		&tar.Header{Name: "d/h", Typeflag: tar.TypeLink, Linkname: "d/a"},
		&tar.Header{Name: "d/.wh.gone", Typeflag: tar.TypeReg},
		&tar.Header{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o600},
	)
	pax := reg("p", 5)
	pax.Format = tar.FormatPAX
	pax.PAXRecords = map[string]string{"SCHILY.xattr.user.k": "v", "path": long}
	gnu := reg(long, 7)
	gnu.Format = tar.FormatGNU
	huge := build(reg("big", 0))
	// The first header claims 2^62 bytes (base-256) of data that is not there.
	copy(huge[124:136], []byte{0x80, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0})
	copy(huge[148:156], fmt.Sprintf("%06o\x00 ", chkSum(huge[:512])))
	sparse := build(reg("s", 4))
	sparse[156] = tar.TypeGNUSparse
	copy(sparse[148:156], fmt.Sprintf("%06o\x00 ", chkSum(sparse[:512])))
	return [][]byte{
		basic,
		build(pax, gnu),
		build(reg("dup", 5), reg("dup", 9), reg(estargz.PrefetchLandmark, 1), reg("./x/../dup", 2)),
		huge,
		sparse,
		basic[:len(basic)/2],
		{},
	}
}

// chkSum is a tar header's checksum, its checksum field taken as spaces.
func chkSum(h []byte) int64 {
	var s int64
	for i, c := range h {
		if i >= 148 && i < 156 {
			c = ' '
		}
		s += int64(c)
	}
	return s
}

// gz compresses data with gzip.
func gz(data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	return buf.Bytes()
}

// tarFiles describes the entries of a tar, the last of each name, by
// cleaned name, leaving out eStargz's own entries; ok is false when the
// tar does not read.
func tarFiles(r io.Reader) (files map[string]string, ok bool) {
	files = map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, true
		}
		if err != nil {
			return nil, false
		}
		name := cleanName(h.Name)
		if name == estargz.PrefetchLandmark || name == estargz.NoPrefetchLandmark || name == estargz.TOCTarName {
			continue
		}
		hsh := sha256.New()
		if _, err := io.Copy(hsh, tr); err != nil {
			return nil, false
		}
		typ := h.Typeflag
		if typ == tar.TypeRegA {
			typ = tar.TypeReg
		}
		files[name] = fmt.Sprintf("%c %o %d:%d %q %d %x %v", typ, h.Mode, h.Uid, h.Gid, h.Linkname, h.Size, hsh.Sum(nil), h.PAXRecords)
	}
}

// unpackFiles decompresses rc as containerd's unpacker does and returns
// tarFiles of it.
func unpackFiles(t *testing.T, rc io.ReadCloser) (map[string]string, bool) {
	defer rc.Close()
	ds, err := cdcompression.DecompressStream(rc)
	if err != nil {
		return nil, false
	}
	defer ds.Close()
	return tarFiles(ds)
}

// FuzzStargzLayer converts a layer to eStargz, streamed or reordered by a
// prefetch list, from a tar the target gzips (raw false) or from bytes
// taken as the compressed blob (raw true). It must not panic or hang, and
// a conversion that succeeds must hold the source's files: what a full
// pull unpacks from the eStargz blob is what it unpacks from the source.
// The temporary directory must be empty afterwards but for the output.
func FuzzStargzLayer(f *testing.F) {
	for _, s := range tarSeeds(f) {
		f.Add(s, false, false)
		f.Add(s, false, true)
		f.Add(gz(s), true, false)
	}
	f.Add(append(gz(tarSeeds(f)[0]), gz([]byte("more"))...), true, true) // concatenated members
	f.Add(gz(tarSeeds(f)[0])[:40], true, false)                          // truncated gzip
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0}, true, false)          // zstd magic, then junk
	f.Fuzz(func(t *testing.T, data []byte, raw, listed bool) {
		blob := data
		if !raw {
			blob = gz(data)
		}
		var prefetch []string
		if listed {
			prefetch = []string{"/dup", "/d/", "/nothing"}
		}
		dir := t.TempDir()
		c := NewConverter(Options{TempDir: dir, MaxUncompressedSize: fuzzLimit, MaxEntries: fuzzEntries})
		l := static.NewLayer(blob, types.OCILayer)
		sl, err := c.stargzLayer(context.Background(), filepath.Join(dir, "0"), l, prefetch, newTracker(1, int64(len(blob)), nil), newBudget(c.opts))
		left, _ := os.ReadDir(dir)
		for _, e := range left {
			if e.Name() != "0.esgz" {
				t.Errorf("left behind: %s", e.Name())
			}
		}
		if err != nil {
			return
		}
		want, ok := unpackFiles(t, io.NopCloser(bytes.NewReader(blob)))
		if !ok {
			t.Fatal("converted a layer whose tar does not read")
		}
		out, err := sl.layer.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		got, ok := unpackFiles(t, out)
		if !ok {
			t.Fatal("the eStargz blob's tar does not read")
		}
		if len(got) != len(want) {
			t.Errorf("got %d files, want %d", len(got), len(want))
		}
		for n, w := range want {
			if got[n] != w {
				t.Errorf("%q: got %s, want %s", n, got[n], w)
			}
		}
	})
}
