package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"
)

// fieldCase is one value of one function field, by its JSON path, and
// what fcd does with it: honoured (GetFunction reflects it), ignored (a
// server-owned output field, FC ignores it on input too) or refused with
// 400 InvalidArgument naming the field.
type fieldCase struct {
	path  string
	value any
	want  string // "honoured", "ignored" or "refused"
}

// with holds, by case ("path=value"), fields a value needs beside it.
var with = map[string]map[string]any{
	"sessionAffinity=HEADER_FIELD": {"sessionAffinityConfig": `{"affinityHeaderFieldName":"x-session"}`},
	`sessionAffinityConfig={"affinityHeaderFieldName":"x-session","sessionIdleTimeoutInSeconds":60,"sessionTTLInSeconds":3600}`: {"sessionAffinity": "HEADER_FIELD"},
	`sessionAffinityConfig={"affinityHeaderFieldName":"x-session","sessionConcurrencyPerInstance":5}`:                           {"sessionAffinity": "HEADER_FIELD"},
}

func (c fieldCase) with() map[string]any { return with[fmt.Sprintf("%s=%v", c.path, c.value)] }

// functionFieldCases covers every field the SDK models on CreateFunction-
// and UpdateFunctionInput, the container config, a lifecycle hook and
// customDNS; TestSDKFunctionFields fails when the SDK has one it lacks.
var functionFieldCases = []fieldCase{
	{"code", map[string]any{"zipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}, "refused"},
	{"cpu", 0.5, "honoured"},
	{"customDNS.nameServers", []string{"10.0.0.53", "10.0.0.54"}, "honoured"},
	{"customDNS.searches", []string{"corp.example"}, "honoured"},
	{"customDNS.dnsOptions", []map[string]string{{"name": "ndots", "value": "2"}}, "honoured"},
	{"customRuntimeConfig", map[string]any{"command": []string{"node"}}, "refused"},
	{"description", "a function", "honoured"},
	{"disableInjectCredentials", "All", "honoured"},
	{"disableOndemand", true, "honoured"},
	{"diskSize", 10240, "honoured"},
	{"enableLongLiving", true, "refused"},
	{"environmentVariables", map[string]string{"A": "1"}, "honoured"},
	{"functionName", "", "honoured"}, // every case sets it
	{"gpuConfig", map[string]any{"gpuType": "fc.gpu.tesla.1", "gpuMemorySize": 16384}, "refused"},
	{"handler", "index.handler", "honoured"},
	{"idleTimeout", 60, "honoured"},
	{"instanceConcurrency", 10, "honoured"},
	{"instanceIsolationMode", "SHARE", "honoured"},
	{"instanceIsolationMode", "SESSION_EXCLUSIVE", "refused"},
	{"instanceLifecycleConfig.initializer.handler", "init", "honoured"},
	{"instanceLifecycleConfig.initializer.timeout", 5, "honoured"},
	{"instanceLifecycleConfig.initializer.command", []string{"/bin/init"}, "refused"},
	{"instanceLifecycleConfig.preStop.handler", "stop", "honoured"},
	{"instanceLifecycleConfig.preStop.timeout", 5, "honoured"},
	{"instanceLifecycleConfig.preStop.command", []string{"/bin/stop"}, "refused"},
	{"internetAccess", true, "honoured"},
	{"internetAccess", false, "honoured"}, // behaviour: instance TestInternetAccess, cmd/fcd TestInstanceSpecOffline
	{"layers", []string{"acs:fc:local:1:layers/x/versions/1"}, "refused"},
	{"logConfig", map[string]any{"project": "p", "logstore": "l"}, "refused"},
	{"memorySize", 1024, "honoured"},
	{"nasConfig", map[string]any{"userId": 1000, "mountPoints": []map[string]any{{"serverAddr": "nas:/", "mountDir": "/mnt"}}}, "refused"},
	{"ossMountConfig", map[string]any{"mountPoints": []map[string]any{{"bucketName": "b", "mountDir": "/mnt"}}}, "refused"},
	{"polarFsConfig", map[string]any{"userId": 1000}, "refused"},
	{"resourceGroupId", "rg-1", "refused"},
	{"role", "acs:ram::1000000000000000:role/fieldrole", "honoured"},
	{"runtime", "custom-container", "honoured"},
	{"sessionAffinity", "NONE", "honoured"},
	{"sessionAffinity", "HEADER_FIELD", "honoured"},
	{"sessionAffinity", "MCP_SSE", "refused"},
	{"sessionAffinityConfig", `{"affinityHeaderFieldName":"x-session","sessionIdleTimeoutInSeconds":60,"sessionTTLInSeconds":3600}`, "honoured"},
	{"sessionAffinityConfig", `{"affinityHeaderFieldName":"x-session","sessionConcurrencyPerInstance":5}`, "refused"},
	{"tags", []map[string]string{{"Key": "team", "Value": "a"}}, "honoured"},
	{"timeout", 60, "honoured"},
	{"tracingConfig", map[string]any{"type": "Jaeger"}, "refused"},
	{"vpcConfig", map[string]any{"vpcId": "vpc-1"}, "refused"},

	{"customContainerConfig.accelerationInfo", map[string]any{"status": "Ready"}, "ignored"},
	{"customContainerConfig.accelerationType", "None", "honoured"},
	{"customContainerConfig.acrInstanceId", "cri-1", "refused"},
	{"customContainerConfig.command", []string{"/app/echo", "-v"}, "honoured"},
	{"customContainerConfig.entrypoint", []string{"/bin/sh", "-c"}, "honoured"},
	{"customContainerConfig.healthCheckConfig", map[string]any{"httpGetUrl": "/ready", "initialDelaySeconds": 1,
		"periodSeconds": 2, "timeoutSeconds": 1, "failureThreshold": 3, "successThreshold": 1}, "honoured"},
	{"customContainerConfig.image", "127.0.0.1:5000/examples/other:v2", "honoured"},
	{"customContainerConfig.port", 8080, "honoured"},
	{"customContainerConfig.registryConfig", map[string]any{"authConfig": map[string]any{"userName": "u", "password": "p"}}, "honoured"},
	{"customContainerConfig.registryConfig", map[string]any{"certConfig": map[string]any{"insecure": true}}, "refused"},
	{"customContainerConfig.registryConfig", map[string]any{"networkConfig": map[string]any{"vpcId": "vpc-1"}}, "refused"},
	{"customContainerConfig.resolvedImageUri", "127.0.0.1:5000/x@sha256:" + strings.Repeat("0", 64), "ignored"},
}

// TestSDKFunctionFields sends every function field the SDK models, one
// at a time through CreateFunction and UpdateFunction, and checks each is
// reflected by GetFunction or refused with 400 naming it.
func TestSDKFunctionFields(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range functionFieldCases {
		covered[c.path] = true
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[fc.CreateFunctionInput](), reflect.TypeFor[fc.UpdateFunctionInput]()} {
		for _, p := range sdkFieldPaths(typ, "") {
			if !covered[p] {
				t.Errorf("the SDK's %s has field %s, which no case covers", typ.Name(), p)
			}
		}
	}

	d := startDaemon(t, t.TempDir())
	if status := call(t, d, "POST", "/fcd/v1/roles", map[string]any{"roleName": "fieldrole", "repositories": []string{"examples/*"}}, nil); status != 200 {
		t.Fatalf("create role: status %d", status)
	}
	c := sdkClient(t, d, d.creds.AccessKeySecret)
	createType, updateType := reflect.TypeFor[fc.CreateFunctionInput](), reflect.TypeFor[fc.UpdateFunctionInput]()
	for i, tc := range functionFieldCases {
		if tc.path == "functionName" {
			continue
		}
		name := fmt.Sprintf("f%d", i)
		t.Run(fmt.Sprintf("create %s=%v", tc.path, tc.value), func(t *testing.T) {
			body := baseFunctionBody(name)
			setPath(body, tc.path, tc.value)
			for k, v := range tc.with() {
				setPath(body, k, v)
			}
			var in fc.CreateFunctionInput
			remarshal(t, body, &in)
			_, err := c.CreateFunction(&fc.CreateFunctionRequest{Body: &in})
			checkFieldOutcome(t, c, name, tc, err)
		})
		if !hasSDKField(updateType, tc.path) {
			if hasSDKField(createType, tc.path) {
				t.Logf("%s: CreateFunction only", tc.path)
			}
			continue
		}
		t.Run(fmt.Sprintf("update %s=%v", tc.path, tc.value), func(t *testing.T) {
			uname := name + "u"
			var base fc.CreateFunctionInput
			remarshal(t, baseFunctionBody(uname), &base)
			if _, err := c.CreateFunction(&fc.CreateFunctionRequest{Body: &base}); err != nil {
				t.Fatal(err)
			}
			body := map[string]any{}
			if strings.HasPrefix(tc.path, "customContainerConfig.") {
				body = baseFunctionBody(uname)
				delete(body, "functionName")
				delete(body, "runtime")
			}
			setPath(body, tc.path, tc.value)
			for k, v := range tc.with() {
				setPath(body, k, v)
			}
			var in fc.UpdateFunctionInput
			remarshal(t, body, &in)
			_, err := c.UpdateFunction(dara.String(uname), &fc.UpdateFunctionRequest{Body: &in})
			checkFieldOutcome(t, c, uname, tc, err)
		})
	}
}

func checkFieldOutcome(t *testing.T, c *fc.Client, name string, tc fieldCase, err error) {
	t.Helper()
	if tc.want == "refused" {
		code, status := sdkCode(err)
		if code != "InvalidArgument" || status != 400 || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), "not supported here") {
			t.Fatalf("got %q/%d (%v), want InvalidArgument/400 naming %s as not supported here", code, status, err, tc.path)
		}
		if _, err := c.GetFunction(dara.String(name), &fc.GetFunctionRequest{}); err == nil && !strings.HasSuffix(name, "u") {
			t.Errorf("a refused CreateFunction created %s", name)
		}
		return
	}
	if err != nil {
		t.Fatalf("got %v, want the field %s", err, tc.want)
	}
	got, err := c.GetFunction(dara.String(name), &fc.GetFunctionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	remarshal(t, got.Body, &m)
	if tc.want == "ignored" {
		return
	}
	var want any
	remarshal(t, tc.value, &want)
	if g := getPath(m, tc.path); !reflect.DeepEqual(g, want) {
		t.Errorf("GetFunction %s: got %#v, want %#v", tc.path, g, want)
	}
}

func baseFunctionBody(name string) map[string]any {
	return map[string]any{
		"functionName":          name,
		"runtime":               "custom-container",
		"customContainerConfig": map[string]any{"image": "127.0.0.1:5000/examples/echo:latest"},
	}
}

// sdkFieldPaths lists the JSON paths of typ's fields, descending into the
// container config, the lifecycle hooks and customDNS.
func sdkFieldPaths(typ reflect.Type, prefix string) []string {
	var out []string
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := prefix + name
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft {
		case reflect.TypeFor[fc.CustomContainerConfig](), reflect.TypeFor[fc.CustomDNS](),
			reflect.TypeFor[fc.InstanceLifecycleConfig](), reflect.TypeFor[fc.LifecycleHook]():
			out = append(out, sdkFieldPaths(ft, path+".")...)
		default:
			out = append(out, path)
		}
	}
	return out
}

func hasSDKField(typ reflect.Type, path string) bool {
	for _, p := range sdkFieldPaths(typ, "") {
		if p == path {
			return true
		}
	}
	return false
}

func setPath(m map[string]any, path string, v any) {
	head, rest, nested := strings.Cut(path, ".")
	if !nested {
		m[head] = v
		return
	}
	sub, ok := m[head].(map[string]any)
	if !ok {
		sub = map[string]any{}
		m[head] = sub
	}
	setPath(sub, rest, v)
}

func getPath(m map[string]any, path string) any {
	head, rest, nested := strings.Cut(path, ".")
	if !nested {
		return m[head]
	}
	sub, _ := m[head].(map[string]any)
	return getPath(sub, rest)
}

func remarshal(t *testing.T, in, out any) {
	t.Helper()
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatal(err)
	}
}
