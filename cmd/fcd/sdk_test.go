package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/fcd-dev/fcd/api"
)

// daemon is an fcd started in-process by a test.
type daemon struct {
	endpoint string
	creds    api.Credentials
	stop     func()
}

// startDaemon runs fcd serving the control API only on a loopback port
// with dataDir until the test ends or stop is called.
func startDaemon(t *testing.T, dataDir string) *daemon {
	t.Helper()
	return startDaemonWith(t, dataDir, nil, false)
}

// startDaemonWith runs fcd with extra flags, with instances when runtime.
func startDaemonWith(t *testing.T, dataDir string, args []string, runtime bool) *daemon {
	t.Helper()
	return startDaemonConfig(t, dataDir, append([]string{"-registry-address", "127.0.0.1:0"}, args...), func(cfg *Config) {
		cfg.noRuntime = !runtime
	})
}

// startDaemonConfig runs fcd with flags args, letting adjust change the
// parsed configuration before it starts; it stops when the test ends.
func startDaemonConfig(t *testing.T, dataDir string, args []string, adjust func(*Config)) *daemon {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The tests' registries listen on 127.0.0.1, which fcd refuses by
	// default (-registry-refuse); args may take the exception back.
	cfg, err := parseConfig(append([]string{"-data-dir", dataDir, "-registry-allow", testRegistries}, args...), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.listener = ln
	cfg.ready = make(chan struct{})
	adjust(&cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { done <- run(ctx, cfg, log) }()
	var once bool
	stop := func() {
		if once {
			return
		}
		once = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("fcd exited: %v", err)
		}
	}
	t.Cleanup(stop)
	select {
	case <-cfg.ready:
	case err := <-done:
		t.Fatalf("fcd exited at start: %v", err)
	}
	creds, err := api.LoadCredentials(filepath.Join(dataDir, api.CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	return &daemon{endpoint: ln.Addr().String(), creds: creds, stop: stop}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// ownHTTP gives an SDK client an http.Client of its own. By default the SDK
// shares one per endpoint and rewrites its Timeout on every request
// without synchronization, a data race between concurrent calls.
type ownHTTP struct{ c *http.Client }

func (h ownHTTP) Call(req *http.Request, tr *http.Transport) (*http.Response, error) {
	if h.c.Transport == nil {
		h.c.Transport = tr
	}
	return h.c.Do(req)
}

func sdkClient(t testing.TB, d *daemon, secret string) *fc.Client {
	t.Helper()
	c, err := fc.NewClient(&openapiutil.Config{
		HttpClient:      ownHTTP{&http.Client{}},
		AccessKeyId:     dara.String(d.creds.AccessKeyID),
		AccessKeySecret: dara.String(secret),
		Endpoint:        dara.String(d.endpoint),
		Protocol:        dara.String("http"),
		RegionId:        dara.String("local"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sdkCode returns the FC error code and HTTP status of an SDK error.
func sdkCode(err error) (string, int) {
	// The SDK converts its errors to *tea.SDKError before returning them.
	var se *tea.SDKError
	if errors.As(err, &se) {
		return dara.StringValue(se.Code), dara.IntValue(se.StatusCode)
	}
	return "", 0
}

func TestSDKControlAPI(t *testing.T) {
	dataDir := t.TempDir()
	d := startDaemon(t, dataDir)
	c := sdkClient(t, d, d.creds.AccessKeySecret)

	create := &fc.CreateFunctionRequest{Body: &fc.CreateFunctionInput{
		FunctionName:        dara.String("echo"),
		Runtime:             dara.String("custom-container"),
		MemorySize:          dara.Int32(1024),
		Timeout:             dara.Int32(30),
		InstanceConcurrency: dara.Int32(10),
		EnvironmentVariables: map[string]*string{
			"GREETING": dara.String("hello"),
		},
		CustomContainerConfig: &fc.CustomContainerConfig{
			Image:            dara.String("127.0.0.1:5000/examples/echo:latest"),
			Command:          []*string{dara.String("/echo"), dara.String("-v")},
			Port:             dara.Int32(9000),
			AccelerationType: dara.String("Default"),
		},
	}}
	created, err := c.CreateFunction(create)
	if err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	cf := created.Body
	if got := dara.StringValue(cf.FunctionName); got != "echo" {
		t.Fatalf("created name: got %q, want echo", got)
	}
	if got := dara.Float32Value(cf.Cpu); got != 0.5 {
		t.Errorf("default cpu: got %g, want 0.5", got)
	}
	if cf.CustomContainerConfig == nil || cf.CustomContainerConfig.AccelerationInfo == nil ||
		dara.StringValue(cf.CustomContainerConfig.AccelerationInfo.Status) != api.AccelerationPreparing {
		t.Errorf("accelerationInfo: got %+v, want status Preparing", cf.CustomContainerConfig)
	}

	_, err = c.CreateFunction(create)
	if code, status := sdkCode(err); code != "FunctionAlreadyExists" || status != 409 {
		t.Errorf("duplicate create: got %q/%d (%v), want FunctionAlreadyExists/409", code, status, err)
	}

	got, err := c.GetFunction(dara.String("echo"), &fc.GetFunctionRequest{})
	if err != nil {
		t.Fatalf("GetFunction: %v", err)
	}
	g := got.Body
	if dara.Int32Value(g.MemorySize) != 1024 || dara.StringValue(g.EnvironmentVariables["GREETING"]) != "hello" ||
		len(g.CustomContainerConfig.Command) != 2 || dara.StringValue(g.FunctionArn) == "" {
		t.Errorf("GetFunction: got %s", g.String())
	}

	_, err = c.GetFunction(dara.String("missing"), &fc.GetFunctionRequest{})
	if code, status := sdkCode(err); code != "FunctionNotFound" || status != 404 {
		t.Errorf("get missing: got %q/%d (%v), want FunctionNotFound/404", code, status, err)
	}

	bad := &fc.CreateFunctionRequest{Body: &fc.CreateFunctionInput{
		FunctionName:          dara.String("bad"),
		Runtime:               dara.String("custom-container"),
		MemorySize:            dara.Int32(100),
		CustomContainerConfig: &fc.CustomContainerConfig{Image: dara.String("r/i:t")},
	}}
	_, err = c.CreateFunction(bad)
	if code, status := sdkCode(err); code != "InvalidArgument" || status != 400 {
		t.Errorf("bad memory: got %q/%d (%v), want InvalidArgument/400", code, status, err)
	}

	updated, err := c.UpdateFunction(dara.String("echo"), &fc.UpdateFunctionRequest{Body: &fc.UpdateFunctionInput{
		Timeout: dara.Int32(60),
	}})
	if err != nil {
		t.Fatalf("UpdateFunction: %v", err)
	}
	if u := updated.Body; dara.Int32Value(u.Timeout) != 60 || dara.Int32Value(u.MemorySize) != 1024 ||
		dara.StringValue(u.EnvironmentVariables["GREETING"]) != "hello" {
		t.Errorf("partial update: got %s", u.String())
	}

	for _, name := range []string{"fa", "fb", "fc"} {
		req := *create.Body
		req.FunctionName = dara.String(name)
		if _, err := c.CreateFunction(&fc.CreateFunctionRequest{Body: &req}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	var names []string
	var token *string
	for pages := 0; pages < 10; pages++ {
		list, err := c.ListFunctions(&fc.ListFunctionsRequest{Prefix: dara.String("f"), Limit: dara.Int32(2), NextToken: token})
		if err != nil {
			t.Fatalf("ListFunctions: %v", err)
		}
		for _, f := range list.Body.Functions {
			names = append(names, dara.StringValue(f.FunctionName))
		}
		token = list.Body.NextToken
		if dara.StringValue(token) == "" {
			break
		}
	}
	if strings.Join(names, ",") != "fa,fb,fc" {
		t.Errorf("ListFunctions pages: got %v, want [fa fb fc]", names)
	}

	if _, err := c.DeleteFunction(dara.String("fa")); err != nil {
		t.Fatalf("DeleteFunction: %v", err)
	}
	_, err = c.DeleteFunction(dara.String("fa"))
	if code, status := sdkCode(err); code != "FunctionNotFound" || status != 404 {
		t.Errorf("delete twice: got %q/%d (%v), want FunctionNotFound/404", code, status, err)
	}

	wrong := sdkClient(t, d, "not-the-secret")
	_, err = wrong.GetFunction(dara.String("echo"), &fc.GetFunctionRequest{})
	if code, status := sdkCode(err); code != "SignatureNotMatch" || status != 403 {
		t.Errorf("wrong secret: got %q/%d (%v), want SignatureNotMatch/403", code, status, err)
	}

	// Restart: every function survives.
	d.stop()
	d2 := startDaemon(t, dataDir)
	c2 := sdkClient(t, d2, d2.creds.AccessKeySecret)
	if d2.creds.AccessKeyID != d.creds.AccessKeyID {
		t.Errorf("admin key changed across restart")
	}
	list, err := c2.ListFunctions(&fc.ListFunctionsRequest{})
	if err != nil {
		t.Fatalf("ListFunctions after restart: %v", err)
	}
	names = names[:0]
	for _, f := range list.Body.Functions {
		names = append(names, dara.StringValue(f.FunctionName))
	}
	if strings.Join(names, ",") != "echo,fb,fc" {
		t.Errorf("after restart: got %v, want [echo fb fc]", names)
	}
	got, err = c2.GetFunction(dara.String("echo"), &fc.GetFunctionRequest{})
	if err != nil || dara.Int32Value(got.Body.Timeout) != 60 {
		t.Errorf("echo after restart: got %v, %v", got, err)
	}
}
