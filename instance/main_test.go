package instance

import (
	"github.com/sasha-s/go-deadlock"

	"context"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/fcd-dev/fcd/examples/images"
	"github.com/fcd-dev/fcd/internal/testenv"
	"github.com/fcd-dev/fcd/puller"
	"github.com/google/go-containerregistry/pkg/registry"
)

// The package's integration tests share one containerd, one registry and
// one Manager, set up on first use and torn down by TestMain.
type env struct {
	dataDir  string
	daemon   *Daemon
	client   *containerd.Client
	registry *httptest.Server
	puller   *puller.Puller
	mgr      *Manager
	refs     map[string]string // example name -> reference
}

const (
	testName = "fcdit"
	// testStartTimeout is the production limit: the localhost case must
	// fail by detecting the loopback-only listener, not by waiting it out.
	testStartTimeout = 120 * time.Second
)

// Flags choosing the Manager's start options, to compare them with
// BenchmarkStartEcho; the whole suite runs with each.
var (
	flagRuntime   = flag.String("runtime", "", "Options.Runtime of the test Manager")
	flagShimGroup = flag.Bool("shim-group", false, "Options.ShimGroup of the test Manager")
)

var (
	testSubnet = netip.MustParsePrefix("10.87.0.0/24")
	envOnce    sync.Once
	shared     *env
	envErr     error
)

func TestMain(m *testing.M) {
	// Under -race, go-cni swaps its mutex for go-deadlock's, whose
	// goroutine ids read 0 on this Go version, so concurrent starts look
	// like one goroutine locking twice. Production builds use
	// sync.RWMutex; the race detector still checks every access.
	deadlock.Opts.Disable = true
	code := m.Run()
	if shared != nil {
		shared.close()
	}
	os.Exit(code)
}

// setup returns the shared environment, or skips (fails on CI) when the
// host cannot run containers.
func setup(t testing.TB) *env {
	t.Helper()
	testenv.RequireRoot(t)
	for _, r := range Requirements("") {
		if strings.HasPrefix(r.Path, "/") {
			testenv.RequireFile(t, r.Path, r.Package)
		} else {
			testenv.RequireCommand(t, r.Path, r.Package)
		}
	}
	envOnce.Do(func() { shared, envErr = newEnv() })
	if envErr != nil {
		t.Fatalf("test environment: %v", envErr)
	}
	return shared
}

func newEnv() (_ *env, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "fcdit-")
	if err != nil {
		return nil, err
	}
	e := &env{dataDir: dir, refs: map[string]string{}}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if e.daemon, err = StartDaemon(ctx, DaemonOptions{Name: testName, DataDir: dir, Logger: log}); err != nil {
		return e, err
	}
	if e.client, err = containerd.New(e.daemon.Address()); err != nil {
		return e, err
	}
	e.registry = httptest.NewServer(registry.New(registry.Logger(stdlog.New(io.Discard, "", 0))))
	host := strings.TrimPrefix(e.registry.URL, "http://")
	for _, name := range images.All {
		img, err := images.Build(ctx, name)
		if err != nil {
			return e, err
		}
		ref := images.Ref(host, name)
		if err := images.Push(ctx, ref, img, nil); err != nil {
			return e, err
		}
		e.refs[name] = ref
	}
	if e.puller, err = puller.New(e.client, puller.Options{Namespace: testName, Logger: log}); err != nil {
		return e, err
	}
	e.mgr, err = NewManager(e.client, Options{
		Name:         testName,
		DataDir:      dir,
		Subnet:       testSubnet,
		StartTimeout: testStartTimeout,
		StopGrace:    2 * time.Second,
		Images:       e.puller,
		Logger:       log,
		Runtime:      *flagRuntime,
		ShimGroup:    *flagShimGroup,
	})
	if err != nil {
		return e, err
	}
	if err := e.mgr.Cleanup(ctx); err != nil {
		return e, fmt.Errorf("cleanup: %w", err)
	}
	if err := e.puller.RemoveViews(ctx); err != nil {
		return e, fmt.Errorf("cleanup: %w", err)
	}
	return e, nil
}

func (e *env) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if e.mgr != nil {
		_ = e.mgr.Close(ctx)
		_ = e.mgr.Cleanup(ctx)
		_ = e.puller.RemoveViews(ctx)
	}
	if e.client != nil {
		e.client.Close()
	}
	if e.daemon != nil {
		_ = e.daemon.Close()
	}
	if e.registry != nil {
		e.registry.Close()
	}
	_ = os.RemoveAll(e.dataDir)
	_ = os.RemoveAll(runDir(testName))
}
