package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/puller"
	"github.com/fcd-dev/fcd/puller/accel"
)

// testRegistries is the -registry-allow of the tests' fcds: their
// registries listen on 127.0.0.1, which -registry-refuse refuses by
// default.
const testRegistries = "127.0.0.1/32"

func TestRegistryAddressFlags(t *testing.T) {
	none := func(string) string { return "" }
	cfg, err := parseConfig([]string{"-memory-budget", "-1"}, none)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.RegistryAddresses.Refused; !slices.Equal(got, puller.DefaultRefused) {
		t.Errorf("default -registry-refuse: got %v, want %v", got, puller.DefaultRefused)
	}
	if a := cfg.RegistryAddresses; len(a.Allowed) != 0 || len(a.AllowedAddrs) != 0 {
		t.Errorf("default -registry-allow: got %v %v, want none", a.Allowed, a.AllowedAddrs)
	}

	cfg, err = parseConfig([]string{"-memory-budget", "-1", "-registry-refuse", "10.0.0.0/8, 192.0.2.1,fd00::/8",
		"-registry-allow", "10.1.0.0/16,10.2.0.1,10.3.0.1:5000,[fd00::1]:443"}, none)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.RegistryAddresses
	wantRefused := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("fd00::/8")}
	wantAllowed := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("10.2.0.1/32")}
	wantAddrs := []netip.AddrPort{netip.MustParseAddrPort("10.3.0.1:5000"), netip.MustParseAddrPort("[fd00::1]:443")}
	if !slices.Equal(a.Refused, wantRefused) || !slices.Equal(a.Allowed, wantAllowed) || !slices.Equal(a.AllowedAddrs, wantAddrs) {
		t.Errorf("got refused %v, allowed %v %v; want %v, %v %v", a.Refused, a.Allowed, a.AllowedAddrs, wantRefused, wantAllowed, wantAddrs)
	}

	cfg, err = parseConfig([]string{"-memory-budget", "-1", "-registry-refuse", ""}, none)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := registryAddresses(cfg, nil); err != nil || p != nil {
		t.Errorf("empty -registry-refuse: got policy %v, %v; want none", p, err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-registry-refuse", "127.0.0.1/8"}, "did you mean 127.0.0.0/8"},
		{[]string{"-registry-refuse", "localhost"}, "names are not resolved"},
		{[]string{"-registry-refuse", "10.0.0.0/33"}, `-registry-refuse "10.0.0.0/33"`},
		{[]string{"-registry-allow", "registry.local:5000"}, `-registry-allow "registry.local:5000": want a CIDR, an IP address or an ip:port`},
		{[]string{"-registry-allow", "10.1.2.3/16"}, "did you mean 10.1.0.0/16"},
		{[]string{"-registry-allow", "127.0.0.1:0"}, "port 0"},
		{[]string{"-registry-allow", "fe80::1%eth0"}, "zone"},
		{[]string{"-registry-refuse", "", "-registry-allow", "127.0.0.1"}, "-registry-refuse is empty"},
	} {
		_, err := parseConfig(append([]string{"-memory-budget", "-1"}, tc.args...), none)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}

// TestRegistryAddressesEmbedded checks that the embedded registry is
// reachable whatever -registry-refuse says: at its own address, and at
// loopback at its port when it listens on an unspecified address.
func TestRegistryAddressesEmbedded(t *testing.T) {
	cfg, err := parseConfig([]string{"-memory-budget", "-1"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		listen         string
		allowed, refus []string
	}{
		{"127.0.0.1:5000", []string{"127.0.0.1:5000"}, []string{"127.0.0.1:5001", "127.0.0.2:5000", "[::1]:5000"}},
		{"[::]:5000", []string{"[::]:5000", "0.0.0.0:5000", "127.0.0.1:5000", "[::1]:5000", "[::ffff:127.0.0.1]:5000"}, []string{"127.0.0.1:5001", "[::1]:22"}},
		{"0.0.0.0:5000", []string{"0.0.0.0:5000", "127.0.0.1:5000", "[::1]:5000"}, []string{"0.0.0.0:22", "169.254.169.254:5000"}},
	} {
		p, err := registryAddresses(cfg, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(tc.listen)))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range tc.allowed {
			if err := p.Check(netip.MustParseAddrPort(a)); err != nil {
				t.Errorf("registry on %s: %s refused: %v", tc.listen, a, err)
			}
		}
		for _, a := range tc.refus {
			if err := p.Check(netip.MustParseAddrPort(a)); err == nil {
				t.Errorf("registry on %s: %s allowed, want it refused", tc.listen, a)
			}
		}
	}
	// The flags' exceptions are not changed for later calls.
	if len(cfg.RegistryAddresses.AllowedAddrs) != 0 {
		t.Errorf("cfg's exceptions changed: %v", cfg.RegistryAddresses.AllowedAddrs)
	}
}

// forbiddenRegistry serves on 127.0.0.1, which an fcd without the tests'
// -registry-allow refuses, and counts the requests it gets.
func forbiddenRegistry(t *testing.T) (host string, requests *atomic.Int32) {
	t.Helper()
	requests = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), requests
}

// checkRefusal checks that err is the refusal of host by -registry-refuse.
func checkRefusal(t *testing.T, what, err, host string) {
	t.Helper()
	want := "registry address refused: " + host + " is in 127.0.0.0/8, refused by -registry-refuse"
	if !strings.Contains(err, want) {
		t.Errorf("%s: got %q, want it to say %q", what, err, want)
	}
}

// TestRegistryAddressRefused creates a function whose image names a
// registry on the host's loopback: its invoke fails with
// FunctionNotStarted saying the address is refused and by which flag,
// and the registry gets no request.
func TestRegistryAddressRefused(t *testing.T) {
	requireRuntime(t)
	host, requests := forbiddenRegistry(t)
	d := startDaemonWith(t, t.TempDir(), []string{"-name", "fcdguard", "-subnet", "10.117.0.0/16", "-registry-allow", ""}, true)
	c := sdkClient(t, d, d.creds.AccessKeySecret)
	createFunction(t, c, "refused", host+"/examples/echo:v1", 1)
	_, _, err := invoke(c, "refused", "x")
	if code, status := sdkCode(err); code != "FunctionNotStarted" || status != http.StatusPreconditionFailed {
		t.Fatalf("invoke: got %q/%d (%v), want FunctionNotStarted/412", code, status, err)
	}
	checkRefusal(t, "invoke", err.Error(), host)
	if n := requests.Load(); n != 0 {
		t.Errorf("the refused registry got %d requests, want none", n)
	}
}

// TestAccelerationRegistryAddressRefused checks that the image converter
// keeps to -registry-refuse as the pullers do: a conversion of an image
// on a refused registry is refused with the reason, and GetFunction
// reports a function's acceleration Failed with it; the embedded
// registry, on loopback too, stays reachable.
func TestAccelerationRegistryAddressRefused(t *testing.T) {
	host, requests := forbiddenRegistry(t)
	d := startDaemonWith(t, t.TempDir(), []string{"-registry-allow", ""}, false)

	embedded := d.creds.Registry + "/examples/echo:v1"
	pushExample(t, d, embedded)
	if status, body := callBody(t, d, http.MethodPost, "/fcd/v1/acceleration/jobs", map[string]any{"image": embedded, "mode": accel.ModeIndexOnly}); status != http.StatusAccepted {
		t.Fatalf("accelerate %s in the embedded registry: status %d (%s), want 202", embedded, status, body)
	}

	refused := host + "/examples/echo:v1"
	status, body := callBody(t, d, http.MethodPost, "/fcd/v1/acceleration/jobs", map[string]any{"image": refused})
	if status != http.StatusForbidden {
		t.Fatalf("accelerate %s: status %d (%s), want 403", refused, status, body)
	}
	checkRefusal(t, "accelerate", body, host)

	c := sdkClient(t, d, d.creds.AccessKeySecret)
	_, err := c.CreateFunction(&fc.CreateFunctionRequest{Body: &fc.CreateFunctionInput{
		FunctionName: dara.String("refused"),
		Runtime:      dara.String("custom-container"),
		CustomContainerConfig: &fc.CustomContainerConfig{
			Image:            dara.String(refused),
			AccelerationType: dara.String(api.AccelerationDefault),
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var fn *fc.Function
	eventually(t, "acceleration Failed", 30*time.Second, func() bool {
		fn = getFunction(t, c, "refused")
		info := fn.CustomContainerConfig.AccelerationInfo
		return info != nil && dara.StringValue(info.Status) == api.AccelerationFailed
	})
	checkRefusal(t, "GetFunction's lastUpdateStatusReason", dara.StringValue(fn.LastUpdateStatusReason), host)
	if n := requests.Load(); n != 0 {
		t.Errorf("the refused registry got %d requests, want none", n)
	}
}

// callBody sends a signed request to fcd's own API and returns the status
// and body of its answer.
func callBody(t *testing.T, d *daemon, method, path string, in any) (int, string) {
	t.Helper()
	body, _ := json.Marshal(in)
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
	return resp.StatusCode, string(data)
}
