package remote_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"testing"

	"github.com/fcd-dev/fcd/cache"
	"github.com/fcd-dev/fcd/internal/regtest"
	"github.com/fcd-dev/fcd/puller/gzindex"
	"github.com/fcd-dev/fcd/puller/remote"
	"github.com/opencontainers/go-digest"
)

// TestIndexOverRegistry is the lazy path's read of a file, end to end
// below FUSE: a gzindex v2 index of an unmodified gzip layer, whose
// verified chunks come through a Blob from a misbehaving registry and go
// into the cache; a second reader is served from the cache alone.
func TestIndexOverRegistry(t *testing.T) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	files := map[string][]byte{}
	for i := range 40 {
		body := bytes.Repeat([]byte(fmt.Sprintf("file %d line\n", i)), 2000+i*1500)
		name := fmt.Sprintf("app/f%02d", i)
		files[name] = body
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write(body)
	}
	tw.Close()
	var zb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zb, gzip.BestSpeed)
	zw.Write(tb.Bytes())
	zw.Close()
	layer := zb.Bytes()

	x, err := gzindex.Build(context.Background(), bytes.NewReader(layer), gzindex.Options{ChunkSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	r := regtest.New(t)
	desc := r.AddBlob(layer)
	r.SetFaults(regtest.Faults{RefuseMultiRange: true, Redirect: true, Drops: 3, DropAfter: 10_000})
	c, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := remote.New(remote.Options{Cache: c, InitialBackoff: 1, MaxBackoff: 1000})
	defer f.Close()

	read := func(prio remote.Priority) (*remote.Blob, *gzindex.Reader) {
		b, err := f.Blob(r.Ref("fn/app:v1"), desc, r.Hosts(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return b, gzindex.NewReader(x, x.ChunkFetcher(func(ctx context.Context, off, n int64, want digest.Digest) ([]byte, error) {
			return b.ReadChunk(ctx, off, n, want, prio)
		}))
	}
	check := func(zr *gzindex.Reader) {
		for name, want := range files {
			e, ok := x.Lookup(name)
			if !ok {
				t.Fatalf("%s not in the index", name)
			}
			got, err := zr.ReadFile(context.Background(), e)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) || digest.FromBytes(got) != e.Digest {
				t.Fatalf("%s: wrong bytes", name)
			}
		}
	}
	b1, zr := read(remote.OnDemand)
	check(zr)
	if st := b1.Stats(); st.NetworkBytes == 0 || st.Retries == 0 {
		t.Fatalf("first reader: got stats %+v, want bytes from the network and retries", st)
	}
	b2, zr := read(remote.Prefetch)
	check(zr)
	if st := b2.Stats(); st.NetworkBytes != 0 || st.CacheBytes == 0 {
		t.Fatalf("second reader: got stats %+v, want everything from the cache", st)
	}
}
