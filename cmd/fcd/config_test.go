package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultMemoryBudget(t *testing.T) {
	tests := []struct {
		name    string
		meminfo string
		want    int
		err     bool
	}{
		{"23.5 GiB host keeps 10%", "MemTotal:       24684084 kB\nMemFree: 1 kB\n", 24105 - 2410, false},
		{"4 GiB host keeps 1 GiB", "MemFree: 1 kB\nMemTotal: 4194304 kB\n", 3072, false},
		{"tiny host still runs one", "MemTotal: 1048576 kB\n", 128, false},
		{"no MemTotal", "MemFree: 1 kB\n", 0, true},
		{"bad number", "MemTotal: x kB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := defaultMemoryBudgetMB(tt.meminfo)
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("got %d, %v; want %d, error %v", got, err, tt.want, tt.err)
			}
		})
	}
}

// TestMemoryBudgetFlag checks that fcd bounds its instances' memory by
// default, so anonymous load cannot scale out past the host.
func TestMemoryBudgetFlag(t *testing.T) {
	none := func(string) string { return "" }
	cfg, err := parseConfig(nil, none)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MemoryBudgetMB <= 0 {
		t.Errorf("default memory budget: got %d, want the host's memory less a reserve", cfg.MemoryBudgetMB)
	}
	for _, tt := range []struct {
		flag string
		want int
	}{{"2048", 2048}, {"-1", -1}} {
		cfg, err := parseConfig([]string{"-memory-budget", tt.flag}, none)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MemoryBudgetMB != tt.want {
			t.Errorf("-memory-budget %s: got %d, want %d", tt.flag, cfg.MemoryBudgetMB, tt.want)
		}
	}
}

func TestEdgeFlags(t *testing.T) {
	none := func(string) string { return "" }
	cfg, err := parseConfig([]string{"-header-timeout", "5s", "-max-conns-per-ip", "-1", "-body-buffer-budget", "64", "-metrics-auth", "signed"}, none)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Edge.HeaderTimeout != 5*time.Second || cfg.Edge.MaxConnsPerIP != -1 || cfg.Edge.BodyBudget != 64<<20 || !cfg.SignedMetrics {
		t.Errorf("got %+v signed metrics %v; want 5s header timeout, no per-IP cap, 64 MiB budget, signed metrics", cfg.Edge, cfg.SignedMetrics)
	}
	for _, bad := range [][]string{{"-metrics-auth", "basic"}, {"-body-buffer-budget", "0"}, {"-max-conns-per-ip", "0"}} {
		if _, err := parseConfig(bad, none); err == nil {
			t.Errorf("%q: accepted, want an error", bad)
		}
	}
}

// TestExplicitRuntimeRefused checks that a -runtime that cannot run stops
// fcd at start-up instead of falling back to another runtime.
func TestExplicitRuntimeRefused(t *testing.T) {
	requireRuntime(t)
	missing := filepath.Join(t.TempDir(), "crun")
	cfg, err := parseConfig([]string{"-data-dir", t.TempDir(), "-registry-address", "127.0.0.1:0", "-listen", "127.0.0.1:0", "-runtime", missing}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = run(ctx, cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "-runtime "+missing) {
		t.Fatalf("got %v, want fcd to refuse -runtime %s", err, missing)
	}
}

// TestRegistryTimeoutFlag checks that -registry-timeout must bound: zero
// would leave the converter unbounded while the puller took its default.
func TestRegistryTimeoutFlag(t *testing.T) {
	none := func(string) string { return "" }
	for _, tt := range []struct {
		flag string
		want time.Duration
		err  bool
	}{{"", 30 * time.Second, false}, {"500ms", 500 * time.Millisecond, false}, {"0", 0, true}, {"-1s", 0, true}} {
		args := []string{"-memory-budget", "-1"}
		if tt.flag != "" {
			args = append(args, "-registry-timeout", tt.flag)
		}
		cfg, err := parseConfig(args, none)
		if (err != nil) != tt.err {
			t.Errorf("-registry-timeout %q: got error %v, want error %v", tt.flag, err, tt.err)
			continue
		}
		if err == nil && cfg.RegistryTimeout != tt.want {
			t.Errorf("-registry-timeout %q: got %s, want %s", tt.flag, cfg.RegistryTimeout, tt.want)
		}
	}
}
