package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/remotes/docker"
	bolt "go.etcd.io/bbolt"

	"github.com/fcd-dev/fcd/cache"
	"github.com/fcd-dev/fcd/puller"
	"github.com/fcd-dev/fcd/puller/lazy"
	"github.com/fcd-dev/fcd/puller/lazyfs"
	"github.com/fcd-dev/fcd/puller/remote"
)

// lazyRuntime is the lazy path: verified chunks cached host-wide, a range
// fetcher, one FUSE mount per layer digest, and the Images that mount
// accelerated images with them. Its mounts live and die with this
// process: go-fuse cannot hand a live /dev/fuse to a successor, so a
// restarted fcd detaches what an earlier one left (lazyfs.Manager) after
// the instances that used the mounts are gone.
type lazyRuntime struct {
	chunks  *cache.Cache
	fetcher *remote.Fetcher
	layers  *lazyfs.Manager
	images  *lazy.Images
}

// startLazy builds the lazy path under <data dir>/lazy, with start-up
// records kept in db (fcd.db, so they outlive a wiped data dir). It
// answers nil, nil when the host cannot mount FUSE: accelerated images
// are then pulled whole, and the log says why.
func startLazy(cfg Config, full *puller.Puller, meter puller.Meter, db *bolt.DB, recorded func(lazy.Record), log *slog.Logger) (_ *lazyRuntime, err error) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		log.Warn("lazy pulls off: /dev/fuse is missing (Debian package fuse3, module fuse); accelerated images are pulled whole", "error", err)
		return nil, nil
	}
	dir := filepath.Join(cfg.DataDir, "lazy")
	lr := &lazyRuntime{}
	defer func() {
		if err != nil {
			lr.close()
		}
	}()
	lr.chunks, err = cache.Open(filepath.Join(dir, "chunks"), cache.Options{
		MaxBytes: int64(cfg.ChunkCacheMB) << 20,
		Logger:   log.With("component", "cache"),
	})
	if err != nil {
		return nil, fmt.Errorf("chunk cache: %w", err)
	}
	// 64 MiB of chunks held: a start-up's working set, written to the
	// cache after it.
	lr.fetcher = remote.New(remote.Options{Cache: lr.chunks, HoldBytes: 64 << 20, Logger: log.With("component", "fetcher")})
	lr.layers, err = lazyfs.NewManager(lazyfs.ManagerOptions{
		Root:       filepath.Join(dir, "mnt"),
		CacheDir:   filepath.Join(dir, "files"),
		Background: cfg.LazyBackground,
		Logger:     log.With("component", "lazyfs"),
	})
	if err != nil {
		return nil, fmt.Errorf("lazy layers: %w", err)
	}
	records, err := lazy.OpenRecords(db)
	if err != nil {
		return nil, err
	}
	lr.images, err = lazy.New(lazy.Options{
		Records:      records,
		Recorded:     recorded,
		RecordSettle: cfg.LazyRecordSettle,
		Logger:       log.With("component", "lazy"),
		Fetcher:      lr.fetcher,
		Layers:       lr.layers,
		Chunks:       lr.chunks,
		Meter:        meter,
		Hosts: func(creds remote.Credentials) docker.RegistryHosts {
			return full.RegistryHosts(creds)
		},
	})
	if err != nil {
		return nil, err
	}
	return lr, nil
}

// close saves the start-up recordings in progress, unmounts every layer,
// then stops the fetcher and the cache. The instances must be gone first.
func (lr *lazyRuntime) close() error {
	var errs []error
	if lr.images != nil {
		errs = append(errs, lr.images.Close())
	}
	if lr.layers != nil {
		errs = append(errs, lr.layers.Close())
	}
	if lr.fetcher != nil {
		errs = append(errs, lr.fetcher.Close())
	}
	if lr.chunks != nil {
		errs = append(errs, lr.chunks.Close())
	}
	return errors.Join(errs...)
}
