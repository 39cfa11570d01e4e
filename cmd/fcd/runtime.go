package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"time"

	"github.com/containerd/containerd"
	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/instance"
	"github.com/fcd-dev/fcd/puller"
	"github.com/fcd-dev/fcd/puller/lazy"
)

// runtime is fcd's container side: containerd (supervised, or the one at
// --containerd-address), its client, the image puller and the instance
// manager.
type runtime struct {
	daemon  *instance.Daemon // nil when containerd is external
	client  *containerd.Client
	puller  *puller.Puller
	lazy    *lazyRuntime // nil when lazy pulls are off
	manager *instance.Manager

	// The clean-up of an earlier run's leftovers, in the background;
	// close stops it before the manager.
	stopCleanup context.CancelFunc
	cleaned     chan struct{}
}

// startRuntime checks the host, starts or connects to containerd, lists
// what an earlier run of the same name left behind and removes it in the
// background, so that fcd serves meanwhile. Image pulls (full and lazy)
// connect only where addrs allows (nil: anywhere) and are reported to
// meter; lazy start-up records are kept in db and each new one is passed
// to recorded.
func startRuntime(ctx context.Context, cfg Config, addrs *puller.AddressPolicy, meter puller.Meter, db *bolt.DB, recorded func(lazy.Record), log *slog.Logger) (_ *runtime, err error) {
	if err := instance.CheckHost(cfg.CNIPluginDir); err != nil {
		return nil, fmt.Errorf("fcd cannot run instances on this host: %w", err)
	}
	if err := checkRuntime(cfg.Runtime); err != nil {
		return nil, err
	}
	subnet, err := netip.ParsePrefix(cfg.Subnet)
	if err != nil {
		return nil, fmt.Errorf("-subnet %q: %w", cfg.Subnet, err)
	}
	rt := &runtime{}
	defer func() {
		if err != nil {
			rt.close(context.WithoutCancel(ctx))
		}
	}()
	address := cfg.ContainerdAddress
	if address == "" {
		rt.daemon, err = instance.StartDaemon(ctx, instance.DaemonOptions{
			Name:    cfg.Name,
			DataDir: cfg.DataDir,
			Logger:  log.With("component", "containerd"),
		})
		if err != nil {
			return nil, fmt.Errorf("start containerd: %w", err)
		}
		address = rt.daemon.Address()
	}
	rt.client, err = containerd.New(address)
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", address, err)
	}
	rt.puller, err = puller.New(rt.client, puller.Options{
		Namespace:             cfg.Name,
		PullTimeout:           cfg.InstanceStartTimeout,
		ResponseHeaderTimeout: cfg.RegistryTimeout,
		StallTimeout:          cfg.RegistryTimeout,
		HostsDir:              cfg.RegistryHostsDir,
		Addresses:             addrs,
		Meter:                 meter,
		Logger:                log.With("component", "puller"),
	})
	if err != nil {
		return nil, err
	}
	var images instance.Images = rt.puller
	if cfg.Lazy {
		if rt.lazy, err = startLazy(cfg, rt.puller, meter, db, recorded, log); err != nil {
			return nil, err
		}
		if rt.lazy != nil {
			images = &lazy.Router{Lazy: rt.lazy.images, Full: rt.puller}
		}
	}
	rt.manager, err = instance.NewManager(rt.client, instance.Options{
		Name:          cfg.Name,
		DataDir:       cfg.DataDir,
		Subnet:        subnet,
		CNIPluginDir:  cfg.CNIPluginDir,
		StartTimeout:  cfg.InstanceStartTimeout,
		DenyOutbound:  cfg.DenyOutbound,
		Images:        images,
		Runtime:       cfg.Runtime,
		ShimGroup:     cfg.ShimGroup,
		ShimGroupSize: cfg.ShimGroupSize,
		NetPool:       netPool(cfg.NetPool),
		Logger:        log.With("component", "instance"),
	})
	if err != nil {
		return nil, err
	}
	// Listed before the first start, the leftovers are the earlier run's
	// only: their removal never touches a new instance.
	left, err := rt.manager.Leftovers(ctx)
	if err != nil {
		return nil, fmt.Errorf("clean up after an earlier run: %w", err)
	}
	views, err := rt.puller.Views(ctx)
	if err != nil {
		return nil, fmt.Errorf("clean up after an earlier run: %w", err)
	}
	// The leftovers are listed: the pools may fill now, so that the first
	// cold start does not make its own network namespace (~100 ms).
	rt.manager.Prefill()
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rt.stopCleanup, rt.cleaned = cancel, make(chan struct{})
	go func() {
		defer close(rt.cleaned)
		removeLeftovers(cctx, rt, left, views, log)
	}()
	return rt, nil
}

// checkRuntime refuses, before containerd starts, a -runtime that is
// missing or cannot run on this host: one named explicitly is never
// replaced by another. An empty one is chosen by the instance manager
// (instance.DefaultRuntime), which logs why when it is not crun.
func checkRuntime(runtime string) error {
	if runtime == "" {
		return nil
	}
	if _, err := exec.LookPath(runtime); err != nil {
		return fmt.Errorf("-runtime %s: %w", runtime, err)
	}
	if err := instance.CheckRuntime(runtime); err != nil {
		return fmt.Errorf("-runtime %s: %w", runtime, err)
	}
	return nil
}

// removeLeftovers removes an earlier run's leftovers, then the image views
// its instances used.
func removeLeftovers(ctx context.Context, rt *runtime, left *instance.Leftovers, views []string, log *slog.Logger) {
	if left.Empty() && len(views) == 0 {
		return
	}
	begin := time.Now()
	log.Info("removing what an earlier run left, in the background", "leftovers", left.String(), "views", len(views))
	err := left.Remove(ctx, instance.DefaultCleanupWorkers)
	// No instance of the earlier run is left to use its image views.
	err = errors.Join(err, rt.puller.RemoveViewKeys(ctx, views))
	if err != nil {
		log.Warn("clean up after an earlier run", "error", err, "duration", time.Since(begin))
		return
	}
	log.Info("removed what an earlier run left", "duration", time.Since(begin))
}

// close stops every instance still running and disconnects; the
// supervised containerd stops last.
func (rt *runtime) close(ctx context.Context) error {
	var errs []error
	if rt.stopCleanup != nil {
		// A graceful stop lets the clean-up finish while ctx allows.
		select {
		case <-rt.cleaned:
		case <-ctx.Done():
		}
		rt.stopCleanup()
		<-rt.cleaned
	}
	if rt.manager != nil {
		errs = append(errs, rt.manager.Close(ctx))
	}
	if rt.lazy != nil {
		// After the instances: their root filesystems stand on these mounts.
		errs = append(errs, rt.lazy.close())
	}
	if rt.client != nil {
		errs = append(errs, rt.client.Close())
	}
	if rt.daemon != nil {
		errs = append(errs, rt.daemon.Close())
	}
	return errors.Join(errs...)
}

// netPool maps the -net-pool flag, where 0 means none, to
// instance.Options.NetPool, where 0 means the default.
func netPool(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}
