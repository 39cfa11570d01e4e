package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/examples/images"
	"github.com/fcd-dev/fcd/proxy"
	"github.com/fcd-dev/fcd/puller/accel"
	"github.com/fcd-dev/fcd/store"
)

// serveAccel runs fcd's frontend with an acceleration service converting
// images of an in-memory registry, whose host:port it returns with the
// data dir.
func serveAccel(t *testing.T) (dir, host string) {
	t.Helper()
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host = strings.TrimPrefix(reg.URL, "http://")
	dir = t.TempDir()
	st, err := store.Open(filepath.Join(dir, "fcd.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, err := accel.NewService(st.DB(), accel.NewConverter(accel.Options{TempDir: t.TempDir()}), accel.ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
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
	srv := proxy.New(proxy.Options{Functions: st, Keys: proxy.StaticKeys{creds.AccessKeyID: creds.AccessKeySecret}, Accelerator: svc})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- srv.Serve(ctx, ln) }()
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	return dir, host
}

func TestImageAccelerateCommands(t *testing.T) {
	dir, host := serveAccel(t)
	img, err := images.FromBinary("app", []byte(strings.Repeat("binary ", 10000)))
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/cli/app:v1"
	if err := images.Push(context.Background(), ref, img, nil); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(t.TempDir(), "prefetch")
	os.WriteFile(list, []byte("# start-up files\n/app/app\n/etc/\n"), 0o644)
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("app/app\n"), 0o644)

	out, err := fcctl(t, dir, "image", "accelerate", ref, "--mode", "full", "--prefetch-list", list)
	if err != nil || !strings.Contains(out, "State:        Ready") || !strings.Contains(out, "layers 1/1") || !strings.Contains(out, ref+"_accelerated@sha256:") {
		t.Fatalf("accelerate: got %v\n%s", err, out)
	}
	out, err = fcctl(t, dir, "image", "status", ref, "-o", "json")
	var job accel.Job
	if err != nil || json.Unmarshal([]byte(out), &job) != nil || job.State != accel.StateReady || job.Mode != accel.ModeFull ||
		len(job.Prefetch) != 2 || job.Result == nil || job.Progress.BytesDone != job.Progress.Bytes {
		t.Fatalf("status: got %v\n%s", err, out)
	}
	if out, err := fcctl(t, dir, "image", "jobs"); err != nil || !strings.Contains(out, ref) || !strings.Contains(out, "Ready") {
		t.Errorf("jobs: got %v\n%s", err, out)
	}
	if out, err := fcctl(t, dir, "image", "accelerate", ref, "--prefetch-list", bad); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("relative prefetch path: got %v\n%s", err, out)
	}
	if _, err := fcctl(t, dir, "image", "status", host+"/cli/none:v1"); !strings.Contains(errString(err), "AccelerationNotFound") {
		t.Errorf("status of an image never accelerated: got %v", err)
	}
	if _, err := fcctl(t, dir, "image", "accelerate", host+"/cli/app@sha256:"+strings.Repeat("a", 64)); !strings.Contains(errString(err), "InvalidArgument") {
		t.Errorf("accelerate a digest: got %v", err)
	}

	out, err = fcctl(t, dir, "image", "repo", host+"/cli/app", "--enabled=true", "--mode", "index-only", "--webhook", "http://127.0.0.1:1/hook")
	if err != nil || !strings.Contains(out, "Enabled:     true") || !strings.Contains(out, "index-only") {
		t.Fatalf("repo set: got %v\n%s", err, out)
	}
	out, err = fcctl(t, dir, "image", "repo", host+"/cli/app", "-o", "json")
	var set accel.Settings
	if err != nil || json.Unmarshal([]byte(out), &set) != nil || !set.Enabled || set.Webhook != "http://127.0.0.1:1/hook" {
		t.Fatalf("repo get: got %v\n%s", err, out)
	}
	if _, err := fcctl(t, dir, "image", "repo", host+"/cli/other"); !strings.Contains(errString(err), "AccelerationNotFound") {
		t.Errorf("repo get of an unset repository: got %v", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
