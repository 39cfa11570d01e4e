package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/scheduler"
	"github.com/fcd-dev/fcd/store"
)

// schedPools joins the real scheduler to the proxy, as cmd/fcd's pools
// adapter does; its instances are one backend server, each with an id of
// its own.
type schedPools struct {
	s   *scheduler.Scheduler
	log *fakeLog
}

var (
	_ Scheduler    = (*schedPools)(nil)
	_ Pools        = (*schedPools)(nil)
	_ VersionPools = (*schedPools)(nil)
)

func (p *schedPools) fn(f *api.Function) scheduler.Function {
	rev := strconv.FormatUint(f.Revision, 10)
	if f.VersionID != "" {
		rev = "v" + f.VersionID
	}
	return scheduler.Function{Name: f.FunctionName, Version: f.VersionID, Revision: rev, MemoryMB: 128, Concurrency: int(f.InstanceConcurrency), Config: f}
}

func (p *schedPools) Acquire(ctx context.Context, f *api.Function) (Lease, error) {
	l, err := p.s.Acquire(ctx, p.fn(f))
	if err != nil {
		return nil, err
	}
	return schedLease{l, p.log}, nil
}

func (p *schedPools) Update(f *api.Function)                   { p.s.Update(p.fn(f)) }
func (p *schedPools) Remove(name string)                       { p.s.Remove(name) }
func (p *schedPools) SetProvisioned(f *api.Function, n int)    { p.s.SetProvisioned(p.fn(f), n) }
func (p *schedPools) Provisioned(name string) (int, int)       { return p.s.Provisioned(name) }
func (p *schedPools) RemoveVersion(name, version string)       { p.s.RemoveVersion(name, version) }
func (p *schedPools) SetConcurrencyLimit(name string, max int) { p.s.SetConcurrencyLimit(name, max) }
func (p *schedPools) ProvisionedVersion(name, version string) (int, int) {
	return p.s.ProvisionedVersion(name, version)
}

func (p *schedPools) Instances(name string) []InstanceInfo {
	var out []InstanceInfo
	for _, in := range p.s.Instances(name) {
		out = append(out, InstanceInfo{ID: in.ID, VersionID: in.Version, Created: in.Created, Busy: in.Busy, Draining: in.Draining})
	}
	return out
}

type schedLease struct {
	*scheduler.Lease
	log *fakeLog
}

func (l schedLease) Addr() string       { return l.Instance().Addr() }
func (l schedLease) InstanceID() string { return l.Instance().ID() }
func (l schedLease) RequestLog(collect bool) RequestLog {
	return &fakeRequestLog{log: l.log, collect: collect}
}

// backendStarter starts instances that all forward to one backend.
type backendStarter struct {
	addr string
	n    atomic.Int64
}

func (b *backendStarter) Start(ctx context.Context, fn scheduler.Function) (scheduler.Instance, error) {
	v := fn.Version
	if v == "" {
		v = "latest"
	}
	return &backendInstance{id: fmt.Sprintf("%s-%s-%d", fn.Name, v, b.n.Add(1)), addr: b.addr, done: make(chan struct{})}, nil
}

type backendInstance struct {
	id, addr string
	done     chan struct{}
	once     sync.Once
}

func (i *backendInstance) ID() string            { return i.id }
func (i *backendInstance) Addr() string          { return i.addr }
func (i *backendInstance) Done() <-chan struct{} { return i.done }
func (i *backendInstance) Stop(context.Context) error {
	i.once.Do(func() { close(i.done) })
	return nil
}

// versionEnv is a proxy over a real store and scheduler whose instances
// answer with the version and qualifier they were sent. A request whose
// body is "hold" waits until release is closed.
type versionEnv struct {
	pools   *schedPools
	addr    string
	c       *fc.Client
	release chan struct{}
	held    chan struct{} // receives when a "hold" request arrived
}

func newVersionEnv(t *testing.T) *versionEnv {
	t.Helper()
	env := &versionEnv{release: make(chan struct{}), held: make(chan struct{}, 10)}
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if string(body) == "hold" {
			env.held <- struct{}{}
			<-env.release
		}
		w.Header().Set("x-echo-version", r.Header.Get("x-fc-version-id"))
		w.Header().Set("x-echo-qualifier", r.Header.Get("x-fc-qualifier"))
		w.Header().Set("x-echo-memory", r.Header.Get("x-fc-function-memory"))
		w.Write(body)
	}))
	t.Cleanup(be.Close)
	st, p := newVersionStack(t, be.URL)
	env.pools = p
	env.addr = testServer(t, Options{Functions: st, Provision: st, Versions: st, Scheduler: p, Pools: p, VersionPools: p})
	env.c = newSDKClient(t, env.addr)
	return env
}

// newVersionStack is a real store and scheduler whose instances are the
// backend at url, with the pools the proxy uses over them.
func newVersionStack(t *testing.T, url string) (*store.Store, *schedPools) {
	t.Helper()
	st, err := store.Open(t.TempDir()+"/fcd.db", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sched := scheduler.New(&backendStarter{addr: strings.TrimPrefix(url, "http://")}, scheduler.Options{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sched.Close(ctx)
	})
	return st, &schedPools{s: sched, log: &fakeLog{}}
}

// newSDKClient is the official SDK's client of the proxy at addr.
func newSDKClient(t *testing.T, addr string) *fc.Client {
	t.Helper()
	c, err := fc.NewClient(&openapiutil.Config{
		HttpClient:      ownHTTP{&http.Client{}},
		AccessKeyId:     dara.String(testKeyID),
		AccessKeySecret: dara.String(testSecret),
		Endpoint:        dara.String(addr),
		Protocol:        dara.String("http"),
		RegionId:        dara.String("local"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantCode(t *testing.T, what string, err error, code string, status int) {
	t.Helper()
	if c, s := sdkCode(err); c != code || s != status {
		t.Errorf("%s: got %q %d (%v), want %q %d", what, c, s, err, code, status)
	}
}

// invoke calls InvokeFunction of fn with a qualifier (none when empty)
// and returns the version and qualifier the instance saw.
func (e *versionEnv) invoke(t *testing.T, qualifier, body string, headers map[string]*string) (version, qual string, err error) {
	t.Helper()
	req := &fc.InvokeFunctionRequest{Body: strings.NewReader(body)}
	if qualifier != "" {
		req.Qualifier = dara.String(qualifier)
	}
	resp, err := e.c.InvokeFunctionWithOptions(dara.String("fn"), req, &fc.InvokeFunctionHeaders{CommonHeaders: headers}, &dara.RuntimeOptions{})
	if err != nil {
		return "", "", err
	}
	if resp.Body != nil {
		io.Copy(io.Discard, resp.Body)
	}
	return dara.StringValue(resp.Headers["x-echo-version"]), dara.StringValue(resp.Headers["x-echo-qualifier"]), nil
}

func (e *versionEnv) createFunction(t *testing.T) {
	t.Helper()
	_, err := e.c.CreateFunction(&fc.CreateFunctionRequest{Body: &fc.CreateFunctionInput{
		FunctionName: dara.String("fn"), Runtime: dara.String("custom-container"), MemorySize: dara.Int32(512),
		InstanceConcurrency:   dara.Int32(10),
		CustomContainerConfig: &fc.CustomContainerConfig{Image: dara.String("r/i:t")},
	}})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *versionEnv) setMemory(t *testing.T, mb int32) {
	t.Helper()
	if _, err := e.c.UpdateFunction(dara.String("fn"), &fc.UpdateFunctionRequest{Body: &fc.UpdateFunctionInput{MemorySize: dara.Int32(mb)}}); err != nil {
		t.Fatal(err)
	}
}

func (e *versionEnv) publish(t *testing.T, desc string) string {
	t.Helper()
	resp, err := e.c.PublishFunctionVersion(dara.String("fn"), &fc.PublishFunctionVersionRequest{Body: &fc.PublishVersionInput{Description: dara.String(desc)}})
	if err != nil {
		t.Fatal(err)
	}
	return dara.StringValue(resp.Body.VersionId)
}

// TestSDKVersionsAndAliases drives versions, aliases and qualifiers with
// the official SDK, error cases included.
func TestSDKVersionsAndAliases(t *testing.T) {
	env := newVersionEnv(t)
	c := env.c
	env.createFunction(t)
	if v := env.publish(t, "first"); v != "1" {
		t.Fatalf("first version: got %q, want 1", v)
	}
	env.setMemory(t, 1024)
	if v := env.publish(t, "second"); v != "2" {
		t.Fatalf("second version: got %q, want 2", v)
	}
	env.setMemory(t, 2048)
	if v := env.publish(t, "third"); v != "3" {
		t.Fatalf("third version: got %q, want 3", v)
	}

	// PublishFunctionVersion with nothing changed since the newest
	// version is refused, as FC refuses it; tags are no change; once the
	// newest version is gone, the one before it is compared.
	_, err := c.PublishFunctionVersion(dara.String("fn"), &fc.PublishFunctionVersionRequest{Body: &fc.PublishVersionInput{}})
	wantCode(t, "PublishFunctionVersion without a change", err, CodeVersionPublishError, 400)
	if code, _ := sdkCode(err); code == CodeVersionPublishError && !strings.Contains(err.Error(), "No changes were made since last publish") {
		t.Errorf("PublishFunctionVersion without a change: message %v lacks FC's \"No changes were made since last publish\"", err)
	}
	if _, err := c.TagResources(&fc.TagResourcesRequest{Body: &fc.TagResourcesInput{ResourceType: dara.String("FUNCTION"),
		ResourceId: dara.StringSlice([]string{"fn"}), Tag: []*fc.Tag{tag("k", "v")}}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.PublishFunctionVersion(dara.String("fn"), &fc.PublishFunctionVersionRequest{Body: &fc.PublishVersionInput{}})
	wantCode(t, "PublishFunctionVersion after tagging only", err, CodeVersionPublishError, 400)
	if _, err := c.DeleteFunctionVersion(dara.String("fn"), dara.String("3")); err != nil {
		t.Fatal(err)
	}
	if v := env.publish(t, "third again"); v != "4" {
		t.Fatalf("publish after the unchanged newest version was deleted: got %q, want 4 (version 2 froze another configuration)", v)
	}
	if _, err := c.DeleteFunctionVersion(dara.String("fn"), dara.String("4")); err != nil {
		t.Fatal(err)
	}

	// ListFunctionVersions: newest first by default; FORWARD pages.
	list, err := c.ListFunctionVersions(dara.String("fn"), &fc.ListFunctionVersionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := versionIDs(list.Body.Versions); got != "2,1" || dara.StringValue(list.Body.Direction) != "BACKWARD" {
		t.Errorf("ListFunctionVersions: got %s %s, want 2,1 BACKWARD", got, dara.StringValue(list.Body.Direction))
	}
	list, err = c.ListFunctionVersions(dara.String("fn"), &fc.ListFunctionVersionsRequest{Direction: dara.String("FORWARD"), Limit: dara.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	if got := versionIDs(list.Body.Versions); got != "1" || dara.StringValue(list.Body.NextToken) != "2" {
		t.Errorf("ListFunctionVersions FORWARD limit 1: got %s next %q, want 1 next 2", got, dara.StringValue(list.Body.NextToken))
	}
	_, err = c.ListFunctionVersions(dara.String("nosuch"), &fc.ListFunctionVersionsRequest{})
	wantCode(t, "ListFunctionVersions of a missing function", err, "FunctionNotFound", 404)

	// GetFunction with qualifiers: each version keeps its configuration.
	for q, want := range map[string]int32{"": 2048, "LATEST": 2048, "1": 512, "2": 1024} {
		got, err := c.GetFunction(dara.String("fn"), &fc.GetFunctionRequest{Qualifier: dara.String(q)})
		if err != nil {
			t.Fatalf("GetFunction qualifier %q: %v", q, err)
		}
		if m := dara.Int32Value(got.Body.MemorySize); m != want {
			t.Errorf("GetFunction qualifier %q: memorySize %d, want %d", q, m, want)
		}
	}
	_, err = c.GetFunction(dara.String("fn"), &fc.GetFunctionRequest{Qualifier: dara.String("9")})
	wantCode(t, "GetFunction of a missing version", err, CodeVersionNotFound, 404)
	_, err = c.GetFunction(dara.String("fn"), &fc.GetFunctionRequest{Qualifier: dara.String("nosuch")})
	wantCode(t, "GetFunction of a missing alias", err, CodeAliasNotFound, 404)

	// CreateAlias and its refusals.
	alias := func(name, version string, weights map[string]*float32) *fc.CreateAliasRequest {
		return &fc.CreateAliasRequest{Body: &fc.CreateAliasInput{AliasName: dara.String(name), VersionId: dara.String(version), AdditionalVersionWeight: weights}}
	}
	w := func(v float32) *float32 { return &v }
	_, err = c.CreateAlias(dara.String("fn"), alias("bad", "1", map[string]*float32{"2": w(1.5)}))
	wantCode(t, "CreateAlias with weight 1.5", err, CodeInvalidArgument, 400)
	_, err = c.CreateAlias(dara.String("fn"), alias("bad", "1", map[string]*float32{"2": w(-0.1)}))
	wantCode(t, "CreateAlias with weight -0.1", err, CodeInvalidArgument, 400)
	_, err = c.CreateAlias(dara.String("fn"), alias("bad", "9", nil))
	wantCode(t, "CreateAlias to a missing version", err, CodeVersionNotFound, 404)
	_, err = c.CreateAlias(dara.String("fn"), alias("bad", "1", map[string]*float32{"9": w(0.1)}))
	wantCode(t, "CreateAlias with a missing additional version", err, CodeVersionNotFound, 404)
	_, err = c.CreateAlias(dara.String("fn"), alias("LATEST", "1", nil))
	wantCode(t, "CreateAlias named LATEST", err, CodeInvalidArgument, 400)
	_, err = c.CreateAlias(dara.String("nosuch"), alias("prod", "1", nil))
	wantCode(t, "CreateAlias of a missing function", err, CodeFunctionNotFound, 404)
	created, err := c.CreateAlias(dara.String("fn"), alias("prod", "1", map[string]*float32{"2": w(0.2)}))
	if err != nil {
		t.Fatal(err)
	}
	if got := created.Body; dara.StringValue(got.VersionId) != "1" || dara.Float32Value(got.AdditionalVersionWeight["2"]) != 0.2 {
		t.Errorf("CreateAlias: got %v", got)
	}
	_, err = c.CreateAlias(dara.String("fn"), alias("prod", "1", nil))
	wantCode(t, "CreateAlias twice", err, CodeAliasAlreadyExists, 409)
	if _, err := c.CreateAlias(dara.String("fn"), alias("stable", "2", nil)); err != nil {
		t.Fatal(err)
	}

	got, err := c.GetAlias(dara.String("fn"), dara.String("prod"))
	if err != nil || dara.StringValue(got.Body.AliasName) != "prod" {
		t.Fatalf("GetAlias: got %v, %v", got, err)
	}
	_, err = c.GetAlias(dara.String("fn"), dara.String("nosuch"))
	wantCode(t, "GetAlias of a missing alias", err, CodeAliasNotFound, 404)
	aliases, err := c.ListAliases(dara.String("fn"), &fc.ListAliasesRequest{Prefix: dara.String("pr")})
	if err != nil || len(aliases.Body.Aliases) != 1 || dara.StringValue(aliases.Body.Aliases[0].AliasName) != "prod" {
		t.Fatalf("ListAliases prefix pr: got %v, %v", aliases, err)
	}
	aliases, err = c.ListAliases(dara.String("fn"), &fc.ListAliasesRequest{Limit: dara.Int32(1)})
	if err != nil || len(aliases.Body.Aliases) != 1 || dara.StringValue(aliases.Body.NextToken) != "stable" {
		t.Fatalf("ListAliases limit 1: got %v, %v; want prod, next stable", aliases, err)
	}
	_, err = c.UpdateAlias(dara.String("fn"), dara.String("prod"), &fc.UpdateAliasRequest{Body: &fc.UpdateAliasInput{AdditionalVersionWeight: map[string]*float32{"2": w(2)}}})
	wantCode(t, "UpdateAlias with weight 2", err, CodeInvalidArgument, 400)
	_, err = c.UpdateAlias(dara.String("fn"), dara.String("nosuch"), &fc.UpdateAliasRequest{Body: &fc.UpdateAliasInput{Description: dara.String("x")}})
	wantCode(t, "UpdateAlias of a missing alias", err, CodeAliasNotFound, 404)
	upd, err := c.UpdateAlias(dara.String("fn"), dara.String("prod"), &fc.UpdateAliasRequest{Body: &fc.UpdateAliasInput{Description: dara.String("canary")}})
	if err != nil || dara.StringValue(upd.Body.Description) != "canary" || dara.Float32Value(upd.Body.AdditionalVersionWeight["2"]) != 0.2 {
		t.Fatalf("UpdateAlias description: got %v, %v; want the weights kept", upd, err)
	}
	byAlias, err := c.GetFunction(dara.String("fn"), &fc.GetFunctionRequest{Qualifier: dara.String("stable")})
	if err != nil || dara.Int32Value(byAlias.Body.MemorySize) != 1024 {
		t.Fatalf("GetFunction qualifier stable: got %v, %v; want version 2's memorySize 1024", byAlias, err)
	}

	// DeleteFunctionVersion: refused while an alias routes to it.
	_, err = c.DeleteFunctionVersion(dara.String("fn"), dara.String("2"))
	wantCode(t, "DeleteFunctionVersion of a version aliases use", err, CodeVersionInUse, 409)
	_, err = c.DeleteFunctionVersion(dara.String("fn"), dara.String("9"))
	wantCode(t, "DeleteFunctionVersion of a missing version", err, CodeVersionNotFound, 404)

	// Invocations reach the version the qualifier names, and the instance
	// is told so.
	cases := []struct {
		qualifier string
		headers   map[string]*string
		version   string
		qual      string
	}{
		{"", nil, "LATEST", "LATEST"},
		{"LATEST", nil, "LATEST", "LATEST"},
		{"1", nil, "1", "1"},
		{"stable", nil, "2", "stable"},
		{"", map[string]*string{"x-fc-qualifier": dara.String("1")}, "1", "1"},
	}
	for _, tc := range cases {
		version, qual, err := env.invoke(t, tc.qualifier, "x", tc.headers)
		if err != nil || version != tc.version || qual != tc.qual {
			t.Errorf("invoke qualifier %q headers %v: got version %q qualifier %q (%v), want %q %q", tc.qualifier, tc.headers, version, qual, err, tc.version, tc.qual)
		}
	}
	_, _, err = env.invoke(t, "9", "x", nil)
	wantCode(t, "invoke a missing version", err, CodeVersionNotFound, 404)
	_, _, err = env.invoke(t, "nosuch", "x", nil)
	wantCode(t, "invoke a missing alias", err, CodeAliasNotFound, 404)
	_, _, err = env.invoke(t, "bad/q", "x", nil)
	wantCode(t, "invoke an invalid qualifier", err, CodeInvalidArgument, 400)

	// Instances are per version: ListInstances shows each, by qualifier.
	inst, err := c.ListInstances(dara.String("fn"), &fc.ListInstancesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, in := range inst.Body.Instances {
		seen[dara.StringValue(in.VersionId)] = true
		if dara.StringValue(in.Status) != InstanceRunning || dara.Int64Value(in.CreatedTimeMs) == 0 || dara.StringValue(in.InstanceId) == "" {
			t.Errorf("ListInstances: instance %v lacks a status, id or created time", in)
		}
	}
	if !seen["LATEST"] || !seen["1"] || !seen["2"] || len(inst.Body.Instances) != 3 {
		t.Errorf("ListInstances: got %v, want one instance each of LATEST, 1 and 2", inst.Body.Instances)
	}
	inst, err = c.ListInstances(dara.String("fn"), &fc.ListInstancesRequest{Qualifier: dara.String("1")})
	if err != nil || len(inst.Body.Instances) != 1 || dara.StringValue(inst.Body.Instances[0].VersionId) != "1" {
		t.Errorf("ListInstances qualifier 1: got %v, %v; want version 1's instance", inst, err)
	}
	_, err = c.ListInstances(dara.String("fn"), &fc.ListInstancesRequest{Qualifier: dara.String("nosuch")})
	wantCode(t, "ListInstances of a missing alias", err, CodeAliasNotFound, 404)

	// Once no alias uses version 2 it can go, and its instances with it.
	if _, err := c.DeleteAlias(dara.String("fn"), dara.String("stable")); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteAlias(dara.String("fn"), dara.String("stable"))
	wantCode(t, "DeleteAlias twice", err, CodeAliasNotFound, 404)
	if _, err := c.UpdateAlias(dara.String("fn"), dara.String("prod"), &fc.UpdateAliasRequest{Body: &fc.UpdateAliasInput{AdditionalVersionWeight: map[string]*float32{}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteFunctionVersion(dara.String("fn"), dara.String("2")); err != nil {
		t.Fatalf("DeleteFunctionVersion of an unused version: %v", err)
	}
	_, _, err = env.invoke(t, "2", "x", nil)
	wantCode(t, "invoke a deleted version", err, CodeVersionNotFound, 404)
	inst, err = c.ListInstances(dara.String("fn"), &fc.ListInstancesRequest{Qualifier: dara.String("2")})
	if err != nil || len(inst.Body.Instances) != 0 {
		t.Errorf("ListInstances of a deleted version: got %v, %v; want none", inst, err)
	}
}

func versionIDs(vs []*fc.Version) string {
	var ids []string
	for _, v := range vs {
		ids = append(ids, dara.StringValue(v.VersionId))
	}
	return strings.Join(ids, ",")
}

// TestTrafficSplit: an alias with 20% on version 2 sends 20% of 1,000
// invocations there. The count is Binomial(1000, 0.2): mean 200, standard
// deviation sqrt(1000*0.2*0.8) = 12.6. The test accepts 200 ± 63, five
// standard deviations: a correct split fails it with probability < 1e-6,
// while a split of 15% or 25% (mean 150 or 250) fails it nearly always.
func TestTrafficSplit(t *testing.T) {
	env := newVersionEnv(t)
	env.createFunction(t)
	env.publish(t, "")
	env.setMemory(t, 1024)
	env.publish(t, "")
	w := float32(0.2)
	if _, err := env.c.CreateAlias(dara.String("fn"), &fc.CreateAliasRequest{Body: &fc.CreateAliasInput{
		AliasName: dara.String("prod"), VersionId: dara.String("1"), AdditionalVersionWeight: map[string]*float32{"2": &w}}}); err != nil {
		t.Fatal(err)
	}
	const n, tolerance = 1000, 63
	counts := map[string]int{}
	for range n {
		version, qual, err := env.invoke(t, "prod", "x", nil)
		if err != nil {
			t.Fatal(err)
		}
		if qual != "prod" {
			t.Fatalf("x-fc-qualifier: got %q, want prod", qual)
		}
		counts[version]++
	}
	if counts["1"]+counts["2"] != n {
		t.Fatalf("versions reached: got %v, want only 1 and 2", counts)
	}
	if got := counts["2"]; got < n/5-tolerance || got > n/5+tolerance {
		t.Errorf("version 2 got %d of %d invocations, want %d ± %d", got, n, n/5, tolerance)
	}
	t.Logf("version 1: %d, version 2: %d of %d", counts["1"], counts["2"], n)
}

// TestSDKConcurrencyAndInvocationSwitch: reserved concurrency caps the
// function's concurrent requests over all versions; 0 refuses every
// invocation; DisableFunctionInvocation refuses them until enabled.
func TestSDKConcurrencyAndInvocationSwitch(t *testing.T) {
	env := newVersionEnv(t)
	c := env.c
	env.createFunction(t)
	env.publish(t, "")

	put := func(n int64) error {
		_, err := c.PutConcurrencyConfig(dara.String("fn"), &fc.PutConcurrencyConfigRequest{Body: &fc.PutConcurrencyInput{ReservedConcurrency: dara.Int64(n)}})
		return err
	}
	wantCode(t, "PutConcurrencyConfig -1", put(-1), CodeInvalidArgument, 400)
	_, err := c.PutConcurrencyConfig(dara.String("nosuch"), &fc.PutConcurrencyConfigRequest{Body: &fc.PutConcurrencyInput{ReservedConcurrency: dara.Int64(1)}})
	wantCode(t, "PutConcurrencyConfig of a missing function", err, CodeFunctionNotFound, 404)
	_, err = c.GetConcurrencyConfig(dara.String("fn"))
	wantCode(t, "GetConcurrencyConfig before any", err, CodeConcurrencyConfigNotFound, 404)
	if err := put(1); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetConcurrencyConfig(dara.String("fn"))
	if err != nil || dara.Int64Value(got.Body.ReservedConcurrency) != 1 || !strings.HasSuffix(dara.StringValue(got.Body.FunctionArn), "functions/fn") {
		t.Fatalf("GetConcurrencyConfig: got %v, %v", got, err)
	}
	list, err := c.ListConcurrencyConfigs(&fc.ListConcurrencyConfigsRequest{})
	if err != nil || len(list.Body.Configs) != 1 || dara.Int64Value(list.Body.Configs[0].ReservedConcurrency) != 1 {
		t.Fatalf("ListConcurrencyConfigs: got %v, %v", list, err)
	}
	list, err = c.ListConcurrencyConfigs(&fc.ListConcurrencyConfigsRequest{FunctionName: dara.String("other")})
	if err != nil || len(list.Body.Configs) != 0 {
		t.Fatalf("ListConcurrencyConfigs of another function: got %v, %v; want none", list, err)
	}

	// One request in flight on LATEST holds the only unit: version 1 is
	// throttled too.
	held := make(chan error, 1)
	go func() { _, _, err := env.invoke(t, "", "hold", nil); held <- err }()
	<-env.held
	_, _, err = env.invoke(t, "1", "x", nil)
	wantCode(t, "invoke over the reserved concurrency", err, CodeReservedExhausted, 429)
	close(env.release)
	if err := <-held; err != nil {
		t.Fatalf("held invocation: %v", err)
	}
	if _, _, err := env.invoke(t, "1", "x", nil); err != nil {
		t.Fatalf("invoke after the held one ended: %v", err)
	}
	if err := put(0); err != nil {
		t.Fatal(err)
	}
	_, _, err = env.invoke(t, "", "x", nil)
	wantCode(t, "invoke with reserved concurrency 0", err, CodeReservedExhausted, 429)
	if _, err := c.DeleteConcurrencyConfig(dara.String("fn")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := env.invoke(t, "", "x", nil); err != nil {
		t.Fatalf("invoke after DeleteConcurrencyConfig: %v", err)
	}

	// The invocation switch.
	_, err = c.DisableFunctionInvocation(dara.String("fn"), &fc.DisableFunctionInvocationRequest{AbortOngoingRequest: dara.Bool(true)})
	wantCode(t, "DisableFunctionInvocation abortOngoingRequest", err, CodeInvalidArgument, 400)
	dis, err := c.DisableFunctionInvocation(dara.String("fn"), &fc.DisableFunctionInvocationRequest{Reason: dara.String("maintenance")})
	if err != nil || !dara.BoolValue(dis.Body.Success) {
		t.Fatalf("DisableFunctionInvocation: got %v, %v", dis, err)
	}
	for _, q := range []string{"", "1"} {
		_, _, err = env.invoke(t, q, "x", nil)
		wantCode(t, "invoke a disabled function, qualifier "+q, err, CodeFunctionDisabled, 403)
	}
	f, err := c.GetFunction(dara.String("fn"), &fc.GetFunctionRequest{})
	if err != nil || f.Body.InvocationRestriction == nil || !dara.BoolValue(f.Body.InvocationRestriction.Disable) || dara.StringValue(f.Body.InvocationRestriction.Reason) != "maintenance" {
		t.Fatalf("GetFunction of a disabled function: got %v, %v; want invocationRestriction disable, maintenance", f, err)
	}
	en, err := c.EnableFunctionInvocation(dara.String("fn"))
	if err != nil || !dara.BoolValue(en.Body.Success) {
		t.Fatalf("EnableFunctionInvocation: got %v, %v", en, err)
	}
	if _, _, err := env.invoke(t, "", "x", nil); err != nil {
		t.Fatalf("invoke after EnableFunctionInvocation: %v", err)
	}
	_, err = c.DisableFunctionInvocation(dara.String("nosuch"), &fc.DisableFunctionInvocationRequest{})
	wantCode(t, "DisableFunctionInvocation of a missing function", err, CodeFunctionNotFound, 404)
}

// TestHTTPTriggerQualifier: an HTTP trigger routes to its qualifier's
// version; a trigger on an alias that does not exist answers AliasNotFound.
func TestHTTPTriggerQualifier(t *testing.T) {
	env := newVersionEnv(t)
	c := env.c
	env.createFunction(t)
	env.publish(t, "")
	trigger := func(q string) *fc.CreateTriggerRequest {
		return &fc.CreateTriggerRequest{Body: &fc.CreateTriggerInput{TriggerName: dara.String("http"), TriggerType: dara.String("http"),
			TriggerConfig: dara.String(`{"authType":"anonymous"}`), Qualifier: dara.String(q)}}
	}
	_, err := c.CreateTrigger(dara.String("fn"), trigger("bad/q"))
	wantCode(t, "CreateTrigger with an invalid qualifier", err, CodeInvalidArgument, 400)
	created, err := c.CreateTrigger(dara.String("fn"), trigger("1"))
	if err != nil || dara.StringValue(created.Body.Qualifier) != "1" {
		t.Fatalf("CreateTrigger qualifier 1: got %v, %v", created, err)
	}
	get := func() *http.Response {
		t.Helper()
		resp, err := http.Get("http://" + env.addr + "/fn/fn/path")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := get(); resp.StatusCode != 200 || resp.Header.Get("x-echo-version") != "1" || resp.Header.Get("x-echo-qualifier") != "1" {
		t.Errorf("trigger on version 1: got %d version %q qualifier %q", resp.StatusCode, resp.Header.Get("x-echo-version"), resp.Header.Get("x-echo-qualifier"))
	}
	if _, err := c.UpdateTrigger(dara.String("fn"), dara.String("http"), &fc.UpdateTriggerRequest{Body: &fc.UpdateTriggerInput{Qualifier: dara.String("nosuch")}}); err != nil {
		t.Fatal(err)
	}
	if resp := get(); resp.StatusCode != 404 {
		t.Errorf("trigger on a missing alias: got %d, want 404", resp.StatusCode)
	}
	if _, err := c.UpdateTrigger(dara.String("fn"), dara.String("http"), &fc.UpdateTriggerRequest{Body: &fc.UpdateTriggerInput{Qualifier: dara.String("LATEST")}}); err != nil {
		t.Fatal(err)
	}
	if resp := get(); resp.Header.Get("x-echo-version") != "LATEST" {
		t.Errorf("trigger on LATEST: got version %q", resp.Header.Get("x-echo-version"))
	}
}

// TestCustomDomainQualifier: a custom domain route's qualifier takes the
// place of the function's HTTP trigger's; one that does not exist
// answers 404.
func TestCustomDomainQualifier(t *testing.T) {
	env := newVersionEnv(t)
	c := env.c
	env.createFunction(t)
	env.publish(t, "")
	if _, err := c.CreateTrigger(dara.String("fn"), &fc.CreateTriggerRequest{Body: &fc.CreateTriggerInput{TriggerName: dara.String("http"),
		TriggerType: dara.String("http"), TriggerConfig: dara.String(`{"authType":"anonymous"}`)}}); err != nil {
		t.Fatal(err)
	}
	domain := func(q string) *fc.CreateCustomDomainRequest {
		return &fc.CreateCustomDomainRequest{Body: &fc.CreateCustomDomainInput{DomainName: dara.String("v" + q + ".example.com"), Protocol: dara.String("HTTP"),
			RouteConfig: &fc.RouteConfig{Routes: []*fc.PathConfig{{Path: dara.String("/*"), FunctionName: dara.String("fn"), Qualifier: dara.String(q)}}}}}
	}
	for _, q := range []string{"1", "nosuch"} {
		if _, err := c.CreateCustomDomain(domain(q)); err != nil {
			t.Fatalf("CreateCustomDomain qualifier %s: %v", q, err)
		}
	}
	get := func(host string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+env.addr+"/path", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := get("v1.example.com"); resp.StatusCode != 200 || resp.Header.Get("x-echo-version") != "1" || resp.Header.Get("x-echo-qualifier") != "1" {
		t.Errorf("route on version 1: got %d version %q qualifier %q", resp.StatusCode, resp.Header.Get("x-echo-version"), resp.Header.Get("x-echo-qualifier"))
	}
	if resp := get("vnosuch.example.com"); resp.StatusCode != 404 {
		t.Errorf("route on a missing alias: got %d, want 404", resp.StatusCode)
	}
	if resp := get("fn.fcd.localhost"); resp.Header.Get("x-echo-version") != "LATEST" {
		t.Errorf("the trigger's own URL: got version %q, want LATEST", resp.Header.Get("x-echo-version"))
	}
}

// TestSDKQualifiedProvision: a provision config on an alias keeps its
// version's instances warm, and follows the alias to another version.
func TestSDKQualifiedProvision(t *testing.T) {
	env := newVersionEnv(t)
	c := env.c
	env.createFunction(t)
	env.publish(t, "")
	env.setMemory(t, 1024) // a second version needs a change
	env.publish(t, "")
	if _, err := c.CreateAlias(dara.String("fn"), &fc.CreateAliasRequest{Body: &fc.CreateAliasInput{AliasName: dara.String("prod"), VersionId: dara.String("1")}}); err != nil {
		t.Fatal(err)
	}
	put := func(q string, n int64) (*fc.PutProvisionConfigResponse, error) {
		return c.PutProvisionConfig(dara.String("fn"), &fc.PutProvisionConfigRequest{Qualifier: dara.String(q), Body: &fc.PutProvisionConfigInput{DefaultTarget: dara.Int64(n)}})
	}
	_, err := put("9", 1)
	wantCode(t, "PutProvisionConfig of a missing version", err, CodeVersionNotFound, 404)
	_, err = put("nosuch", 1)
	wantCode(t, "PutProvisionConfig of a missing alias", err, CodeAliasNotFound, 404)
	_, err = c.GetProvisionConfig(dara.String("fn"), &fc.GetProvisionConfigRequest{Qualifier: dara.String("prod")})
	wantCode(t, "GetProvisionConfig before any", err, CodeProvisionNotFound, 404)
	if _, err := put("prod", 2); err != nil {
		t.Fatal(err)
	}
	provisioned := func(version string) (target, current int) { return env.pools.ProvisionedVersion("fn", version) }
	waitFor(t, "2 instances of version 1", func() bool { _, cur := provisioned("1"); return cur == 2 })
	got, err := c.GetProvisionConfig(dara.String("fn"), &fc.GetProvisionConfigRequest{Qualifier: dara.String("prod")})
	if err != nil || dara.Int64Value(got.Body.DefaultTarget) != 2 || dara.Int64Value(got.Body.Current) != 2 {
		t.Fatalf("GetProvisionConfig prod: got %v, %v; want target 2, current 2", got, err)
	}
	if target, _ := env.pools.s.Provisioned("fn"); target != 0 {
		t.Errorf("LATEST's provisioned target: got %d, want 0", target)
	}

	// The alias moves to version 2: so do its warm instances.
	if _, err := c.UpdateAlias(dara.String("fn"), dara.String("prod"), &fc.UpdateAliasRequest{Body: &fc.UpdateAliasInput{VersionId: dara.String("2")}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "2 instances of version 2", func() bool { _, cur := provisioned("2"); return cur == 2 })
	if target, _ := provisioned("1"); target != 0 {
		t.Errorf("version 1's provisioned target after the alias moved: got %d, want 0", target)
	}
	if _, err := c.DeleteProvisionConfig(dara.String("fn"), &fc.DeleteProvisionConfigRequest{Qualifier: dara.String("prod")}); err != nil {
		t.Fatal(err)
	}
	if target, _ := provisioned("2"); target != 0 {
		t.Errorf("version 2's provisioned target after DeleteProvisionConfig: got %d, want 0", target)
	}
	_, err = c.GetProvisionConfig(dara.String("fn"), &fc.GetProvisionConfigRequest{Qualifier: dara.String("prod")})
	wantCode(t, "GetProvisionConfig after delete", err, CodeProvisionNotFound, 404)

	// Deleting an alias deletes its provision config.
	if _, err := put("prod", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteAlias(dara.String("fn"), dara.String("prod")); err != nil {
		t.Fatal(err)
	}
	if target, _ := provisioned("2"); target != 0 {
		t.Errorf("version 2's provisioned target after its alias was deleted: got %d, want 0", target)
	}
}

// waitFor polls cond until it holds, for at most 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
