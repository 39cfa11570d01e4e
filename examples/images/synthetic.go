package images

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// StartRead is the example whose image Synthetic builds around.
const StartRead = "startread"

// SyntheticOptions shape a large generated image. The zero value of each
// field means its default.
type SyntheticOptions struct {
	// Size is the uncompressed size of the data layers; 0 means 1 GiB.
	Size int64
	// Layers is the number of data layers; 0 means 4.
	Layers int
	// StartupFraction is the share of the data's bytes the function reads
	// before it listens; 0 means 0.03.
	StartupFraction float64
	// Seed makes the content reproducible; the same options give the same
	// image.
	Seed uint64
}

func (o SyntheticOptions) withDefaults() SyntheticOptions {
	if o.Size == 0 {
		o.Size = 1 << 30
	}
	if o.Layers == 0 {
		o.Layers = 4
	}
	if o.StartupFraction == 0 {
		o.StartupFraction = 0.03
	}
	return o
}

// key names the cached layout of an image built with these options.
func (o SyntheticOptions) key() string {
	return fmt.Sprintf("synthetic2-%d-%d-%g-%d", o.Size, o.Layers, o.StartupFraction, o.Seed)
}

// synthFile is one generated data file.
type synthFile struct {
	path string
	size int64
	kind fillKind
}

// fillKind is how a generated file's bytes compress.
type fillKind int

const (
	text   fillKind = iota // source and text: about 4:1
	binary                 // shared libraries, executables: about 2:1
	random                 // archives, wheels, media: incompressible
)

// Synthetic builds the startread example into an image that looks like a
// large application: data layers of many files, mostly small source-like
// text with a few large library-like binaries carrying most of the bytes
// and some incompressible archives, about 2:1 compressible overall as
// real images are, and /app/startup.list naming the files the function reads before it
// listens, spread over every layer. /app/data.list names every data file,
// for the run-phase reads.
//
// Building a gigabyte takes a while, so the image is kept as an OCI layout
// under cacheDir and reused when the same options ask again.
func Synthetic(ctx context.Context, opts SyntheticOptions, cacheDir string) (v1.Image, error) {
	opts = opts.withDefaults()
	dir := filepath.Join(cacheDir, opts.key())
	if p, err := layout.FromPath(dir); err == nil {
		if idx, err := p.ImageIndex(); err == nil {
			if m, err := idx.IndexManifest(); err == nil && len(m.Manifests) == 1 {
				return p.Image(m.Manifests[0].Digest)
			}
		}
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(cacheDir, "build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	img, err := buildSynthetic(ctx, opts, tmp)
	if err != nil {
		return nil, err
	}
	_ = os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return nil, err
	}
	if err := p.AppendImage(img); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("save %s: %w", dir, err)
	}
	return p.Image(mustDigest(img))
}

func mustDigest(img v1.Image) v1.Hash {
	d, err := img.Digest()
	if err != nil {
		panic(err)
	}
	return d
}

func buildSynthetic(ctx context.Context, opts SyntheticOptions, tmpDir string) (v1.Image, error) {
	rng := rand.New(rand.NewPCG(opts.Seed, 0x66636473796e7468))
	perLayer := opts.Size / int64(opts.Layers)
	layers := make([][]synthFile, opts.Layers)
	var startup, all []string
	for l := range layers {
		var used int64
		for i := 0; used < perLayer; i++ {
			f := synthFile{path: fmt.Sprintf("/data/l%d/pkg%03d/f%05d", l, i/200, i)}
			switch r := rng.Float64(); {
			case r < 0.04: // a few large binaries carry most of the bytes
				f.size, f.kind = 1<<20+rng.Int64N(7<<20), binary
				f.path += ".so"
			case r < 0.25:
				f.size, f.kind = 16<<10+rng.Int64N(240<<10), binary
				if rng.IntN(3) == 0 {
					f.kind = random
				}
				f.path += ".bin"
			default:
				f.size = 512 + rng.Int64N(32<<10)
				f.path += ".py"
			}
			f.size = min(f.size, perLayer-used)
			used += f.size
			layers[l] = append(layers[l], f)
			all = append(all, f.path)
		}
	}
	// The start-up set: random files of every layer until the fraction
	// is reached, read in a fixed order as an interpreter would.
	want := int64(float64(opts.Size) * opts.StartupFraction)
	var got int64
	for got < want {
		l := layers[rng.IntN(len(layers))]
		f := l[rng.IntN(len(l))]
		if f.size > 2<<20 && rng.IntN(4) != 0 {
			continue // start-up reads mostly small modules
		}
		startup = append(startup, f.path)
		got += f.size
	}
	startup = dedup(startup)

	bin, err := buildBinaryBytes(ctx, StartRead)
	if err != nil {
		return nil, err
	}
	base, err := tarballLayer(func(tw *tar.Writer) error {
		if err := writeDirs(tw); err != nil {
			return err
		}
		for _, f := range []struct {
			name string
			mode int64
			data []byte
		}{
			{"app/" + StartRead, 0o755, bin},
			{"app/startup.list", 0o644, []byte(strings.Join(startup, "\n") + "\n")},
			{"app/data.list", 0o644, []byte(strings.Join(all, "\n") + "\n")},
		} {
			if err := writeFile(tw, f.name, f.mode, f.data); err != nil {
				return err
			}
		}
		return nil
	}, tmpDir)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, base)
	if err != nil {
		return nil, err
	}
	for l, files := range layers {
		seed := opts.Seed*1000 + uint64(l)
		layer, err := tarballLayer(func(tw *tar.Writer) error { return writeSynthLayer(tw, files, seed) }, tmpDir)
		if err != nil {
			return nil, err
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			return nil, err
		}
	}
	return withAppConfig(img, StartRead)
}

func dedup(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, p := range s {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// tarballLayer writes a layer's tar to a temporary file and returns it as
// a gzip layer read from that file, so a gigabyte never sits in memory.
func tarballLayer(write func(*tar.Writer) error, tmpDir string) (v1.Layer, error) {
	f, err := os.CreateTemp(tmpDir, "layer-*.tar")
	if err != nil {
		return nil, err
	}
	path := f.Name()
	tw := tar.NewWriter(f)
	err = write(tw)
	if cerr := tw.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	// Compress once now, so the layout write below does not compress again
	// and the temporary tar can go.
	l, err := tarball.LayerFromFile(path)
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	gz, err := os.CreateTemp(tmpDir, "layer-*.tar.gz")
	if err != nil {
		rc.Close()
		os.Remove(path)
		return nil, err
	}
	_, err = io.Copy(gz, rc)
	rc.Close()
	os.Remove(path)
	if cerr := gz.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(gz.Name())
		return nil, err
	}
	return tarball.LayerFromFile(gz.Name())
}

func writeDirs(tw *tar.Writer) error {
	for _, d := range []struct {
		name string
		mode int64
	}{{"app/", 0o755}, {"etc/", 0o755}, {"tmp/", 0o1777}} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode, ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// words is the vocabulary compressible files are written in: source-like
// text compresses about 4:1, as Python and JavaScript trees do.
var words = strings.Fields(`def class import return self None True False if else elif for in while
try except finally with as lambda yield from raise assert global pass break continue and or not is
numpy array dtype shape value index frame series module package version config request response
handler client server logger error buffer stream reader writer parse format encode decode`)

func writeSynthLayer(tw *tar.Writer, files []synthFile, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 0x6c61796572))
	dirs := map[string]bool{}
	var names []string
	for _, f := range files {
		for d := filepath.Dir(f.path); d != "/"; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	for d := range dirs {
		names = append(names, d)
	}
	sort.Strings(names)
	for _, d := range names {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
	}
	buf := make([]byte, 64<<10)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(f.path, "/"), Mode: 0o644, Size: f.size, ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		for left := f.size; left > 0; {
			n := min(left, int64(len(buf)))
			fill(rng, buf[:n], f.kind)
			if _, err := tw.Write(buf[:n]); err != nil {
				return err
			}
			left -= n
		}
	}
	return nil
}

func fill(rng *rand.Rand, b []byte, kind fillKind) {
	switch kind {
	case random:
		fillRandom(rng, b)
	case binary:
		// Code and data sections: runs of noise between runs of
		// structure, as a compiled library is.
		for i := 0; i < len(b); i += 8 << 10 {
			end := min(i+8<<10, len(b))
			if (i/(8<<10))%2 == 0 {
				fillRandom(rng, b[i:end])
			} else {
				fillText(rng, b[i:end])
			}
		}
	default:
		fillText(rng, b)
	}
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

func fillText(rng *rand.Rand, b []byte) {
	for i := 0; i < len(b); {
		w := words[rng.IntN(len(words))]
		i += copy(b[i:], w)
		if i < len(b) {
			b[i] = " \n"[rng.IntN(8)/7]
			i++
		}
	}
}
