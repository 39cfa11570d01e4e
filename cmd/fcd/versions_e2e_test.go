package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"

	"github.com/fcd-dev/fcd/examples/images"
)

// TestVersionsEndToEnd runs versions on real instances: an HTTP trigger on
// an alias splitting traffic between two versions reaches an instance of
// each version, which is told its version and qualifier; ListInstances
// shows them; reserved concurrency 0 and DisableFunctionInvocation refuse
// invocations with FC's errors.
func TestVersionsEndToEnd(t *testing.T) {
	requireRuntime(t)
	refs := pushExamples(t, images.Echo)
	dataDir := t.TempDir()
	flags := []string{"-name", "fcdver", "-subnet", "10.113.0.0/16"}
	d := startDaemonWith(t, dataDir, flags, true)
	c := sdkClient(t, d, d.creds.AccessKeySecret)
	createFunction(t, c, "echo", refs[images.Echo], 10)
	publish := func() string {
		t.Helper()
		v, err := c.PublishFunctionVersion(dara.String("echo"), &fc.PublishFunctionVersionRequest{Body: &fc.PublishVersionInput{}})
		if err != nil {
			t.Fatal(err)
		}
		return dara.StringValue(v.Body.VersionId)
	}
	v1 := publish()
	if _, err := c.UpdateFunction(dara.String("echo"), &fc.UpdateFunctionRequest{Body: &fc.UpdateFunctionInput{
		EnvironmentVariables: map[string]*string{"RELEASE": dara.String("two")}}}); err != nil {
		t.Fatal(err)
	}
	v2 := publish()
	half := float32(0.5)
	if _, err := c.CreateAlias(dara.String("echo"), &fc.CreateAliasRequest{Body: &fc.CreateAliasInput{
		AliasName: dara.String("prod"), VersionId: dara.String(v1), AdditionalVersionWeight: map[string]*float32{v2: &half}}}); err != nil {
		t.Fatal(err)
	}
	// A function has one HTTP trigger: createFunction's (LATEST) gives way
	// to one on the alias.
	if _, err := c.DeleteTrigger(dara.String("echo"), dara.String("http")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTrigger(dara.String("echo"), &fc.CreateTriggerRequest{Body: &fc.CreateTriggerInput{
		TriggerName: dara.String("web"), TriggerType: dara.String("http"), Qualifier: dara.String("prod"),
		TriggerConfig: dara.String(`{"authType":"anonymous"}`)}}); err != nil {
		t.Fatal(err)
	}

	// 40 requests at 50%: both versions are reached (a miss has
	// probability 2^-39), each on an instance of its own.
	servers := map[string]map[string]bool{}
	for range 40 {
		resp, err := http.Get("http://" + d.endpoint + "/fn/echo/")
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Headers map[string][]string
			Server  string
		}
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("trigger request: got %d, %v", resp.StatusCode, err)
		}
		h := http.Header(got.Headers)
		if q := h.Get("x-fc-qualifier"); q != "prod" {
			t.Fatalf("x-fc-qualifier: got %q, want prod", q)
		}
		v := h.Get("x-fc-version-id")
		if servers[v] == nil {
			servers[v] = map[string]bool{}
		}
		servers[v][strings.Split(got.Server, ":")[0]] = true
	}
	if len(servers) != 2 || servers[v1] == nil || servers[v2] == nil {
		t.Fatalf("versions reached: got %v, want %s and %s", servers, v1, v2)
	}
	for ip := range servers[v1] {
		if servers[v2][ip] {
			t.Fatalf("instance %s served both versions", ip)
		}
	}

	list, err := c.ListInstances(dara.String("echo"), &fc.ListInstancesRequest{Qualifier: dara.String("prod")})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, in := range list.Body.Instances {
		seen[dara.StringValue(in.VersionId)] = true
	}
	if !seen[v1] || !seen[v2] {
		t.Errorf("ListInstances qualifier prod: got %v, want instances of %s and %s", list.Body.Instances, v1, v2)
	}

	if _, _, err := invoke(c, "echo", "latest"); err != nil {
		t.Fatalf("invoke LATEST: %v", err)
	}
	_, err = c.DeleteFunctionVersion(dara.String("echo"), dara.String(v2))
	if code, status := sdkCode(err); code != "VersionInUse" || status != 409 {
		t.Errorf("DeleteFunctionVersion of a version prod uses: got %q %d (%v)", code, status, err)
	}
	if _, err := c.PutConcurrencyConfig(dara.String("echo"), &fc.PutConcurrencyConfigRequest{Body: &fc.PutConcurrencyInput{ReservedConcurrency: dara.Int64(0)}}); err != nil {
		t.Fatal(err)
	}
	_, _, err = invoke(c, "echo", "x")
	if code, status := sdkCode(err); code != "ResourceThrottled" || status != 429 {
		t.Errorf("invoke with reserved concurrency 0: got %q %d (%v)", code, status, err)
	}
	if _, err := c.DeleteConcurrencyConfig(dara.String("echo")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DisableFunctionInvocation(dara.String("echo"), &fc.DisableFunctionInvocationRequest{Reason: dara.String("test")}); err != nil {
		t.Fatal(err)
	}
	_, _, err = invoke(c, "echo", "x")
	if code, status := sdkCode(err); code != "FunctionDisabled" || status != 403 {
		t.Errorf("invoke a disabled function: got %q %d (%v)", code, status, err)
	}
	if _, err := c.EnableFunctionInvocation(dara.String("echo")); err != nil {
		t.Fatal(err)
	}
	if _, body, err := invoke(c, "echo", "again"); err != nil || body != "again" {
		t.Fatalf("invoke after enable: got %q, %v", body, err)
	}

	// After a restart the alias still routes, and a reserved concurrency
	// set before it still applies.
	if _, err := c.PutConcurrencyConfig(dara.String("echo"), &fc.PutConcurrencyConfigRequest{Body: &fc.PutConcurrencyInput{ReservedConcurrency: dara.Int64(0)}}); err != nil {
		t.Fatal(err)
	}
	d.stop()
	d = startDaemonWith(t, dataDir, flags, true)
	c = sdkClient(t, d, d.creds.AccessKeySecret)
	req := &fc.InvokeFunctionRequest{Qualifier: dara.String("prod"), Body: strings.NewReader("x")}
	_, err = c.InvokeFunctionWithOptions(dara.String("echo"), req, &fc.InvokeFunctionHeaders{}, &dara.RuntimeOptions{})
	if code, status := sdkCode(err); code != "ResourceThrottled" || status != 429 {
		t.Errorf("invoke prod with reserved concurrency 0 after a restart: got %q %d (%v)", code, status, err)
	}
	if _, err := c.DeleteConcurrencyConfig(dara.String("echo")); err != nil {
		t.Fatal(err)
	}
	resp, err := c.InvokeFunctionWithOptions(dara.String("echo"), &fc.InvokeFunctionRequest{Qualifier: dara.String("prod"), Body: strings.NewReader("y")},
		&fc.InvokeFunctionHeaders{}, &dara.RuntimeOptions{})
	if err != nil || dara.Int32Value(resp.StatusCode) != 200 {
		t.Fatalf("invoke prod after a restart: got %v, %v", resp, err)
	}
}
