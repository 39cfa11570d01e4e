package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/fcd-dev/fcd/api"
)

// Config is everything fcd can be told at start.
type Config struct {
	DataDir  string
	Listen   string
	LogLevel slog.Level
	// Region and AccountID name functions' ARNs and reach instances as
	// FC_REGION / FC_ACCOUNT_ID.
	Region, AccountID string
	// AccessKeyID and AccessKeySecret, when both set, replace the admin key
	// that fcd otherwise creates on first start.
	AccessKeyID, AccessKeySecret string
	ShutdownTimeout              time.Duration

	// listener, when set, is served instead of listening on Listen; tests
	// use it to learn the address before fcd starts.
	listener net.Listener
	// ready, when set, is closed once fcd serves.
	ready chan struct{}
}

// parseConfig reads flags from args and the FCD_* variables through getenv.
func parseConfig(args []string, getenv func(string) string) (Config, error) {
	var cfg Config
	fs := flag.NewFlagSet("fcd", flag.ContinueOnError)
	fs.StringVar(&cfg.DataDir, "data-dir", api.DefaultDataDir(), "directory for fcd's state (store, credentials, containerd, logs)")
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "address of the API and invoke endpoint")
	fs.StringVar(&cfg.Region, "region", "local", "region reported in ARNs and to instances")
	fs.StringVar(&cfg.AccountID, "account-id", "1000000000000000", "account id reported in ARNs and to instances")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a graceful shutdown may take")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(*level)); err != nil {
		return cfg, fmt.Errorf("-log-level: %w", err)
	}
	cfg.AccessKeyID = getenv("FCD_ACCESS_KEY_ID")
	cfg.AccessKeySecret = getenv("FCD_ACCESS_KEY_SECRET")
	if (cfg.AccessKeyID == "") != (cfg.AccessKeySecret == "") {
		return cfg, fmt.Errorf("set both FCD_ACCESS_KEY_ID and FCD_ACCESS_KEY_SECRET, or neither")
	}
	return cfg, nil
}
