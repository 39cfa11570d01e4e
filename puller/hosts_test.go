package puller_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/fcd-dev/fcd/instance"
	"github.com/fcd-dev/fcd/puller"
)

// TestHostsDir pulls an image named after a registry that does not exist
// through the mirror a hosts.toml gives for it, in plain HTTP, as
// containerd's CRI would with the same directory.
func TestHostsDir(t *testing.T) {
	c := setup(t)
	mirror := newRegistry(t, nil)
	const named = "registry.fcd.invalid:5000"
	push(t, mirror+"/test/mirrored:v1", randomImage(t, 1024, 1))

	dir := t.TempDir()
	hostDir := filepath.Join(dir, named)
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	toml := fmt.Sprintf("server = \"http://%s\"\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", mirror, mirror)
	if err := os.WriteFile(filepath.Join(hostDir, "hosts.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	without := newPuller(t, c, puller.Options{})
	if _, err := without.Prepare(ctx, named+"/test/mirrored:v1", instance.ImageOptions{Key: t.Name() + "-0"}); err == nil {
		t.Fatal("Prepare without the hosts directory: got nil error, want the unknown registry refused")
	}

	p := newPuller(t, c, puller.Options{HostsDir: dir})
	img, err := p.Prepare(ctx, named+"/test/mirrored:v1", instance.ImageOptions{Key: t.Name() + "-1"})
	if err != nil {
		t.Fatalf("Prepare through the mirror: %v", err)
	}
	defer img.Release(ctx)
	if got := len(img.LowerDirs()); got != 1 {
		t.Errorf("LowerDirs: got %d, want 1", got)
	}
}
