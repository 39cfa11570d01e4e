package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/billing"
	"github.com/fcd-dev/fcd/examples/images"
)

// call sends a signed request to fcd's own API and decodes the JSON answer
// into out (when non-nil). It returns the HTTP status.
func call(t *testing.T, d *daemon, method, path string, in, out any) int {
	t.Helper()
	var body []byte
	if in != nil {
		body, _ = json.Marshal(in)
	}
	req, err := http.NewRequest(method, "http://"+d.endpoint+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if err := api.SignRequest(req, body, d.creds.AccessKeyID, d.creds.AccessKeySecret); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

func createWithRole(c *fc.Client, name, image, role string) error {
	_, err := c.CreateFunction(&fc.CreateFunctionRequest{Body: &fc.CreateFunctionInput{
		FunctionName:          dara.String(name),
		Runtime:               dara.String("custom-container"),
		MemorySize:            dara.Int32(1024),
		Role:                  dara.String(role),
		CustomContainerConfig: &fc.CustomContainerConfig{Image: dara.String(image)},
	}})
	return err
}

// TestPrivateImages pulls a private image from the embedded registry with
// the temporary credentials of the function's role, and checks the pull
// charges in the billing ledger, which survives a restart.
func TestPrivateImages(t *testing.T) {
	requireRuntime(t)
	dataDir := t.TempDir()
	d := startDaemonWith(t, dataDir, []string{"-name", "fcdrole", "-subnet", "10.92.0.0/16"}, true)
	if d.creds.Registry == "" {
		t.Fatal("credentials.json names no registry")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	img, err := images.Build(ctx, images.Echo)
	if err != nil {
		t.Fatal(err)
	}
	ref := images.Ref(d.creds.Registry, images.Echo)
	if err := images.Push(ctx, ref, img, nil); err == nil {
		t.Fatal("anonymous push to the embedded registry succeeded")
	}
	if err := images.Push(ctx, ref, img, &authn.Basic{Username: d.creds.AccessKeyID, Password: d.creds.AccessKeySecret}); err != nil {
		t.Fatalf("admin push: %v", err)
	}

	for _, r := range []struct{ name, repo string }{{"puller", "examples/*"}, {"other", "other/*"}} {
		if status := call(t, d, "POST", "/fcd/v1/roles", map[string]any{"roleName": r.name, "repositories": []string{r.repo}}, nil); status != 200 {
			t.Fatalf("create role %s: status %d", r.name, status)
		}
	}
	arn := func(role string) string { return "acs:ram::1000000000000000:role/" + role }
	c := sdkClient(t, d, d.creds.AccessKeySecret)

	t.Run("unknown role is refused", func(t *testing.T) {
		err := createWithRole(c, "ghost", ref, arn("ghost"))
		if code, status := sdkCode(err); code != "InvalidArgument" || status != 400 {
			t.Fatalf("got %q/%d (%v), want InvalidArgument/400", code, status, err)
		}
	})
	for _, tc := range []struct{ name, role string }{{"norole", ""}, {"wrongrole", arn("other")}} {
		t.Run(tc.name+" cannot pull", func(t *testing.T) {
			if err := createWithRole(c, tc.name, ref, tc.role); err != nil {
				t.Fatal(err)
			}
			_, _, err := invoke(c, tc.name, "x")
			code, status := sdkCode(err)
			if code != "FunctionNotStarted" || status != 412 || !strings.Contains(strings.ToLower(err.Error()), "authoriz") {
				t.Fatalf("got %q/%d (%v), want FunctionNotStarted/412 with an authorization error", code, status, err)
			}
			// The puller recognised the refusal (puller.ErrUnauthorized).
			if !strings.Contains(err.Error(), "image pull not authorized: the registry refused the function's credentials") {
				t.Errorf("error %v: want it to say the registry refused the function's credentials", err)
			}
		})
	}
	t.Run("role allowed the repository pulls", func(t *testing.T) {
		if err := createWithRole(c, "withrole", ref, arn("puller")); err != nil {
			t.Fatal(err)
		}
		createHTTPTrigger(t, c, "withrole")
		resp, err := http.Get("http://" + d.endpoint + "/fn/withrole/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct{ Headers map[string][]string }
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
			t.Fatalf("status %d: %v", resp.StatusCode, err)
		}
		for _, h := range []string{"X-Fc-Access-Key-Id", "X-Fc-Access-Key-Secret", "X-Fc-Security-Token"} {
			if len(got.Headers[h]) == 0 || got.Headers[h][0] == "" {
				t.Errorf("the instance got no %s", h)
			}
		}
	})
	t.Run("role keys reach the environment", func(t *testing.T) {
		probe, err := images.Build(ctx, images.Probe)
		if err != nil {
			t.Fatal(err)
		}
		pref := images.Ref(d.creds.Registry, images.Probe)
		if err := images.Push(ctx, pref, probe, &authn.Basic{Username: d.creds.AccessKeyID, Password: d.creds.AccessKeySecret}); err != nil {
			t.Fatalf("admin push: %v", err)
		}
		if err := createWithRole(c, "roleenv", pref, arn("puller")); err != nil {
			t.Fatal(err)
		}
		createHTTPTrigger(t, c, "roleenv")
		for _, name := range []string{"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN"} {
			resp, err := http.Get("http://" + d.endpoint + "/fn/roleenv/env?name=" + name)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Value string
				Set   bool
			}
			err = json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("status %d: %v", resp.StatusCode, err)
			}
			if !got.Set || got.Value == "" {
				t.Errorf("%s: got set=%v value %q, want the role's key", name, got.Set, got.Value)
			}
		}
	})
	t.Run("function options reach the instance", func(t *testing.T) {
		testFunctionOptions(t, d, c, images.Ref(d.creds.Registry, images.Probe), arn("puller"))
	})
	t.Run("registryConfig pulls without a role", func(t *testing.T) {
		testRegistryAuth(t, d, c, images.Ref(d.creds.Registry, images.Probe))
	})
	t.Run("second cold start is a cache hit", func(t *testing.T) {
		// A new revision drains the warm instance, so the next request
		// starts another one, which finds the image on the host.
		if _, err := c.UpdateFunction(dara.String("withrole"), &fc.UpdateFunctionRequest{Body: &fc.UpdateFunctionInput{Timeout: dara.Int32(5)}}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := invoke(c, "withrole", "again"); err != nil {
			t.Fatal(err)
		}
	})

	checkLedger := func(t *testing.T, d *daemon) {
		var page struct {
			Records []billing.Record
			Totals  billing.Totals
		}
		if status := call(t, d, "GET", "/fcd/v1/billing?function=withrole&kind=pull", nil, &page); status != 200 {
			t.Fatalf("billing query: status %d", status)
		}
		if len(page.Records) != 2 {
			t.Fatalf("pull records: got %d, want 2: %+v", len(page.Records), page.Records)
		}
		first, second := page.Records[0], page.Records[1]
		if first.CacheHit || first.GBSeconds <= 0 || first.Bytes <= 0 {
			t.Errorf("first cold start: got %+v, want a charged pull", first)
		}
		if !second.CacheHit || second.GBSeconds != 0 {
			t.Errorf("second cold start: got %+v, want a free cache hit", second)
		}
	}
	checkLedger(t, d)
	d.stop()
	d2 := startDaemonWith(t, dataDir, []string{"-name", "fcdrole", "-subnet", "10.92.0.0/16"}, true)
	checkLedger(t, d2)
}
