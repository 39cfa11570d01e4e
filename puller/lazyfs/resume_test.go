package lazyfs

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/fcd-dev/fcd/puller/gzindex"
	"github.com/fcd-dev/fcd/puller/remote"
)

// resumeLayer is an index-only layer holding one large file, f, with a
// single checkpoint: every read of f decodes from the stream's start
// unless it resumes from bytes decoded before it.
func resumeLayer(t *testing.T) (*GzIndex, []byte) {
	t.Helper()
	var data []byte
	for i := 0; len(data) < 6<<20; i++ {
		// Text with numbers: compressible, and many deflate blocks.
		data = fmt.Appendf(data, "line %d of the file, %x; ", i, i*i*7919)
	}
	gz := gzipBytes(t, tarBytes(t, []tarEntry{fileE("f", 0o644, data)}))
	x, err := gzindex.Build(context.Background(), bytes.NewReader(gz), gzindex.Options{Span: 64 << 20, MaxSpan: 64 << 20, Version: 3})
	if err != nil {
		t.Fatal(err)
	}
	if x.Checkpoints() != 1 {
		t.Fatalf("got %d checkpoints, want 1", x.Checkpoints())
	}
	idx, err := x.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	desc := ocispec.Descriptor{Digest: digest.FromBytes(gz), Size: int64(len(gz))}
	src, err := OpenLayer(context.Background(), desc, &memBlob{data: gz}, LayerOptions{Index: idx})
	if err != nil {
		t.Fatal(err)
	}
	return src.(*GzIndex), data
}

// TestGzIndexResume reads a large file from start to end in small reads,
// as the kernel or a prefetch does: each miss resumes from the bytes the
// one before decoded, so the file is decoded about once, not once per
// miss from the checkpoint at its start.
func TestGzIndexResume(t *testing.T) {
	s, data := resumeLayer(t)
	p := make([]byte, 64<<10)
	for off := 0; off < len(data); off += len(p) {
		n, err := s.ReadAt(context.Background(), "f", p, int64(off), remote.Prefetch)
		if n == 0 || !bytes.Equal(p[:n], data[off:off+n]) {
			t.Fatalf("read at %d: got %d bytes (%v), want the file's", off, n, err)
		}
	}
	st := s.decodeStats()
	if st.Resumed == 0 {
		t.Errorf("got no resumed misses of %d", st.Misses)
	}
	// From the checkpoint each time, the misses 1 MiB apart
	// (gzReadahead) would decode 1+2+...+6 MiB.
	if st.Decoded > 2*int64(len(data)) {
		t.Errorf("decoded %d bytes to read %d", st.Decoded, len(data))
	}
}

// TestGzIndexResumeConcurrent reads a large file as pieces at once, as a
// start-up replay does, with on-demand reads among them: the bytes are
// the file's whichever misses wait for others and resume.
func TestGzIndexResumeConcurrent(t *testing.T) {
	s, data := resumeLayer(t)
	const piece = 512 << 10
	var wg sync.WaitGroup
	errs := make(chan error, len(data)/piece+1)
	for off := 0; off < len(data); off += piece {
		prio := remote.Prefetch
		if off/piece%3 == 2 {
			prio = remote.OnDemand
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := make([]byte, min(piece, len(data)-off))
			n, err := s.ReadAt(context.Background(), "f", p, int64(off), prio)
			if n != len(p) || !bytes.Equal(p, data[off:off+n]) {
				errs <- fmt.Errorf("piece at %d: got %d bytes (%v), want the file's %d", off, n, err, len(p))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestDecodesCovering checks which decode under way a miss waits for.
func TestDecodesCovering(t *testing.T) {
	var d decodes
	if d.covering(0, 10) != nil {
		t.Fatal("empty: got a decode")
	}
	done := d.add(100, 200)
	for _, c := range []struct {
		from, end int64
		want      bool
	}{{100, 200, true}, {150, 160, true}, {99, 150, false}, {150, 201, false}} {
		if got := d.covering(c.from, c.end) != nil; got != c.want {
			t.Errorf("covering(%d, %d) with [100, 200) under way: got %v, want %v", c.from, c.end, got, c.want)
		}
	}
	ch := d.covering(100, 200)
	done()
	<-ch // closed when the decode ends
	if d.covering(100, 200) != nil {
		t.Fatal("ended decode still covers")
	}
}
