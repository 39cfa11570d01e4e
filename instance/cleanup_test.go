package instance

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/containerd"

	"github.com/fcd-dev/fcd/examples/images"
	"github.com/fcd-dev/fcd/puller"
)

// TestLeftoversSpareNewInstances abandons a Manager with running
// instances, as a kill -9 of fcd does, and lets the next Manager start an
// instance of the same function (under one shim group, as fcd runs them)
// before it removes the earlier one's leftovers: the removal must take
// every instance of the earlier Manager and none of its own.
func TestLeftoversSpareNewInstances(t *testing.T) {
	e := setup(t)
	const name = "fcdgen"
	dir, err := os.MkdirTemp("", name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := StartDaemon(ctx, DaemonOptions{Name: name, DataDir: dir, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c, err := containerd.New(d.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	open := func() *Manager {
		t.Helper()
		p, err := puller.New(c, puller.Options{Namespace: name, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewManager(c, Options{Name: name, DataDir: dir, Subnet: netip.MustParsePrefix("10.87.3.0/24"),
			StopGrace: time.Second, ShimGroup: true, NetPool: -1, Images: p, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	spec := Spec{Function: "gen", Image: e.refs[images.Echo], MemoryMB: 128}

	m1 := open()
	if err := m1.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	var oldIDs []string
	var oldPIDs []int
	for range 2 {
		inst, err := m1.Start(ctx, spec)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		oldIDs, oldPIDs = append(oldIDs, inst.ID()), append(oldPIDs, int(inst.task.Pid()))
	}
	// m1 is abandoned without Close.

	m2 := open()
	left, err := m2.Leftovers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leftovers of the earlier Manager: %s", left)
	inst, err := m2.Start(ctx, spec)
	if err != nil {
		t.Fatalf("Start while the leftovers are there: %v", err)
	}
	if err := left.Remove(ctx, 0); err != nil {
		t.Errorf("Remove: %v", err)
	}
	select {
	case <-inst.Done():
		t.Fatalf("the clean-up of the earlier Manager ended the new instance: %+v", inst.Exit())
	default:
	}
	get(t, "http://"+inst.Addr()+"/after-cleanup")
	for _, pid := range oldPIDs {
		if alive(pid) {
			t.Errorf("process %d of the earlier Manager still runs", pid)
		}
	}
	f := footprint(name, dir, oldIDs, nil)
	t.Logf("after Remove, with one new instance: %s", f)
	// The new instance's own: its shim, overlay and disk mounts, loop
	// device, namespace (a mount too), veth and address.
	if f.shims != 1 || f.processes != 0 || f.mounts != 3 || f.loops != 1 || f.netns != 1 || f.veths != 1 || f.ips != 1 {
		t.Errorf("after Remove: %s; want the new instance's 1 shim, 3 mounts, 1 loop device, 1 netns, 1 veth, 1 IP only", f)
	}
	for _, id := range oldIDs {
		if _, err := os.Stat(m2.instanceDir(id)); !os.IsNotExist(err) {
			t.Errorf("writable layer of earlier instance %s: %v, want gone", id, err)
		}
	}
	if err := m2.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	if got := footprint(name, dir, nil, nil); got != (leftovers{}) {
		t.Errorf("after Close: %s; want nothing", got)
	}
}

// TestRemoveLeasesOfTheirHolder removes the address leases an earlier
// process held, and keeps one released and leased again since.
func TestRemoveLeasesOfTheirHolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fcd")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(ip, id string) string {
		p := filepath.Join(dir, ip)
		if err := os.WriteFile(p, []byte(id+"\r\neth0"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := write("10.0.0.2", "aaaa")
	reused := write("10.0.0.3", "bbbb")
	listed := map[string]string{}
	for _, p := range []string{old, reused} {
		id, ok := leaseHolder(p)
		if !ok {
			t.Fatalf("leaseHolder(%s): no holder", p)
		}
		listed[p] = id
	}
	if listed[old] != "aaaa" {
		t.Errorf("leaseHolder: got %q, want aaaa", listed[old])
	}
	write("10.0.0.3", "cccc") // released by its CNI DEL, leased by a new instance
	if err := removeLeases(listed); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("lease of the earlier holder: %v, want removed", err)
	}
	if id, _ := leaseHolder(reused); id != "cccc" {
		t.Errorf("lease of the new holder: got %q, want it kept (cccc)", id)
	}
}

func TestStartTime(t *testing.T) {
	a, ok := startTime(os.Getpid())
	b, _ := startTime(os.Getpid())
	if !ok || a == "" || a != b {
		t.Errorf("startTime of this process: %q, %q, %v; want one stable value", a, b, ok)
	}
	if _, ok := startTime(-1); ok {
		t.Error("startTime of no process: ok, want false")
	}
}
