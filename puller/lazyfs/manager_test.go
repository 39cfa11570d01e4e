package lazyfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/puller/remote"
	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/go-digest"
)

func mounted(t *testing.T, dir string) bool {
	t.Helper()
	ok, err := mountinfo.Mounted(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return ok
}

func TestManagerSharesAndUnmountsIdle(t *testing.T) {
	requireFUSE(t)
	entries := featureLayer()
	b := buildLayer(t, entries)
	src := b.sources(t)["estargz"]
	m, err := NewManager(ManagerOptions{Root: t.TempDir(), CacheDir: t.TempDir(), IdleTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	d := digest.FromBytes(b.esgz.data)
	var opens atomic.Int32
	open := func(context.Context) (Source, error) { opens.Add(1); return src, nil }

	var wg sync.WaitGroup
	layers := make([]*Layer, 4)
	for i := range layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := m.Acquire(context.Background(), d, open)
			if err != nil {
				t.Error(err)
			}
			layers[i] = l
		}()
	}
	wg.Wait()
	if opens.Load() != 1 {
		t.Fatalf("opened the source %d times, want 1", opens.Load())
	}
	for _, l := range layers[1:] {
		if l != layers[0] {
			t.Fatal("Acquire returned different layers for one digest")
		}
	}
	dir := layers[0].Dir()
	if dir != m.Dir(d) || !mounted(t, dir) {
		t.Fatalf("layer at %s (mounted %v), want mounted at %s", dir, mounted(t, dir), m.Dir(d))
	}
	if _, err := os.Stat(filepath.Join(dir, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	for range layers {
		m.Release(d)
	}
	m.sweep(time.Now())
	if !slices.Equal(m.Mounted(), []digest.Digest{d}) {
		t.Fatalf("Mounted() = %v right after release, want it kept for IdleTimeout", m.Mounted())
	}
	l, err := m.Acquire(context.Background(), d, open)
	if err != nil || l != layers[0] {
		t.Fatalf("re-acquire while idle: %v, same layer %v", err, l == layers[0])
	}
	m.sweep(time.Now().Add(2 * time.Hour))
	if !mounted(t, dir) {
		t.Fatal("a referenced layer was unmounted")
	}
	m.Release(d)
	m.sweep(time.Now().Add(2 * time.Hour))
	if len(m.Mounted()) != 0 || mounted(t, dir) {
		t.Fatalf("idle layer still mounted: %v", m.Mounted())
	}
	if _, err := m.Acquire(context.Background(), d, open); err != nil {
		t.Fatal(err)
	}
	if opens.Load() != 2 {
		t.Errorf("opened the source %d times, want 2 (mounted again)", opens.Load())
	}
	m.Release(d)
}

func TestManagerOpenFailure(t *testing.T) {
	requireFUSE(t)
	m, err := NewManager(ManagerOptions{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	d := digest.FromString("layer")
	boom := errors.New("registry down")
	_, err = m.Acquire(context.Background(), d, func(context.Context) (Source, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the open error", err)
	}
	if len(m.Mounted()) != 0 {
		t.Fatalf("Mounted() = %v after a failed open", m.Mounted())
	}
	b := buildLayer(t, []tarEntry{fileE("f", 0o644, []byte("x"))})
	l, err := m.Acquire(context.Background(), d, func(context.Context) (Source, error) { return b.sources(t)["gzindex"], nil })
	if err != nil {
		t.Fatalf("acquire after a failed open: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(l.Dir(), "f")); err != nil || string(got) != "x" {
		t.Fatalf("read: %q, %v", got, err)
	}
	m.Release(d)
}

// TestManagerCleansStaleMounts leaves a layer mounted under the root, as
// a previous process would, and expects a new manager to detach it.
func TestManagerCleansStaleMounts(t *testing.T) {
	requireFUSE(t)
	root := t.TempDir()
	b := buildLayer(t, []tarEntry{fileE("f", 0o644, []byte("x"))})
	stale := filepath.Join(root, "sha256-stale")
	if err := os.Mkdir(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	old, err := Mount(stale, b.sources(t)["gzindex"], MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !mounted(t, stale) {
		t.Fatal("stale layer not mounted")
	}
	m, err := NewManager(ManagerOptions{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if mounted(t, stale) {
		t.Fatal("stale mount still there after NewManager")
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale mount point left behind: %v", err)
	}
	served := make(chan struct{})
	go func() { old.Wait(); close(served) }()
	select {
	case <-served:
	case <-time.After(time.Minute): // a hang bound
		t.Fatal("the old FUSE server still runs after its mount was detached")
	}
}

// countingSource counts reads made at Background priority.
type countingSource struct {
	Source
	background atomic.Int64
}

func (c *countingSource) ReadAt(ctx context.Context, name string, p []byte, off int64, prio remote.Priority) (int, error) {
	if prio == remote.Background {
		c.background.Add(1)
	}
	return c.Source.ReadAt(ctx, name, p, off, prio)
}

// TestManagerBackgroundWaitsForStart checks that a layer's background
// fetch waits until an instance using it has started, so it never shares
// the link with the start-up reads, and then reads the layer.
func TestManagerBackgroundWaitsForStart(t *testing.T) {
	requireFUSE(t)
	b := buildLayer(t, featureLayer())
	src := &countingSource{Source: b.sources(t)["gzindex"]}
	m, err := NewManager(ManagerOptions{Root: t.TempDir(), CacheDir: t.TempDir(), IdleTimeout: time.Hour, Background: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	d := digest.FromString("background")
	l, err := m.Acquire(context.Background(), d, func(context.Context) (Source, error) { return src, nil })
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release(d)
	if n := src.background.Load(); n != 0 {
		t.Fatalf("before the instance started: %d background reads, want 0", n)
	}
	m.StartBackground(d)
	l.bg.wait()
	if n := src.background.Load(); n == 0 {
		t.Error("after StartBackground: no background read, want the layer fetched")
	}
}
