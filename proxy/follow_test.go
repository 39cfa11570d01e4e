package proxy

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/store"
)

// fakePools records what the proxy tells the scheduler.
type fakePools struct {
	mu  sync.Mutex
	log []string
}

func (p *fakePools) add(s string) {
	p.mu.Lock()
	p.log = append(p.log, s)
	p.mu.Unlock()
}

func (p *fakePools) Update(fn *api.Function) {
	p.add(fmt.Sprintf("update %s %d", fn.FunctionName, fn.MemorySize))
}
func (p *fakePools) Remove(name string) { p.add("remove " + name) }
func (p *fakePools) SetProvisioned(fn *api.Function, n int) {
	p.add(fmt.Sprintf("provision %s %d", fn.FunctionName, n))
}
func (p *fakePools) Provisioned(string) (int, int) { return 0, 0 }

func (p *fakePools) has(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.log {
		if l == s {
			return true
		}
	}
	return false
}

// eventually polls cond for a change another writer made, which reaches
// the proxy through the store's watch; it fails after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFollowsOtherWriters: changes the proxy did not make itself (another
// host, another writer of the store) reach its function cache and the
// scheduler through the store's watch.
func TestFollowsOtherWriters(t *testing.T) {
	be := httptest.NewServer(echoBackend())
	t.Cleanup(be.Close)
	st, err := store.Open(t.TempDir()+"/fcd.db", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	name, rt, img := "fn", api.RuntimeCustomContainer, "r/i:t"
	f, err := api.NewFunction(&api.Input{FunctionName: &name, Runtime: &rt, CustomContainerConfig: &api.ContainerInput{Image: &img}}, "id", "local", "1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateFunction(ctx, f); err != nil {
		t.Fatal(err)
	}
	pools := &fakePools{}
	sched := newFakeScheduler(strings.TrimPrefix(be.URL, "http://"))
	sched.log = &fakeLog{}
	addr := testServer(t, Options{Functions: st, Provision: st, Scheduler: sched, Pools: pools})
	path := "/" + api.Version + "/functions/fn/invocations"
	memory := func() string {
		resp, _ := (signedRequest{method: "POST", path: path, body: []byte("x")}).do(t, addr)
		<-sched.changed
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("invoke: got %d, want 200", resp.StatusCode)
		}
		fields := strings.Split(resp.Header.Get("x-echo-fn"), "/")
		return fields[1]
	}
	if got := memory(); got != "512" {
		t.Fatalf("memory before: got %s, want 512", got)
	}

	if _, err := st.UpdateFunction(ctx, "fn", func(f *api.Function) (*api.Function, error) {
		f.MemorySize = 1024
		return f, nil
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the scheduler told of the update", func() bool { return pools.has("update fn 1024") })
	if got := memory(); got != "1024" {
		t.Errorf("memory after another writer's update: got %s, want 1024", got)
	}
	if err := st.PutProvisionConfig(ctx, "fn", api.ProvisionConfig{Target: 2}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the scheduler told of the target", func() bool { return pools.has("provision fn 2") })
	if err := st.DeleteFunction(ctx, "fn"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the scheduler told of the removal", func() bool { return pools.has("remove fn") })
	resp, eb := (signedRequest{method: "POST", path: path, body: []byte("x")}).do(t, addr)
	if resp.StatusCode != http.StatusNotFound || eb.Code != CodeFunctionNotFound {
		t.Errorf("invoke after another writer's delete: got %d %s, want 404 FunctionNotFound", resp.StatusCode, eb.Code)
	}
}

// TestControlWritesAreApplied: a control API write answers only once the
// watch brought it to the scheduler, so the caller reads its own write.
func TestControlWritesAreApplied(t *testing.T) {
	st, err := store.Open(t.TempDir()+"/fcd.db", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pools := &fakePools{}
	addr := testServer(t, Options{Functions: st, Provision: st, Pools: pools})
	body := `{"functionName":"fn","runtime":"custom-container","customContainerConfig":{"image":"r/i:t"}}`
	resp, _ := (signedRequest{method: "POST", path: "/" + api.Version + "/functions", body: []byte(body)}).do(t, addr)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create: got %d, want 200", resp.StatusCode)
	}
	resp, _ = (signedRequest{method: "PUT", path: "/" + api.Version + "/functions/fn", body: []byte(`{"memorySize":1024}`)}).do(t, addr)
	if resp.StatusCode != http.StatusOK || !pools.has("update fn 1024") {
		t.Errorf("update: got %d, scheduler told %v; want 200, told at once", resp.StatusCode, pools.log)
	}
	resp, _ = (signedRequest{method: "PUT", path: "/" + api.Version + "/functions/fn/provision-config", body: []byte(`{"defaultTarget":3}`)}).do(t, addr)
	if resp.StatusCode != http.StatusOK || !pools.has("provision fn 3") {
		t.Errorf("provision: got %d, scheduler told %v; want 200, told at once", resp.StatusCode, pools.log)
	}
	resp, _ = (signedRequest{method: "DELETE", path: "/" + api.Version + "/functions/fn"}).do(t, addr)
	if resp.StatusCode != http.StatusNoContent || !pools.has("remove fn") {
		t.Errorf("delete: got %d, scheduler told %v; want 204, told at once", resp.StatusCode, pools.log)
	}
}
