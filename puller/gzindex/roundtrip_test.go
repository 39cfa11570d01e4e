package gzindex

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/fcd-dev/fcd/internal/testenv"
)

// layerFixture is an uncompressed tar of a real directory tree plus
// generated files, and the same tree extracted by GNU tar.
type layerFixture struct {
	tar []byte
	dir string // extraction
}

// makeFixture tars up to limit bytes of regular files from each root, in
// a fixed order, and a generated tree with incompressible files, links,
// long names and xattrs.
func makeFixture(t testing.TB, roots []string, limit int64) *layerFixture {
	t.Helper()
	tarBin := testenv.RequireCommand(t, "tar", "tar")
	tmp := t.TempDir()
	gen := filepath.Join(tmp, "gen")
	writeGenerated(t, gen)

	var list []string
	for _, root := range roots {
		var total int64
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || total > limit {
				return nil
			}
			if d.IsDir() {
				list = append(list, p)
				return nil
			}
			if info, err := d.Info(); err == nil && info.Size() <= 2<<20 && (info.Mode().IsRegular() || info.Mode()&fs.ModeSymlink != 0) {
				list = append(list, p)
				total += info.Size()
			}
			return nil
		})
	}
	listFile := filepath.Join(tmp, "list")
	var lb strings.Builder
	for _, p := range list {
		lb.WriteString(strings.TrimPrefix(p, "/") + "\n")
	}
	os.WriteFile(listFile, []byte(lb.String()), 0o644)
	var out bytes.Buffer
	cmd := exec.Command(tarBin, "--xattrs", "--no-recursion", "-cf", "-", "-C", "/", "-T", listFile, "-C", tmp, "--recursion", "gen")
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tar: %v", err)
	}
	dir := filepath.Join(tmp, "x")
	os.Mkdir(dir, 0o755)
	x := exec.Command(tarBin, "--xattrs", "-xf", "-", "-C", dir)
	x.Stdin = bytes.NewReader(out.Bytes())
	if b, err := x.CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v: %s", err, b)
	}
	return &layerFixture{tar: out.Bytes(), dir: dir}
}

func writeGenerated(t testing.TB, dir string) {
	r := rand.New(rand.NewPCG(7, 7))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	long := filepath.Join(dir, strings.Repeat("long-directory-name/", 8))
	must(os.MkdirAll(long, 0o755))
	big := 3 << 20
	if raceEnabled {
		big = 600 << 10
	}
	must(os.WriteFile(filepath.Join(dir, "random-3m"), random(big), 0o644))
	must(os.WriteFile(filepath.Join(dir, "random-100k"), random(100<<10), 0o600))
	must(os.WriteFile(filepath.Join(dir, "zeros-2m"), make([]byte, 2<<20), 0o644))
	must(os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644))
	must(os.WriteFile(filepath.Join(long, "file-with-a-long-name.txt"), []byte("deep\n"), 0o644))
	for i := range 200 {
		must(os.WriteFile(filepath.Join(dir, "small-"+string(rune('a'+i%26))+strings.Repeat("x", i%7)+"-"+itoa(i)), random(r.IntN(9000)), 0o644))
	}
	must(os.Link(filepath.Join(dir, "random-100k"), filepath.Join(dir, "hardlink")))
	must(os.Symlink("random-3m", filepath.Join(dir, "symlink")))
	// Extended attributes: not every file system has user xattrs.
	_ = syscall.Setxattr(filepath.Join(dir, "empty"), "user.fcd", []byte("value"), 0)
}

func itoa(i int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
		if i == 0 {
			return string(b)
		}
	}
}

// compressors produce gzip layers the way registries meet them.
func compressors(t *testing.T) map[string]func([]byte) []byte {
	run := func(name string, args ...string) func([]byte) []byte {
		return func(in []byte) []byte {
			testenv.RequireCommand(t, name, name) // the Debian packages are named like the commands
			cmd := exec.Command(name, args...)
			cmd.Stdin = bytes.NewReader(in)
			var out bytes.Buffer
			cmd.Stdout = &out
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s %v: %v", name, args, err)
			}
			return out.Bytes()
		}
	}
	goGzip := func(level int) func([]byte) []byte {
		return func(in []byte) []byte { return gzipBytes(t, in, level) }
	}
	return map[string]func([]byte) []byte{
		"go-1":        goGzip(1),
		"go-6":        goGzip(6),
		"go-9":        goGzip(9),
		"go-huffman":  goGzip(gzip.HuffmanOnly),
		"gzip-1":      run("gzip", "-1", "-c"),
		"gzip-9":      run("gzip", "-9", "-c"),
		"pigz":        run("pigz", "-c"),
		"pigz-i":      run("pigz", "-i", "-c"),
		"python-zlib": run("python3", "-c", "import sys,zlib\nc=zlib.compressobj(6,zlib.DEFLATED,31)\nsys.stdout.buffer.write(c.compress(sys.stdin.buffer.read())+c.flush())"),
		"multi-member": func(in []byte) []byte {
			// Members split at arbitrary points, mixed producers.
			a, b := len(in)/3, len(in)/3*2+17
			out := gzipBytes(t, in[:a], 6)
			out = append(out, run("gzip", "-c")(in[a:b])...)
			out = append(out, gzipBytes(t, nil, 6)...)
			return append(out, gzipBytes(t, in[b:], 1)...)
		},
	}
}

var fixtureRoots = []string{"/usr/share/perl5", "/usr/share/doc", "/usr/share/zoneinfo", "/usr/lib/x86_64-linux-gnu", "/usr/bin"}

func TestRoundTrip(t *testing.T) {
	limit := int64(4 << 20)
	if raceEnabled {
		limit = 256 << 10
	}
	fx := makeFixture(t, fixtureRoots, limit)
	t.Logf("fixture: %d MB tar", len(fx.tar)>>20)
	ctx := context.Background()
	comps := compressors(t)
	names := make([]string, 0, len(comps))
	for n := range comps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			z := comps[name](fx.tar)
			opts := Options{Span: 64 << 10, MaxSpan: 256 << 10}
			if name == "go-6" {
				opts = Options{}
			}
			x, err := Build(ctx, bytes.NewReader(z), opts)
			if err != nil {
				t.Fatalf("build: %v", err)
			}
			data, err := x.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if x, err = Load(data, x.Digest); err != nil {
				t.Fatalf("load: %v", err)
			}
			t.Logf("%s: %d entries, %d checkpoints, index %d bytes (%.2f%% of %d compressed)", name, len(x.Entries), len(x.checkpoints), len(data), 100*float64(len(data))/float64(len(z)), len(z))
			if x.Size != int64(len(fx.tar)) {
				t.Fatalf("got size %d, want %d", x.Size, len(fx.tar))
			}
			checkFiles(t, x, z, fx.dir)
			checkRandomReads(t, x, z, fx.tar)
		})
	}
}

// checkFiles compares every regular file read through the index with the
// file GNU tar extracted, and metadata with lstat.
func checkFiles(t *testing.T, x *Index, z []byte, dir string) {
	ctx := context.Background()
	r := NewReader(x, FileFetcher(bytes.NewReader(z)))
	files := 0
	for i := range x.Entries {
		e := &x.Entries[i]
		p := filepath.Join(dir, cleanName(e.Name))
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatalf("%s: %v", e.Name, err)
		}
		if e.Type == '2' {
			if target, _ := os.Readlink(p); target != e.Linkname {
				t.Fatalf("%s: got link target %q, want %q", e.Name, e.Linkname, target)
			}
			continue
		}
		if fi.Mode().Perm() != fs.FileMode(e.Mode).Perm() {
			t.Fatalf("%s: got mode %o, want %o", e.Name, e.Mode, fi.Mode().Perm())
		}
		if buf := make([]byte, 64); strings.HasSuffix(e.Name, "gen/empty") {
			// Set by writeGenerated where the file system allows it.
			if n, err := syscall.Getxattr(p, "user.fcd", buf); err == nil && e.Xattrs()["user.fcd"] != string(buf[:n]) {
				t.Fatalf("%s: got xattrs %v, want user.fcd=%q", e.Name, e.Xattrs(), buf[:n])
			}
		}
		if !e.IsRegular() && e.Type != '1' {
			continue
		}
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadFile(ctx, e)
		if err != nil {
			t.Fatalf("%s: %v", e.Name, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: got %d bytes differing at %d, want %d bytes", e.Name, len(got), commonPrefix(got, want), len(want))
		}
		files++
	}
	if files < 100 {
		t.Fatalf("got %d files compared, want at least 100", files)
	}
}

// checkRandomReads compares random (offset, length) reads of the
// uncompressed stream, including reads past its end.
func checkRandomReads(t *testing.T, x *Index, z, tarBytes []byte) {
	ctx := context.Background()
	r := NewReader(x, FileFetcher(bytes.NewReader(z)))
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := range 150 {
		off := rnd.Int64N(int64(len(tarBytes)))
		n := rnd.IntN(1 << (4 + i%17))
		if i%10 == 0 {
			off = int64(len(tarBytes)) - int64(rnd.IntN(1000))
		}
		p := make([]byte, n)
		got, err := r.ReadAt(ctx, p, off)
		want := tarBytes[off:min(off+int64(n), int64(len(tarBytes)))]
		if got != len(want) || (got < n) != (err == io.EOF) || (got == n && err != nil) {
			t.Fatalf("ReadAt(%d, %d): got n=%d err=%v, want n=%d", n, off, got, err, len(want))
		}
		if !bytes.Equal(p[:got], want) {
			t.Fatalf("ReadAt(%d, %d): got bytes differing at %d", n, off, commonPrefix(p[:got], want))
		}
	}
}
