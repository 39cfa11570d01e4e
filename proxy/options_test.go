package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/scheduler"
	"github.com/fcd-dev/fcd/store"
)

// fakeCredentials issues fixed keys for any role.
type fakeCredentials struct{}

func (fakeCredentials) RoleCredentials(context.Context, string) (string, string, string, error) {
	return "STS.id", "secret", "token", nil
}

// TestDisableInjectCredentials: the role's keys reach the instance in
// request headers unless the function's disableInjectCredentials is
// Request or All.
func TestDisableInjectCredentials(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-got-key", r.Header.Get("x-fc-access-key-id"))
	}))
	t.Cleanup(be.Close)
	st, err := store.Open(t.TempDir()+"/fcd.db", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	want := map[string]string{"None": "STS.id", "Env": "STS.id", "Request": "", "All": ""}
	for mode := range want {
		name, rt, img, role := "fn"+mode, api.RuntimeCustomContainer, "r/i:t", "acs:ram::1:role/r"
		f, err := api.NewFunction(&api.Input{FunctionName: &name, Runtime: &rt, Role: &role, DisableInjectCredentials: &mode,
			CustomContainerConfig: &api.ContainerInput{Image: &img}}, "id", "local", "1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateFunction(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	sched := newFakeScheduler(strings.TrimPrefix(be.URL, "http://"))
	sched.log = &fakeLog{}
	addr := testServer(t, Options{Functions: st, Scheduler: sched, Credentials: fakeCredentials{}})
	for mode, key := range want {
		resp, eb := (signedRequest{method: "POST", path: "/" + api.Version + "/functions/fn" + mode + "/invocations"}).do(t, addr)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: got %d %s", mode, resp.StatusCode, eb.Message)
		}
		if got := resp.Header.Get("x-got-key"); got != key {
			t.Errorf("disableInjectCredentials %s: instance got x-fc-access-key-id %q, want %q", mode, got, key)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestDisableOndemandRefusal: a function that allows provisioned instances
// only and has none is refused with 429 ResourceExhausted saying why.
func TestDisableOndemandRefusal(t *testing.T) {
	env := newInvokeEnv(t, echoBackend())
	env.sched.err = scheduler.ErrOnDemandDisabled
	resp, eb := (signedRequest{method: "POST", path: "/" + api.Version + "/functions/fn/invocations"}).do(t, env.addr)
	if resp.StatusCode != 429 || eb.Code != CodeResourceExhausted || !strings.Contains(eb.Message, "on-demand instances are disabled") {
		t.Errorf("got %d %s %q, want 429 ResourceExhausted saying on-demand instances are disabled", resp.StatusCode, eb.Code, eb.Message)
	}
}

// sessionScheduler is fakeScheduler that records the session keys of
// AcquireSession.
type sessionScheduler struct {
	*fakeScheduler
	mu   sync.Mutex
	keys []string
}

func (s *sessionScheduler) AcquireSession(ctx context.Context, fn *api.Function, key string) (Lease, error) {
	s.mu.Lock()
	s.keys = append(s.keys, key)
	s.mu.Unlock()
	return s.fakeScheduler.Acquire(ctx, fn)
}

// TestSessionAffinityHeader: a function with sessionAffinity HEADER_FIELD
// places a request by the value of its header; one without the header,
// or a function without affinity, is placed as always.
func TestSessionAffinityHeader(t *testing.T) {
	var sched *sessionScheduler
	env2 := newInvokeEnvWith(t, httptest.NewServer(echoBackend()), 3, func(inner Scheduler) Scheduler {
		sched = &sessionScheduler{fakeScheduler: inner.(*fakeScheduler)}
		return sched
	})
	aff, cfg := api.SessionAffinityHeaderField, `{"affinityHeaderFieldName":"x-session"}`
	if _, err := env2.st.UpdateFunction(context.Background(), "fn", func(f *api.Function) (*api.Function, error) {
		return f.Update(&api.Input{SessionAffinity: &aff, SessionAffinityConfig: &cfg}, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	path := "/" + api.Version + "/functions/fn/invocations"
	eventually(t, "the update applied", func() bool {
		resp, _ := (signedRequest{method: "POST", path: path, tamper: func(r *http.Request) { r.Header.Set("x-session", "probe") }}).do(t, env2.addr)
		env2.waitLease(t)
		sched.mu.Lock()
		defer sched.mu.Unlock()
		return resp.StatusCode == 200 && len(sched.keys) > 0
	})
	sched.mu.Lock()
	sched.keys = nil
	sched.mu.Unlock()
	for _, key := range []string{"s1", "", "s2"} {
		resp, eb := (signedRequest{method: "POST", path: path, tamper: func(r *http.Request) {
			if key != "" {
				r.Header.Set("x-session", key)
			}
		}}).do(t, env2.addr)
		if resp.StatusCode != 200 {
			t.Fatalf("invoke: %d %s", resp.StatusCode, eb.Message)
		}
		env2.waitLease(t)
	}
	sched.mu.Lock()
	defer sched.mu.Unlock()
	if want := []string{"s1", "s2"}; !slices.Equal(sched.keys, want) {
		t.Errorf("session keys: got %v, want %v (none for the request without the header)", sched.keys, want)
	}
}
