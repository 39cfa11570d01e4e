package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/async"
	"github.com/fcd-dev/fcd/console"
	"github.com/fcd-dev/fcd/proxy"
	"github.com/fcd-dev/fcd/scheduler"
	"github.com/fcd-dev/fcd/store"
)

// run builds every component from cfg, top to bottom, serves until ctx is
// done and shuts down in reverse order.
func run(ctx context.Context, cfg Config, log *slog.Logger) (err error) {
	begin := time.Now()
	phases := startPhases{last: begin}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	ln := cfg.listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	defer ln.Close()
	endpoint := ln.Addr().String()
	// Until the frontend serves, clients get 503 with Retry-After rather
	// than a connection that hangs.
	starting := proxy.ServeStarting(ln)
	defer starting.Open()

	creds, err := adminCredentials(cfg, endpoint)
	if err != nil {
		return err
	}

	st, err := store.Open(filepath.Join(cfg.DataDir, "fcd.db"), 0)
	if err != nil {
		return err
	}
	defer st.Close()

	g, gctx := errgroup.WithContext(ctx)
	defer func() {
		cancel()
		g.Wait()
	}()
	// The embedded registry listens first: its address, known only
	// now for port 0, is an exception to the registry address policy.
	var regLn net.Listener
	var regAddr net.Addr // nil: no embedded registry
	if cfg.RegistryAddress != "" {
		if regLn, err = net.Listen("tcp", cfg.RegistryAddress); err != nil {
			return fmt.Errorf("embedded registry: %w", err)
		}
		// The registry closes it; this is for a failed start before.
		defer regLn.Close()
		regAddr = regLn.Addr()
	}
	addrs, err := registryAddresses(cfg, regAddr)
	if err != nil {
		return err
	}
	var platRef atomic.Pointer[platform]
	accelerator, err := newAccelerator(cfg, creds, st, &platRef, addrs, log)
	if err != nil {
		return err
	}
	phases.mark("store")
	plat, err := startPlatform(gctx, g, cfg, creds, st, regLn, onPush(accelerator, log), log)
	if err != nil {
		return err
	}
	phases.mark("platform")
	defer plat.close(context.WithoutCancel(ctx))
	platRef.Store(plat)
	g.Go(func() error { return accelerator.Run(gctx) })

	popts := proxy.Options{
		Functions: st,
		Provision: st,
		Versions:  st,
		Keys:      proxy.StaticKeys{creds.AccessKeyID: creds.AccessKeySecret},
		Region:    cfg.Region,
		AccountID: cfg.AccountID,
		Domain:    cfg.Domain,
		Logger:    log.With("component", "proxy"),

		ShutdownGrace: cfg.ShutdownTimeout,
		Limits:        cfg.Edge,
		SignedMetrics: cfg.SignedMetrics,

		Roles:       plat.roles,
		Credentials: plat,
		Ledger:      plat.ledger,
		Meter:       plat.recorder,
		Accelerator: accelerator,
		Console:     console.Handler(),
	}
	// The scheduler is built before the proxy it tells of stopping
	// instances.
	var stopping instanceStopping
	if !cfg.noRuntime {
		rt, err := startRuntime(ctx, cfg, addrs, plat.ledger, st.DB(), rebakeOnRecord(ctx, accelerator, log), log)
		if err != nil {
			return err
		}
		phases.mark("runtime")
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
			defer cancel()
			if cerr := rt.close(sctx); cerr != nil {
				log.Warn("runtime shutdown", "error", cerr)
			}
		}()
		sched := scheduler.New(&starter{manager: rt.manager, platform: plat, cfg: cfg, log: log, accel: accelerator, lazy: rt.lazy != nil, local: rt.puller.Local}, scheduler.Options{
			IdleTimeout:    cfg.IdleTimeout,
			MemoryBudgetMB: cfg.MemoryBudgetMB,
			QueueTimeout:   cfg.InstanceStartTimeout + cfg.QueueSlack,
			Logger:         log.With("component", "scheduler"),
			Stopping:       stopping.notify,
		})
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
			defer cancel()
			if cerr := sched.Close(sctx); cerr != nil {
				log.Warn("scheduler shutdown", "error", cerr)
			}
		}()
		p := &pools{s: sched, maxInstances: cfg.MaxInstances}
		if err := restoreProvisioned(ctx, st, p); err != nil {
			return err
		}
		if err := restoreConcurrency(ctx, st, p); err != nil {
			return err
		}
		popts.Scheduler, popts.Pools, popts.VersionPools = p, p, p
		popts.Logs = rt.manager
		popts.ColdStarts = coldStarts{rt.manager}
		popts.Collectors = []prometheus.Collector{poolCollector{sched}, startCollector{rt.manager}}
	}
	queue, err := async.Open(st.DB(), async.Options{
		Workers: cfg.AsyncWorkers, PerFunction: cfg.AsyncPerFunction,
		FunctionARN: func(name string) string { return api.FunctionARN(cfg.Region, cfg.AccountID, name) },
		Logger:      log.With("component", "async"),
	})
	if err != nil {
		return err
	}
	popts.Async = queue
	// The process's own figures (go_goroutines, process_resident_memory_bytes)
	// next to fcd's: what a load test watches for leaks.
	popts.Collectors = append(popts.Collectors, queue.Collector(),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	frontend := proxy.New(popts)
	stopping.set(frontend)
	g.Go(func() error { return queue.Run(gctx, frontend.AsyncDispatcher()) })
	if plat.registry != nil {
		creds.Registry = plat.registry.Addr()
	}
	// Written last: a client that finds the file finds fcd serving.
	if err := api.SaveCredentials(filepath.Join(cfg.DataDir, api.CredentialsFile), creds); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	starting.Open()
	g.Go(func() error { return frontend.Serve(gctx, ln) })
	if cfg.DebugAddress != "" {
		g.Go(func() error { return serveDebug(gctx, cfg.DebugAddress) })
	}
	if cfg.ready != nil {
		close(cfg.ready)
	}
	phases.mark("frontend")
	log.Info("fcd serving", "endpoint", "http://"+endpoint, "console", "http://"+endpoint+console.Prefix, "dataDir", cfg.DataDir,
		"credentials", filepath.Join(cfg.DataDir, api.CredentialsFile),
		"startup", time.Since(begin).Round(time.Millisecond), slog.Any("phases", phases))
	err = g.Wait()
	log.Info("fcd stopping")
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// restoreProvisioned gives the scheduler the provisioned targets stored by
// an earlier run.
func restoreProvisioned(ctx context.Context, st *store.Store, p *pools) error {
	pcs, err := st.ProvisionConfigs(ctx)
	if err != nil {
		return err
	}
	for name, pc := range pcs {
		f, err := st.GetFunction(ctx, name)
		if err != nil {
			return fmt.Errorf("provisioned function %q: %w", name, err)
		}
		p.SetProvisioned(f, pc.Target)
	}
	return nil
}

// restoreConcurrency gives the scheduler the stored reserved
// concurrencies; the proxy follows changes from then on.
func restoreConcurrency(ctx context.Context, st *store.Store, p *pools) error {
	ccs, err := st.ConcurrencyConfigs(ctx)
	if err != nil {
		return err
	}
	for name, cc := range ccs {
		p.SetConcurrencyLimit(name, int(cc.ReservedConcurrency))
	}
	return nil
}

// adminCredentials returns the admin key: from the environment when given,
// else the one in credentials.json, else a new one, which is saved at once
// so a failed start does not lose it. run rewrites the file with the
// current endpoints once it serves.
func adminCredentials(cfg Config, endpoint string) (api.Credentials, error) {
	path := filepath.Join(cfg.DataDir, api.CredentialsFile)
	var creds api.Credentials
	switch c, err := api.LoadCredentials(path); {
	case cfg.AccessKeyID != "":
		creds = api.Credentials{AccessKeyID: cfg.AccessKeyID, AccessKeySecret: cfg.AccessKeySecret}
	case err == nil:
		creds = c
	case errors.Is(err, os.ErrNotExist):
		if creds, err = api.NewCredentials(endpoint); err != nil {
			return creds, fmt.Errorf("create admin key: %w", err)
		}
	default:
		return creds, err
	}
	creds.Endpoint = endpoint
	if err := api.SaveCredentials(path, creds); err != nil {
		return creds, fmt.Errorf("write %s: %w", path, err)
	}
	return creds, nil
}

// serveDebug serves net/http/pprof on addr until ctx is done.
func serveDebug(ctx context.Context, addr string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("debug address: %w", err)
	}
	return nil
}

// startPhases times the steps of run's start-up, for its log line.
type startPhases struct {
	last  time.Time
	attrs []slog.Attr
}

func (p *startPhases) mark(name string) {
	now := time.Now()
	p.attrs = append(p.attrs, slog.Duration(name, now.Sub(p.last).Round(time.Millisecond)))
	p.last = now
}

func (p startPhases) LogValue() slog.Value { return slog.GroupValue(p.attrs...) }
