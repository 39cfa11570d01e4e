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

func TestFunctionColdStartsWaterfall(t *testing.T) {
	at := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	dir := serveWith(t, proxy.Options{ColdStarts: fakeColdStarts{function: "echo", starts: []api.ColdStart{
		{InstanceID: "full", StartedAt: at, TotalMs: 100, FetchedBytes: 2 << 20, Phases: []api.ColdStartPhase{
			{Name: "pull", AtMs: 0, Ms: 60, Bytes: 2 << 20}, {Name: "fetch", AtMs: 10, Ms: 50}, {Name: "probe", AtMs: 80, Ms: 20}}},
		{InstanceID: "lazy", StartedAt: at.Add(time.Second), TotalMs: 50, FirstResponseMs: 100, Phases: []api.ColdStartPhase{
			{Name: "pull", AtMs: 0, Ms: 10}, {Name: "index", AtMs: 2, Ms: 3}, {Name: "prefetch", AtMs: 5, Ms: 45, Bytes: 1 << 20},
			{Name: "probe", AtMs: 30, Ms: 20}, {Name: "first_response", AtMs: 50, Ms: 50}}},
	}}})
	if _, err := fcctl(t, dir, "function", "create", "echo", "--image", "r/echo:1"); err != nil {
		t.Fatal(err)
	}
	out, err := fcctl(t, dir, "function", "coldstarts", "echo")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// Columns are every phase any start took, each after the phase it
	// followed; a start without one shows "-".
	if got, want := strings.Fields(lines[0]), []string{"STARTED", "INSTANCE", "PULL", "INDEX", "PREFETCH", "FETCH", "PROBE", "FIRST_RESPONSE", "TOTAL", "IMAGE"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("header: got %v, want %v", got, want)
	}
	if got := strings.Fields(lines[1]); len(got) < 9 || got[5] != "50.0" || got[3] != "-" || got[7] != "-" {
		t.Errorf("full start row: got %v, want fetch 50.0, no index, no first response", got)
	}
	out, err = fcctl(t, dir, "function", "coldstarts", "echo", "-w")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"instance lazy  total 50.0 ms  first response 100.0 ms", "prefetch", "1.0 MiB", "first_response"} {
		if !strings.Contains(out, want) {
			t.Errorf("-w output: want %q in\n%s", want, out)
		}
	}
	// The lazy start's axis ends at its first response (100 ms): its
	// first_response bar fills the second half of the 50 columns.
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "first_response") && !strings.Contains(l, "|"+strings.Repeat(" ", 25)+strings.Repeat("#", 25)+"|") {
			t.Errorf("first_response bar: got %q, want the second half filled", l)
		}
	}
}
