package gzindex

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/internal/testenv"
)

// The layer benchmarks need large inputs; they build them once under
// GZINDEX_BENCH_DIR (default the system temp dir) and reuse them.
//
//	go test ./puller/gzindex -run '^$' -bench Layer -benchtime 1x -timeout 60m
func benchDir() string {
	if d := os.Getenv("GZINDEX_BENCH_DIR"); d != "" {
		return d
	}
	return os.TempDir()
}

// pigzOrGzip compresses r into the file at path.
func compressTo(b *testing.B, path string, write func(io.Writer) error) {
	pigz := testenv.RequireCommand(b, "pigz", "pigz")
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(pigz, "-6", "-c")
	cmd.Stdout = f
	w, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	werr := write(w)
	w.Close()
	if err := cmd.Wait(); err != nil || werr != nil {
		b.Fatalf("compress: %v %v", err, werr)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
}

// generatedLayer is a ≥1 GB layer: 60,000 small files cut from real text
// and binaries, 2,000 medium files, and a few large binary and
// incompressible files.
func generatedLayer(b *testing.B) string {
	path := filepath.Join(benchDir(), "gzindex-bench-generated-v1.tar.gz")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	text := readPool(b, []string{"/usr/local/go/src", "/usr/share/doc", "/usr/share/perl5"}, 64<<20, false)
	bin := readPool(b, []string{"/usr/lib/x86_64-linux-gnu", "/usr/bin", "/usr/local/go/pkg/tool"}, 64<<20, true)
	chacha := rand.NewChaCha8([32]byte{1})
	rng := rand.New(chacha)
	cut := func(pool []byte, n int) []byte {
		off := rng.IntN(len(pool) - n)
		return pool[off : off+n]
	}
	compressTo(b, path, func(w io.Writer) error {
		tw := tar.NewWriter(w)
		add := func(name string, data []byte) error {
			if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}); err != nil {
				return err
			}
			_, err := tw.Write(data)
			return err
		}
		random := make([]byte, 48<<20)
		for i := range 60000 {
			n := 256 + rng.IntN(12<<10)
			pool := text
			if i%3 == 0 {
				pool = bin
			}
			var data []byte
			if i%10 == 9 {
				data = random[:n]
				chacha.Read(data)
			} else {
				data = cut(pool, n)
			}
			if err := add(fmt.Sprintf("small/%03d/file-%05d", i%500, i), data); err != nil {
				return err
			}
			if i%6000 == 0 {
				for j := range 200 {
					n := 64<<10 + rng.IntN(400<<10)
					data := cut(text, n)
					switch j % 4 {
					case 1:
						data = cut(bin, n)
					case 3:
						data = random[:n]
						chacha.Read(data)
					}
					if err := add(fmt.Sprintf("medium/%d/%d", i, j), data); err != nil {
						return err
					}
				}
			}
		}
		for i := range 4 {
			var data []byte
			if i%2 == 0 {
				data = cut(bin, 60<<20)
			} else {
				data = random
				chacha.Read(data)
			}
			if err := add(fmt.Sprintf("large/%d", i), data); err != nil {
				return err
			}
		}
		return tw.Close()
	})
	return path
}

func readPool(b *testing.B, roots []string, limit int, binary bool) []byte {
	var pool []byte
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || len(pool) >= limit || !d.Type().IsRegular() {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil || len(data) < 64 || (bytes.IndexByte(data[:64], 0) >= 0) != binary {
				return nil
			}
			pool = append(pool, data[:min(len(data), 4<<20)]...)
			return nil
		})
	}
	if len(pool) < 16<<20 {
		b.Skipf("not enough real files for the pool (%d bytes)", len(pool))
	}
	return pool
}

// treeLayer is a layer of a real directory tree (the Go distribution).
func treeLayer(b *testing.B) string {
	tarBin := testenv.RequireCommand(b, "tar", "tar")
	testenv.RequireFile(b, "/usr/local/go/src", "golang")
	path := filepath.Join(benchDir(), "gzindex-bench-gotree-v1.tar.gz")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	compressTo(b, path, func(w io.Writer) error {
		cmd := exec.Command(tarBin, "-cf", "-", "-C", "/usr/local", "go")
		cmd.Stdout = w
		return cmd.Run()
	})
	return path
}

func BenchmarkLayer(b *testing.B) {
	layers := map[string]func(*testing.B) string{"generated": generatedLayer, "gotree": treeLayer}
	for _, name := range []string{"generated", "gotree"} {
		b.Run(name, func(b *testing.B) {
			path := layers[name](b)
			z, err := os.ReadFile(path)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				benchLayer(b, name, z)
			}
		})
	}
}

type policy struct {
	name string
	opts Options
}

var policies = []policy{
	{"file-start 512K (default)", Options{}},
	{"file-start 256K", Options{Span: 256 << 10}},
	{"file-start 1M", Options{Span: 1 << 20}},
	{"fixed 4M (SOCI)", Options{Span: -1, MaxSpan: 4 << 20}},
	{"fixed 4M, whole windows", Options{Span: -1, MaxSpan: 4 << 20, WindowLevel: -100}},
}

// cpuTime is the CPU time of the calling thread (who = 1, RUSAGE_THREAD)
// or of the process (who = 0). Throughputs below divide by it, so that
// other work on a shared machine does not skew them.
func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// timed runs f on one locked thread and returns its wall and CPU time.
func timed(f func()) (wall, cpu time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	w0, c0 := time.Now(), cpuTime(1)
	f()
	return time.Since(w0), cpuTime(1) - c0
}

func benchLayer(b *testing.B, name string, z []byte) {
	ctx := context.Background()
	mbps := func(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }
	// Decoder alone, compress/gzip alone, on the same blob.
	var usize int64
	_, ours := timed(func() { usize, _ = io.Copy(io.Discard, newStream(bytes.NewReader(z), inChunk, outChunk, false)) })
	_, std := timed(func() {
		zr, _ := gzip.NewReader(bytes.NewReader(z))
		io.Copy(io.Discard, zr)
	})
	b.Logf("%s: %.0f MB uncompressed, %.0f MB compressed (ratio %.2f)", name, float64(usize)/1e6, float64(len(z))/1e6, float64(usize)/float64(len(z)))
	b.Logf("  inflate only, per CPU-second: gzindex %.0f MB/s, compress/gzip %.0f MB/s (uncompressed)", mbps(usize, ours), mbps(usize, std))

	for _, p := range policies {
		opts := p.opts
		if opts.WindowLevel == -100 {
			opts.WindowLevel = 0
			noTrim = true
		}
		var x *Index
		var err error
		wall, cpu := timed(func() { x, err = Build(ctx, bytes.NewReader(z), opts) })
		noTrim = false
		if err != nil {
			b.Fatal(err)
		}
		data, _ := x.MarshalBinary()
		if x, err = Load(data, x.Digest); err != nil {
			b.Fatal(err)
		}
		fetched, ratio, p50, p99 := smallReads(b, x, z)
		b.Logf("  %-26s build %4.0f MB/s per CPU-s (%4.0f wall) | index %5d KB = %.3f%% of uncompressed, %.3f%% of compressed, %4d checkpoints | 2-8 KiB file reads: fetched p50 %4d KB p99 %4d KB, decoded/returned %4.0f, time p50 %v p99 %v",
			p.name, mbps(usize, cpu), mbps(usize, wall), len(data)>>10, 100*float64(len(data))/float64(usize), 100*float64(len(data))/float64(len(z)), x.Checkpoints(),
			fetched[0]>>10, fetched[1]>>10, ratio, p50, p99)
		if p.name == policies[0].name {
			b.ReportMetric(mbps(usize, cpu), "build-MB/cpu-s")
			b.ReportMetric(100*float64(len(data))/float64(usize), "index-%")
			b.ReportMetric(float64(fetched[0])/1024, "fetch-p50-KiB")
		}
	}
	// Two layers at once on the machine's cores.
	var wg sync.WaitGroup
	w0, c0 := time.Now(), cpuTime(0)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := Build(ctx, bytes.NewReader(z), Options{}); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	wall, cpu := time.Since(w0), cpuTime(0)-c0
	b.Logf("  two layers at once: %.0f MB uncompressed in %v wall, %v CPU (load average now %s)", 2*float64(usize)/1e6, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), loadavg())
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return string(bytes.TrimSpace(b))
}

// smallReads reads up to 2,000 files of 2-8 KiB through the index from a
// local blob and reports the fetched bytes (p50, p99), decoded bytes per
// returned byte, and time per read (p50, p99).
func smallReads(b *testing.B, x *Index, z []byte) (fetched [2]int64, ratio float64, p50, p99 time.Duration) {
	var files []*Entry
	for i := range x.Entries {
		if e := &x.Entries[i]; e.IsRegular() && e.Size >= 2<<10 && e.Size <= 8<<10 {
			files = append(files, e)
		}
	}
	rng := rand.New(rand.NewPCG(5, 5))
	rng.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	files = files[:min(len(files), 2000)]
	var fs, times []int64
	var returned, decoded int64
	buf := make([]byte, 8<<10)
	for _, e := range files {
		r := NewReader(x, FileFetcher(bytes.NewReader(z)))
		start := time.Now()
		n, err := r.ReadFileAt(context.Background(), e, buf[:e.Size], 0)
		times = append(times, int64(time.Since(start)))
		if err != nil {
			b.Fatal(err)
		}
		f, d := r.Stats()
		fs = append(fs, f)
		returned += int64(n)
		decoded += d
	}
	if len(files) == 0 {
		return
	}
	slices.Sort(fs)
	slices.Sort(times)
	q := func(v []int64, p float64) int64 { return v[int(float64(len(v)-1)*p)] }
	return [2]int64{q(fs, .5), q(fs, .99)}, float64(decoded) / float64(returned),
		time.Duration(q(times, .5)).Round(time.Microsecond), time.Duration(q(times, .99)).Round(time.Microsecond)
}

// benchBlob is the blob named by GZINDEX_BENCH_BLOB, else the Go tree layer.
func benchBlob(b *testing.B) []byte {
	path := os.Getenv("GZINDEX_BENCH_BLOB")
	if path == "" {
		path = treeLayer(b)
	}
	z, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return z
}

// BenchmarkInflate compares the decoder with compress/gzip; MB/s are
// uncompressed bytes.
func BenchmarkInflate(b *testing.B) {
	z := benchBlob(b)
	s := newStream(bytes.NewReader(z), inChunk, outChunk, false)
	usize, _ := io.Copy(io.Discard, s)
	b.Run("gzindex", func(b *testing.B) {
		b.SetBytes(usize)
		for b.Loop() {
			io.Copy(io.Discard, newStream(bytes.NewReader(z), inChunk, outChunk, true))
		}
	})
	b.Run("compress-gzip", func(b *testing.B) {
		b.SetBytes(usize)
		for b.Loop() {
			zr, _ := gzip.NewReader(bytes.NewReader(z))
			io.Copy(io.Discard, zr)
		}
	})
}

// BenchmarkBuild measures Build; MB/s are uncompressed bytes.
func BenchmarkBuild(b *testing.B) {
	z := benchBlob(b)
	x, err := Build(context.Background(), bytes.NewReader(z), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(x.Size)
	for b.Loop() {
		if _, err := Build(context.Background(), bytes.NewReader(z), Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
