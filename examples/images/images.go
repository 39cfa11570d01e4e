// Package images builds the example functions' container images with
// go-containerregistry, without a Docker engine, and pushes them to a
// registry.
//
// Each image holds one static linux/amd64 binary at /app/<name>, its
// ENTRYPOINT, WORKDIR /app and EXPOSE 9000/tcp.
package images

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The example images, by the name of their command under examples/.
const (
	Echo          = "echo"
	EchoLocalhost = "echo-localhost"
	Misbehave     = "misbehave"
	// Notify reports each invocation's request id to $NOTIFY_URL; not
	// in All, only the async tests use it.
	Notify = "notify"
	// Probe reports its capabilities, seccomp mode and what it can
	// reach, for tests of the instance sandbox.
	Probe = "probe"
)

// All lists every example image.
var All = []string{Echo, EchoLocalhost, Misbehave, Probe}

const pkgPrefix = "github.com/fcd-dev/fcd/examples/"

// Ref returns the reference of example name in registry ("host:port"):
// <registry>/examples/<name>:latest.
func Ref(registry, name string) string {
	return registry + "/examples/" + name + ":latest"
}

// goTool returns the go command: the one on PATH, else the one of the
// running toolchain.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// BuildBinary compiles example name as a static linux/amd64 binary into
// dir and returns its path. It must run inside the fcd module.
func BuildBinary(ctx context.Context, name, dir string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, goTool(), "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkgPrefix+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w: %s", name, err, b)
	}
	return out, nil
}

// Build compiles example name and returns its image.
func Build(ctx context.Context, name string) (v1.Image, error) {
	data, err := buildBinaryBytes(ctx, name)
	if err != nil {
		return nil, err
	}
	return FromBinary(name, data)
}

// buildBinaryBytes compiles example name and returns the binary.
func buildBinaryBytes(ctx context.Context, name string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "fcd-example-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin, err := BuildBinary(ctx, name, dir)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(bin)
}

// FromBinary returns an image holding data as /app/<name>, its entrypoint.
func FromBinary(name string, data []byte) (v1.Image, error) {
	layerTar, err := tarOf(name, data)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	return withAppConfig(img, name)
}

// withAppConfig gives img the examples' configuration: linux/amd64,
// ENTRYPOINT /app/<name>, WORKDIR /app, EXPOSE 9000/tcp.
func withAppConfig(img v1.Image, name string) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cf.Config.Entrypoint = []string{"/app/" + name}
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.WorkingDir = "/app"
	cf.Config.ExposedPorts = map[string]struct{}{"9000/tcp": {}}
	return mutate.ConfigFile(img, cf)
}

// tarOf returns a layer with /app/<name> and the directories a process
// expects (/tmp, /etc).
func tarOf(name string, data []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(0, 0)
	for _, d := range []struct {
		name string
		mode int64
	}{{"app/", 0o755}, {"etc/", 0o755}, {"tmp/", 0o1777}} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode, ModTime: mtime}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "app/" + name, Mode: 0o755, Size: int64(len(data)), ModTime: mtime}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Push pushes img as ref with auth (nil: anonymous). Registries on loopback
// are spoken to in plain HTTP.
func Push(ctx context.Context, ref string, img v1.Image, auth authn.Authenticator) error {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return fmt.Errorf("parse %s: %w", ref, err)
	}
	if auth == nil {
		auth = authn.Anonymous
	}
	if err := remote.Write(r, img, remote.WithContext(ctx), remote.WithAuth(auth)); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

// BuildAndPush builds the named examples (all when names is empty) and
// pushes each as Ref(registry, name) with auth (nil: anonymous). It returns
// the pushed references.
func BuildAndPush(ctx context.Context, registry string, auth authn.Authenticator, names ...string) ([]string, error) {
	if len(names) == 0 {
		names = All
	}
	var refs []string
	for _, n := range names {
		img, err := Build(ctx, n)
		if err != nil {
			return refs, err
		}
		ref := Ref(registry, n)
		if err := Push(ctx, ref, img, auth); err != nil {
			return refs, err
		}
		refs = append(refs, ref)
	}
	return refs, nil
}
