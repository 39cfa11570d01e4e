// Package bigimage builds large container images whose files look like
// real ones, for the acceleration and cold-start benchmarks. Both start
// from a Debian bookworm userland (mmdebstrap, minbase) as the first
// layer:
//
//   - Python (Load): a scientific Python stack installed from Debian
//     (numpy, scipy, pandas, matplotlib, scikit-learn, OpenCV, ...) as the
//     second layer, which holds what that installation added or changed,
//     as an "apt-get install" layer would; 2.45 GB uncompressed.
//   - Node (LoadNode): Debian's nodejs and npm as the second layer and the
//     node_modules of about a hundred popular npm packages with their
//     dependencies (node/package.json, several hundred packages, installed
//     by the host's npm) under /app as the third.
//
// Function returns either one with a small last layer holding the
// function's server (python/server.py, node/server.js), which loads a
// few dozen of the installed libraries at start, then serves on
// 0.0.0.0:9000, and whose /run?seconds=N reads the image's files for the
// run-phase benchmark.
//
// Text (sources, docs), binaries (shared libraries, extensions) and
// already-compressed files (.gz docs, images, fonts) mix as in real
// images. Layers are gzip-compressed at gzip's default level, as docker
// and go-containerregistry push them.
//
// The images are built once into OCI layouts under a cache directory
// (DefaultDir) and reused; they are never committed. Building needs root,
// mmdebstrap (Debian package mmdebstrap), access to deb.debian.org and,
// for Node, npm and the npm registry.
package bigimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// DefaultDir is the cache directory of built images.
const DefaultDir = "/var/cache/fcd-bench"

// Suite and Mirror are the Debian release and mirror mmdebstrap installs.
const (
	Suite  = "bookworm"
	Mirror = "http://deb.debian.org/debian"
)

// Packages is the Python image's second layer's installation.
var Packages = []string{
	"python3-numpy", "python3-scipy", "python3-pandas", "python3-matplotlib",
	"python3-sklearn", "python3-sympy", "python3-skimage", "python3-opencv",
	"python3-boto3", "python3-django", "python3-h5py", "python3-networkx",
	"python3-lxml", "python3-pil", "python3-requests", "python3-yaml",
	"python3-jinja2", "python3-tables", "python3-statsmodels",
	"python3-astropy",
}

// NodePackages is the Node image's second layer's installation; its third
// holds the npm packages of node/package.json.
var NodePackages = []string{"nodejs", "npm", "ca-certificates"}

// recipe is how one image is built; layout names its directory under
// the cache dir: change it when the recipe changes.
type recipe struct {
	layout   string
	full     string   // the mmdebstrap tar with packages, under work/
	packages []string // installed on top of minbase
	npm      bool     // a third layer: node/package.json installed under /app
	cmd      []string
}

var (
	python = recipe{layout: "bigimage-python-v1", full: "full.tar", packages: Packages, cmd: []string{"python3"}}
	node   = recipe{layout: "bigimage-node-v1", full: "node-full.tar", packages: NodePackages, npm: true, cmd: []string{"node"}}
)

// Load returns the Python image from dir's cache (DefaultDir when empty),
// building it first if needed. Progress goes to log.
func Load(ctx context.Context, dir string, log io.Writer) (v1.Image, error) {
	return load(ctx, python, dir, log)
}

// LoadNode returns the Node.js image from dir's cache (DefaultDir when
// empty), building it first if needed. Progress goes to log.
func LoadNode(ctx context.Context, dir string, log io.Writer) (v1.Image, error) {
	return load(ctx, node, dir, log)
}

func load(ctx context.Context, r recipe, dir string, log io.Writer) (v1.Image, error) {
	if dir == "" {
		dir = DefaultDir
	}
	path := filepath.Join(dir, r.layout)
	if img, err := cached(path); err == nil {
		return img, nil
	}
	if err := build(ctx, r, dir, path, log); err != nil {
		return nil, err
	}
	return cached(path)
}

func cached(path string) (v1.Image, error) {
	p, err := layout.FromPath(path)
	if err != nil {
		return nil, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("bigimage: %s holds %d images, want 1", path, len(m.Manifests))
	}
	return idx.Image(m.Manifests[0].Digest)
}

func build(ctx context.Context, r recipe, dir, path string, log io.Writer) error {
	if os.Geteuid() != 0 {
		return errors.New("bigimage: building needs root (mmdebstrap)")
	}
	mmdebstrap, err := exec.LookPath("mmdebstrap")
	if err != nil {
		return fmt.Errorf("bigimage: %w: apt-get install mmdebstrap", err)
	}
	work := filepath.Join(dir, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	base, full := filepath.Join(work, "base.tar"), filepath.Join(work, r.full)
	for _, s := range []struct {
		out  string
		args []string
	}{
		{base, nil},
		{full, []string{"--include=" + strings.Join(r.packages, ",")}},
	} {
		if _, err := os.Stat(s.out); err == nil {
			continue
		}
		fmt.Fprintf(log, "bigimage: mmdebstrap %s %v\n", s.out, s.args)
		args := append([]string{"--variant=minbase", "--format=tar"}, s.args...)
		args = append(args, Suite, s.out+".tmp", Mirror)
		cmd := exec.CommandContext(ctx, mmdebstrap, args...)
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("bigimage: mmdebstrap: %w", err)
		}
		if err := os.Rename(s.out+".tmp", s.out); err != nil {
			return err
		}
	}
	added := filepath.Join(work, strings.TrimSuffix(r.full, ".tar")+"-added.tar")
	fmt.Fprintf(log, "bigimage: diffing %s against %s\n", full, base)
	if err := diffTar(base, full, added); err != nil {
		return err
	}
	defer os.Remove(added)
	layers := []string{base, added}
	if r.npm {
		modules, err := npmLayer(ctx, work, log)
		if err != nil {
			return err
		}
		layers = append(layers, modules)
	}
	fmt.Fprintln(log, "bigimage: compressing layers")
	img := empty.Image
	for _, t := range layers {
		l, err := tarball.LayerFromFile(t)
		if err != nil {
			return err
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			return err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.Cmd = r.cmd
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	tmp := path + ".tmp"
	os.RemoveAll(tmp)
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// entryKey is what decides whether a path changed between two trees.
type entryKey struct {
	typ      byte
	mode     int64
	size     int64
	linkname string
	sum      [32]byte
}

// diffTar writes to out the entries of full that base lacks or holds
// differently (type, mode, size, link target or content), in full's order.
func diffTar(base, full, out string) error {
	known := map[string]entryKey{}
	if err := walkTar(base, func(h *tar.Header, k entryKey, _ []byte) error {
		known[h.Name] = k
		return nil
	}); err != nil {
		return err
	}
	f, err := os.Create(out + ".tmp")
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = walkTar(full, func(h *tar.Header, k entryKey, data []byte) error {
		if prev, ok := known[h.Name]; ok && prev == k {
			return nil
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(out+".tmp", out)
}

func walkTar(path string, fn func(*tar.Header, entryKey, []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var buf bytes.Buffer
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		buf.Reset()
		if _, err := io.Copy(&buf, tr); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		k := entryKey{typ: h.Typeflag, mode: h.Mode, size: h.Size, linkname: h.Linkname, sum: sha256.Sum256(buf.Bytes())}
		if err := fn(h, k, buf.Bytes()); err != nil {
			return err
		}
	}
}
