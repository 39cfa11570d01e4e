package lazy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/fcd-dev/fcd/cache"
	"github.com/fcd-dev/fcd/instance/image"
	"github.com/fcd-dev/fcd/internal/regtest"
	"github.com/fcd-dev/fcd/internal/testenv"
	"github.com/fcd-dev/fcd/puller/gzindex"
	"github.com/fcd-dev/fcd/puller/lazyfs"
	"github.com/fcd-dev/fcd/puller/remote"
)

func randomBody(n int, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 3))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return string(b)
}

// startupLayer: three files an instance reads at start-up (a, c in part,
// b) between two it does not read (d, e), all incompressible, so a fetch
// of either unread file shows as 1 MiB more from the registry.
func startupLayer(t *testing.T) []byte {
	return tarLayer(t,
		file{"app/", "", 0o755}, file{"pad/", "", 0o755},
		file{"app/a", randomBody(20<<10, 1), 0o644},
		file{"pad/d", randomBody(1<<20, 2), 0o644},
		file{"app/c", randomBody(300<<10, 3), 0o644},
		file{"app/b", randomBody(10<<10, 4), 0o644},
		file{"pad/e", randomBody(1<<20, 5), 0o644},
	)
}

// freshImages is a new fcd's lazy path over an empty data dir, with the
// records of db: its own chunk cache, fetcher and layer manager.
func freshImages(t *testing.T, reg *regtest.Registry, db *bolt.DB, settle time.Duration) *Images {
	chunks, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatalf("cache: %v", err)
	}
	t.Cleanup(func() { chunks.Close() })
	f := remote.New(remote.Options{Cache: chunks})
	t.Cleanup(func() { f.Close() })
	m, err := lazyfs.NewManager(lazyfs.ManagerOptions{Root: t.TempDir(), CacheDir: t.TempDir(), IdleTimeout: time.Hour})
	if err != nil {
		t.Fatalf("manager: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	rs, err := OpenRecords(db)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := New(Options{Fetcher: f, Layers: m, Chunks: chunks, Hosts: authHosts(reg), Records: rs, RecordSettle: settle})
	if err != nil {
		t.Fatal(err)
	}
	return imgs
}

// startupReads reads what the instance reads at start-up: a, 4 KiB of c
// at 100 KiB, b.
func startupReads(t *testing.T, img image.Image) {
	t.Helper()
	mnt := t.TempDir()
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(img.LowerDirs(), ":")); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(mnt, 0)
	if _, err := os.ReadFile(filepath.Join(mnt, "app/a")); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(mnt, "app/c"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(make([]byte, 4096), 100<<10); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := os.ReadFile(filepath.Join(mnt, "app/b")); err != nil {
		t.Fatal(err)
	}
}

// TestStartupRecordReplay: the first start of an image records what it
// reads, in order, in fcd.db; a later fcd with an empty data dir but the
// same fcd.db prefetches exactly that before anything is read: the reads
// then fetch nothing, and neither unread file was fetched.
func TestStartupRecordReplay(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireFile(t, "/dev/fuse", "fuse3")
	reg := regtest.New(t)
	// Two layers: a read-only overlay needs at least two lower dirs.
	layers := [][]byte{startupLayer(t), tarLayer(t, file{"etc/", "", 0o755}, file{"etc/top", "top", 0o644})}
	ioRef, _ := pushIndexOnlyWith(t, reg, "rec-io", layers, gzindex.Options{ChunkSize: gzindex.MinChunkSize, Span: 4 << 10, MaxSpan: 16 << 10})
	esRef := pushEStargz(t, reg, "rec-es", layers)
	for _, tc := range []struct{ name, ref string }{{"index-only", ioRef}, {"estargz", esRef}} {
		t.Run(tc.name, func(t *testing.T) {
			db := openDB(t, filepath.Join(t.TempDir(), "fcd.db"))
			ctx := context.Background()

			// First start: recorded until Ready and a settle time that fcd
			// cuts short when it stops (Close).
			imgs := freshImages(t, reg, db, time.Hour)
			recorded := make(chan Record, 2)
			imgs.opts.Recorded = func(rec Record) { recorded <- rec }
			img, err := imgs.Prepare(ctx, tc.ref, image.Options{Key: "k1", Function: "f"})
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if img.(*view).replayDone != nil {
				t.Fatal("first start replays a record")
			}
			startupReads(t, img)
			if err := img.Ready(ctx); err != nil {
				t.Fatal(err)
			}
			rs, _ := OpenRecords(db)
			if _, ok, _ := rs.Get(img.Digest()); ok {
				t.Fatal("record saved before its settle time")
			}
			imgs.Close()
			img.Release(ctx)
			rec, ok, err := rs.Get(img.Digest())
			if !ok || err != nil {
				t.Fatalf("no record of %s after the first start: %v", img.Digest(), err)
			}
			if got := rec.Files(); fmt.Sprint(got) != "[/app/a /app/c /app/b]" {
				t.Fatalf("recorded files %q, want a, c, b in the order read", got)
			}
			select {
			case told := <-recorded:
				if told.Image != rec.Image || told.Source != rec.Source || len(told.Reads) != len(rec.Reads) {
					t.Errorf("Options.Recorded was told %+v, want the record saved, %+v", told, rec)
				}
			default:
				t.Error("Options.Recorded was not told of the record")
			}
			for _, rd := range rec.Reads {
				if rd.Layer != 0 || rd.N <= 0 || rd.Off < 0 {
					t.Errorf("bad read %+v", rd)
				}
				if rd.File == "app/c" && (rd.Off > 100<<10 || rd.Off+rd.N < 104<<10) && !slices.ContainsFunc(rec.Reads, func(o Read) bool {
					return o.File == "app/c" && o.Off <= 100<<10 && o.Off+o.N >= 104<<10
				}) {
					t.Errorf("the read of c at 100 KiB is not recorded: %+v", rec.Reads)
				}
			}

			// The lookups through the overlay (top layer first): app and
			// its files in the bottom layer, app absent from the top one.
			if len(rec.Lookups) != 2 {
				t.Fatalf("record has lookups of %d layers, want 2: %q", len(rec.Lookups), rec.Lookups)
			}
			for _, name := range []string{"app/a", "app/b", "app/c"} {
				if !slices.Contains(rec.Lookups[0], name) {
					t.Errorf("lookup of %s not recorded in the bottom layer: %q", name, rec.Lookups[0])
				}
			}
			if slices.Contains(rec.Lookups[0], "app") {
				t.Errorf("app, the parent of recorded names, is recorded too: %q", rec.Lookups[0])
			}
			if !slices.Contains(rec.Lookups[1], "app") {
				t.Errorf("the lookup of app, absent from the top layer, is not recorded: %q", rec.Lookups[1])
			}

			// Restart with an empty data dir: the record is replayed.
			blob := img.(*view).blobs[0].Descriptor().Digest
			reg.ResetLog()
			img, err = freshImages(t, reg, db, -1).Prepare(ctx, tc.ref, image.Options{Key: "k2", Function: "f"})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Release(ctx)
			v := img.(*view)
			if v.replayDone == nil {
				t.Fatal("second start does not replay the record")
			}
			<-v.replayDone
			fetched := reg.BytesSent(blob)
			if fetched == 0 {
				t.Fatal("the replay fetched nothing")
			}
			if fetched >= 1<<20 {
				t.Errorf("the replay fetched %d bytes of the layer, want under 1 MiB: a file outside the record was fetched", fetched)
			}
			if st := img.Stats(); st.Prefetch.Duration <= 0 || st.Prefetch.Offset < st.Mount.End() || st.PrefetchBytes == 0 {
				t.Errorf("Stats() after the replay = %+v: want a Prefetch span after Mount and its bytes", st)
			}
			requests := len(reg.BlobRequests(blob))
			lookups := layerLookups(v)
			startupReads(t, img)
			if got := len(reg.BlobRequests(blob)) - requests; got != 0 {
				t.Errorf("the start-up reads made %d more GETs after the replay, want 0: %v", got, reg.BlobRequests(blob)[requests:])
			}
			if got := layerLookups(v); !slices.Equal(got, lookups) {
				t.Errorf("the start-up lookups reached the layers after the replay: lookups per layer %v before, %v after; want none", lookups, got)
			}
		})
	}
}

// TestStartupRecordOfSource: an image without a record of its own
// replays the record of its source made in the other mode (the index-only
// form records the original image; the eStargz form names it in its
// manifest), and records its own meanwhile.
func TestStartupRecordOfSource(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireFile(t, "/dev/fuse", "fuse3")
	reg := regtest.New(t)
	layers := [][]byte{startupLayer(t), tarLayer(t, file{"etc/", "", 0o755}, file{"etc/top", "top", 0o644})}
	ioRef, _ := pushIndexOnlyWith(t, reg, "src-io", layers, gzindex.Options{ChunkSize: gzindex.MinChunkSize, Span: 4 << 10, MaxSpan: 16 << 10})
	db := openDB(t, filepath.Join(t.TempDir(), "fcd.db"))
	ctx := context.Background()
	img, err := freshImages(t, reg, db, -1).Prepare(ctx, ioRef, image.Options{Key: "k1", Function: "f"})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	startupReads(t, img)
	if err := img.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	img.Release(ctx)
	source := img.Digest()

	// The eStargz form of the same image, converted from it.
	var descs []ocispec.Descriptor
	for _, l := range layers {
		eb, err := estargz.Build(io.NewSectionReader(bytes.NewReader(l), 0, int64(len(l))))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(eb)
		eb.Close()
		d := reg.AddBlob(b)
		d.Annotations = map[string]string{estargz.TOCJSONDigestAnnotation: eb.TOCDigest().String()}
		descs = append(descs, d)
	}
	m := manifestOf(config(t, reg), descs...)
	m.Annotations = map[string]string{annotationSource: source.String()}
	putManifest(t, reg, "src-es", "v1_accelerated", m)

	imgs := freshImages(t, reg, db, -1)
	img, err = imgs.Prepare(ctx, reg.Ref("src-es")+":v1_accelerated", image.Options{Key: "k2", Function: "f"})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	defer img.Release(ctx)
	v := img.(*view)
	if v.replayDone == nil || v.rec == nil {
		t.Fatalf("replaying %v, recording %v; want both", v.replayDone != nil, v.rec != nil)
	}
	<-v.replayDone
	blob := descs[0].Digest
	requests := len(reg.BlobRequests(blob))
	startupReads(t, img)
	if got := len(reg.BlobRequests(blob)) - requests; got != 0 {
		t.Errorf("the start-up reads made %d more GETs after the replay of the source's record, want 0", got)
	}
	if err := img.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	rs, _ := OpenRecords(db)
	if rec, ok, err := rs.Get(img.Digest()); !ok || err != nil || rec.Source != source {
		t.Errorf("own record: %+v, %v, %v; want one with source %s", rec, ok, err, source)
	}
}

// TestReplayGroups cuts a record into replay groups: consecutive reads of
// a layer in use, at most replayGroupReads, long reads in pieces of their
// own unless they may be a whole file.
func TestReplayGroups(t *testing.T) {
	reads := []Read{
		{Layer: 0, File: "a", N: 10},
		{Layer: 0, File: "b", N: 10},
		{Layer: 1, File: "c", N: 10},
		{Layer: 2, File: "skipped", N: 10},
		{Layer: 0, File: "big", Off: 5, N: 2*replayPiece + 1},
		{Layer: 0, File: "d", N: 10},
		{Layer: 0, File: "whole", N: 3 * replayPiece},
		{Layer: 0, File: "e", N: 10},
	}
	for i := range replayGroupReads + 1 {
		reads = append(reads, Read{Layer: 1, File: fmt.Sprint("f", i), N: 1})
	}
	got := replayGroups(reads, []bool{true, true, false})
	var sum []string
	for _, g := range got {
		sum = append(sum, fmt.Sprintf("%d:%d:%s@%d+%d", g.layer, len(g.ranges), g.ranges[0].File, g.ranges[0].Off, g.ranges[0].N))
	}
	want := []string{
		"0:2:a@0+10",
		"1:1:c@0+10",
		fmt.Sprintf("0:1:big@5+%d", replayPiece),
		fmt.Sprintf("0:1:big@%d+%d", 5+replayPiece, replayPiece),
		fmt.Sprintf("0:1:big@%d+1", 5+2*replayPiece),
		"0:1:d@0+10",
		fmt.Sprintf("0:1:whole@0+%d", 3*replayPiece),
		"0:1:e@0+10",
		fmt.Sprintf("1:%d:f0@0+1", replayGroupReads),
		fmt.Sprintf("1:1:f%d@0+1", replayGroupReads),
	}
	if !slices.Equal(sum, want) {
		t.Errorf("groups:\n got %q\nwant %q", sum, want)
	}
}

// layerLookups returns the FUSE lookups each of v's layers has served.
func layerLookups(v *view) []int64 {
	var n []int64
	for _, l := range v.mounted {
		n = append(n, l.Stats().Lookups)
	}
	return n
}
