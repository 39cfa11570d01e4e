package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/proxy"
	"github.com/fcd-dev/fcd/store"
)

// serve runs fcd's frontend (control API only) on loopback and writes its
// credentials.json into a fresh data dir, which it returns.
func serve(t *testing.T) string {
	t.Helper()
	return serveWith(t, proxy.Options{})
}

// serveWith is serve with opts, to which it adds the store and keys.
func serveWith(t *testing.T, opts proxy.Options) string {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "fcd.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	creds, err := api.NewCredentials(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := api.SaveCredentials(filepath.Join(dir, api.CredentialsFile), creds); err != nil {
		t.Fatal(err)
	}
	opts.Functions, opts.Versions, opts.Keys = st, st, proxy.StaticKeys{creds.AccessKeyID: creds.AccessKeySecret}
	if opts.Pools != nil {
		opts.Provision = st
	}
	srv := proxy.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return dir
}

func fcctl(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"--data-dir", dir}, args...), &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestFunctionCommands(t *testing.T) {
	dir := serve(t)
	steps := []struct {
		args    []string
		wantOut string
		wantErr error // nil, errUsage, or errAPI for any API error
	}{
		{[]string{"function", "create", "echo", "--image", "r/echo:1", "--memory", "1024", "--env", "A=1", "--command", `["/echo","-v"]`}, "Memory:        1024 MB", nil},
		{[]string{"function", "create", "echo", "--image", "r/echo:1"}, "FunctionAlreadyExists", errAPI},
		{[]string{"function", "create", "bad", "--image", "r/echo:1", "--memory", "100"}, "memorySize 100 is invalid", errAPI},
		{[]string{"function", "get", "echo", "-o", "json"}, `"memorySize": 1024`, nil},
		{[]string{"function", "update", "echo", "--timeout", "30"}, "Timeout:       30 s", nil},
		{[]string{"function", "get", "echo"}, "Env:           A=1", nil},
		{[]string{"function", "list"}, "echo  r/echo:1", nil},
		{[]string{"function", "delete", "echo"}, "deleted echo", nil},
		{[]string{"function", "get", "echo"}, "FunctionNotFound", errAPI},
		{[]string{"function", "get"}, "", errUsage},
		{[]string{"nonsense"}, "unknown command", errUsage},
	}
	for _, s := range steps {
		out, err := fcctl(t, dir, s.args...)
		switch {
		case s.wantErr == errUsage && !errors.Is(err, errUsage):
			t.Errorf("%v: got error %v, want a usage error", s.args, err)
		case s.wantErr == errAPI && !errors.As(err, new(*apiError)):
			t.Errorf("%v: got error %v, want an API error", s.args, err)
		case s.wantErr == nil && err != nil:
			t.Errorf("%v: %v", s.args, err)
		}
		if err != nil {
			out += err.Error()
		}
		if !strings.Contains(out, s.wantOut) {
			t.Errorf("%v: output %q does not contain %q", s.args, out, s.wantOut)
		}
	}
}

// errAPI marks steps expected to fail with an *apiError.
var errAPI = errors.New("api error")
