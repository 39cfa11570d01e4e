package main

import (
	"encoding/json"
	"net/http"
	"testing"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"
)

// probeGet GETs path of function's HTTP endpoint and decodes its JSON.
func probeGet(t *testing.T, d *daemon, function, path string, out any) {
	t.Helper()
	resp, err := http.Get("http://" + d.endpoint + "/fn/" + function + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: status %d: %v", path, resp.StatusCode, err)
	}
}

// testFunctionOptions runs the probe image as a function with customDNS
// and disableInjectCredentials Env: its resolv.conf is the function's, and
// the role's keys reach it in request headers but not in its environment.
func testFunctionOptions(t *testing.T, d *daemon, c *fc.Client, image, role string) {
	_, err := c.CreateFunction(&fc.CreateFunctionRequest{Body: &fc.CreateFunctionInput{
		FunctionName:             dara.String("opts"),
		Runtime:                  dara.String("custom-container"),
		MemorySize:               dara.Int32(256),
		Role:                     dara.String(role),
		DisableInjectCredentials: dara.String("Env"),
		CustomDNS: &fc.CustomDNS{
			NameServers: dara.StringSlice([]string{"10.0.0.53"}),
			Searches:    dara.StringSlice([]string{"corp.example"}),
			DnsOptions:  []*fc.DNSOption{{Name: dara.String("ndots"), Value: dara.String("2")}},
		},
		CustomContainerConfig: &fc.CustomContainerConfig{Image: dara.String(image)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	createHTTPTrigger(t, c, "opts")
	var file struct{ Content, Error string }
	probeGet(t, d, "opts", "/file?path=/etc/resolv.conf", &file)
	if want := "nameserver 10.0.0.53\nsearch corp.example\noptions ndots:2\n"; file.Content != want {
		t.Errorf("resolv.conf: got %q (%s), want %q", file.Content, file.Error, want)
	}
	var env struct {
		Value string
		Set   bool
	}
	probeGet(t, d, "opts", "/env?name=ALIBABA_CLOUD_ACCESS_KEY_ID", &env)
	if env.Set {
		t.Errorf("ALIBABA_CLOUD_ACCESS_KEY_ID is set (%q) with disableInjectCredentials Env", env.Value)
	}
	var echo struct{ Headers map[string][]string }
	probeGet(t, d, "opts", "/", &echo)
	if len(echo.Headers["X-Fc-Access-Key-Id"]) == 0 {
		t.Errorf("no x-fc-access-key-id in the request: disableInjectCredentials Env keeps only the environment clear")
	}
}

// testRegistryAuth pulls a private image with the function's own
// registryConfig.authConfig (the admin key) and no role.
func testRegistryAuth(t *testing.T, d *daemon, c *fc.Client, image string) {
	_, err := c.CreateFunction(&fc.CreateFunctionRequest{Body: &fc.CreateFunctionInput{
		FunctionName: dara.String("regauth"),
		Runtime:      dara.String("custom-container"),
		MemorySize:   dara.Int32(256),
		CustomContainerConfig: &fc.CustomContainerConfig{Image: dara.String(image), RegistryConfig: &fc.RegistryConfig{
			AuthConfig: &fc.RegistryAuthConfig{UserName: dara.String(d.creds.AccessKeyID), Password: dara.String(d.creds.AccessKeySecret)},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := invoke(c, "regauth", "x"); err != nil {
		t.Fatalf("invoke with registryConfig credentials: %v", err)
	}
}
