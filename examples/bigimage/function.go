package bigimage

import (
	"archive/tar"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
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
	layer, err := appLayer(file, data)
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

// appLayer is a layer holding /app/<file>.
func appLayer(file string, data []byte) (v1.Layer, error) {
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime},
		{Name: "app/" + file, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: mtime},
	} {
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}
