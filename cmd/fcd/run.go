package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/proxy"
	"github.com/fcd-dev/fcd/store"
)

// run builds every component from cfg, top to bottom, serves until ctx is
// done and shuts down in reverse order.
func run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	ln := cfg.listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	defer ln.Close()
	endpoint := ln.Addr().String()

	creds, err := adminCredentials(cfg, endpoint)
	if err != nil {
		return err
	}

	st, err := store.Open(filepath.Join(cfg.DataDir, "fcd.db"), 0)
	if err != nil {
		return err
	}
	defer st.Close()

	frontend := proxy.New(proxy.Options{
		Functions: st,
		Keys:      proxy.StaticKeys{creds.AccessKeyID: creds.AccessKeySecret},
		Region:    cfg.Region,
		AccountID: cfg.AccountID,
		Logger:    log.With("component", "proxy"),
	})

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return frontend.Serve(ctx, ln) })
	if cfg.ready != nil {
		close(cfg.ready)
	}
	log.Info("fcd serving", "endpoint", "http://"+endpoint, "dataDir", cfg.DataDir,
		"credentials", filepath.Join(cfg.DataDir, api.CredentialsFile))
	err = g.Wait()
	log.Info("fcd stopped")
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// adminCredentials returns the admin key: from the environment when given,
// else the one in credentials.json, else a new one. The file is rewritten
// with the current endpoint so clients find fcd.
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
