package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/proxy"
)

// fakeColdStarts holds starts of one function, as fcd's instance manager
// would report them.
type fakeColdStarts struct {
	function string
	starts   []api.ColdStart
}

func (f fakeColdStarts) ColdStarts(function string, n int) []api.ColdStart {
	if function != f.function {
		return nil
	}
	if n > 0 && n < len(f.starts) {
		return f.starts[len(f.starts)-n:]
	}
	return f.starts
}

func TestFunctionColdStarts(t *testing.T) {
	at := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	phases := func(probe float64) []api.ColdStartPhase {
		return []api.ColdStartPhase{{Name: "pull", Ms: 9.5}, {Name: "network", Ms: 0.1}, {Name: "probe", Ms: probe}}
	}
	dir := serveWith(t, proxy.Options{ColdStarts: fakeColdStarts{function: "echo", starts: []api.ColdStart{
		{InstanceID: "aaa", StartedAt: at, Phases: phases(11.25), TotalMs: 80, FetchedBytes: 3 << 20},
		{InstanceID: "bbb", StartedAt: at.Add(time.Second), Phases: phases(2), TotalMs: 40.5, Cached: true},
	}}})
	if _, err := fcctl(t, dir, "function", "create", "echo", "--image", "r/echo:1"); err != nil {
		t.Fatal(err)
	}
	out, err := fcctl(t, dir, "function", "coldstarts", "echo")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want a header, two starts and the unit note:\n%s", len(lines), out)
	}
	for i, want := range [][]string{
		{"INSTANCE", "PULL", "NETWORK", "PROBE", "TOTAL"},
		{"aaa", "9.5", "0.1", "11.2", "80.0", "pulled 3.0 MiB"},
		{"bbb", "2.0", "40.5", "local"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q: want %q", i, lines[i], w)
			}
		}
	}
	out, err = fcctl(t, dir, "function", "coldstarts", "echo", "-n", "1", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"instanceId": "bbb"`) || strings.Contains(out, "aaa") {
		t.Errorf("-n 1 -o json: got %s, want only the last start", out)
	}
	if _, err := fcctl(t, dir, "function", "coldstarts", "none"); !errors.As(err, new(*apiError)) || !strings.Contains(err.Error(), "FunctionNotFound") {
		t.Errorf("unknown function: got %v, want FunctionNotFound", err)
	}
}
