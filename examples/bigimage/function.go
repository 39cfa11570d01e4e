package bigimage

import (
	"archive/tar"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The function images, by the name Function takes.
const (
	// Python imports numpy, scipy, pandas, matplotlib and scikit-learn
	// at start.
	Python = "python"
	// Node requires a few dozen npm packages (express, aws-sdk,
	// googleapis, typescript, ...) at start.
	Node = "node"
)

var (
	//go:embed python/server.py
	serverPy []byte
	//go:embed node/server.js
	serverJS []byte
)

// Port is where the function images' servers listen.
const Port = 9000

// Function returns function image name (Python or Node): the cached big
// image (Load, LoadNode; built first if needed) with a last layer holding
// its server at /app, which the image runs. The last layer is made the
// same way every time, so the image's digest is stable.
func Function(ctx context.Context, name, dir string, log io.Writer) (v1.Image, error) {
	var (
		base   v1.Image
		err    error
		file   string
		data   []byte
		cmd    []string
		extEnv []string
	)
	switch name {
	case Python:
		base, err = Load(ctx, dir, log)
		file, data = "server.py", serverPy
		cmd = []string{"python3", "/app/server.py"}
	case Node:
		base, err = LoadNode(ctx, dir, log)
		file, data = "server.js", serverJS
		cmd = []string{"node", "/app/server.js"}
		extEnv = []string{"NODE_ENV=production"}
	default:
		return nil, fmt.Errorf("bigimage: no function image %q (want %q or %q)", name, Python, Node)
	}
	if err != nil {
		return nil, err
	}
	list, err := fileList(base, filepath.Join(dirOr(dir), fmt.Sprintf("%s-files.txt", name)))
	if err != nil {
		return nil, err
	}
	layer, err := appLayer(map[string][]byte{file: data, "files.txt": list})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config.Entrypoint, cf.Config.Cmd = cmd, nil
	cf.Config.WorkingDir = "/app"
	cf.Config.Env = append(cf.Config.Env, extEnv...)
	cf.Config.ExposedPorts = map[string]struct{}{fmt.Sprintf("%d/tcp", Port): {}}
	// A fixed creation time keeps the config, and so the digest, stable.
	cf.Created = v1.Time{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return mutate.ConfigFile(img, cf)
}

// appLayer is a layer holding files under /app.
func appLayer(files map[string][]byte) (v1.Layer, error) {
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime}); err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		data := files[name]
		h := &tar.Header{Name: "app/" + name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: mtime}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

// runRoots are where the run phase reads files.
var runRoots = []string{"usr/lib/", "usr/share/", "app/node_modules/"}

// fileList lists the regular files of img under runRoots, one absolute
// path a line in the layers' order, which the servers' run phase reads:
// walking them inside the instance would cost more than reading. The list
// is kept at cache, since making it reads every layer.
func fileList(img v1.Image, cache string) ([]byte, error) {
	if b, err := os.ReadFile(cache); err == nil {
		return b, nil
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var buf bytes.Buffer
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				rc.Close()
				return nil, err
			}
			name := strings.TrimPrefix(h.Name, "./")
			if h.Typeflag != tar.TypeReg || h.Size == 0 || seen[name] || strings.Contains(name, ".wh.") {
				continue
			}
			if !slices.ContainsFunc(runRoots, func(r string) bool { return strings.HasPrefix(name, r) }) {
				continue
			}
			seen[name] = true
			fmt.Fprintf(&buf, "/%s\n", name)
		}
		rc.Close()
	}
	if err := os.WriteFile(cache+".tmp", buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return buf.Bytes(), os.Rename(cache+".tmp", cache)
}

func dirOr(dir string) string {
	if dir == "" {
		return DefaultDir
	}
	return dir
}
