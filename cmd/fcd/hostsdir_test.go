package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	stdlog "log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/examples/images"
	"github.com/fcd-dev/fcd/puller/accel"
)

// writeHostsToml writes <dir>/<host>/hosts.toml.
func writeHostsToml(t *testing.T, dir, host, toml string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, host), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, host, "hosts.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAccelerationHostsDir checks that conversions reach registries as
// -registry-hosts-dir says: an image in a registry whose CA only the
// hosts directory gives is converted, and a function whose image's
// registry has an entry the converter cannot honour reports its
// acceleration Failed, saying why.
func TestAccelerationHostsDir(t *testing.T) {
	srv := httptest.NewTLSServer(registry.New(registry.Logger(stdlog.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	ref := host + "/examples/echo:v1"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	img, err := images.Build(ctx, images.Echo)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithContext(ctx), remote.WithTransport(srv.Client().Transport)); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	writeHostsToml(t, dir, host, fmt.Sprintf("server = %q\nca = %q\n", "https://"+host, ca))
	const unhonoured = "registry.test:5000"
	writeHostsToml(t, dir, unhonoured, "server = \"https://mirror.test:5000\"\n")
	d := startDaemonWith(t, t.TempDir(), []string{"-registry-hosts-dir", dir}, false)

	if status, body := callBody(t, d, http.MethodPost, "/fcd/v1/acceleration/jobs", map[string]any{"image": ref, "mode": accel.ModeIndexOnly}); status != http.StatusAccepted {
		t.Fatalf("accelerate %s: status %d (%s), want 202", ref, status, body)
	}
	var job accel.Job
	eventually(t, "acceleration Ready", time.Minute, func() bool {
		status := call(t, d, http.MethodGet, "/fcd/v1/acceleration/jobs/"+url.PathEscape(ref), nil, &job)
		if status != http.StatusOK || job.State == accel.StateFailed {
			t.Fatalf("job of %s: status %d, job %+v; want Ready", ref, status, job)
		}
		return job.State == accel.StateReady
	})

	c := sdkClient(t, d, d.creds.AccessKeySecret)
	_, err = c.CreateFunction(&fc.CreateFunctionRequest{Body: &fc.CreateFunctionInput{
		FunctionName: dara.String("unhonoured"),
		Runtime:      dara.String("custom-container"),
		CustomContainerConfig: &fc.CustomContainerConfig{
			Image:            dara.String(unhonoured + "/examples/echo:v1"),
			AccelerationType: dara.String(api.AccelerationDefault),
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var fn *fc.Function
	eventually(t, "acceleration Failed", 30*time.Second, func() bool {
		fn = getFunction(t, c, "unhonoured")
		info := fn.CustomContainerConfig.AccelerationInfo
		return info != nil && dara.StringValue(info.Status) == api.AccelerationFailed
	})
	reason := dara.StringValue(fn.LastUpdateStatusReason)
	if want := "registry hosts directory: " + filepath.Join(dir, unhonoured) + " gives mirror.test:5000, another host, as the server pushed to"; !strings.Contains(reason, want) {
		t.Errorf("GetFunction's lastUpdateStatusReason: got %q, want it to say %q", reason, want)
	}
}
