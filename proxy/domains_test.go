package proxy

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	fc "github.com/alibabacloud-go/fc-20230330/v4/client"
	"github.com/alibabacloud-go/tea/dara"
)

// TestSDKCustomDomains drives the custom domain API with the official SDK
// and routes requests by Host through it.
func TestSDKCustomDomains(t *testing.T) {
	env := newInvokeEnv(t, echoBackend())
	c := sdkClient(t, env.addr)
	route := func(path string, methods ...string) *fc.PathConfig {
		return &fc.PathConfig{Path: dara.String(path), FunctionName: dara.String("fn"), Methods: dara.StringSlice(methods)}
	}
	create := func(name string, routes ...*fc.PathConfig) (*fc.CreateCustomDomainResponse, error) {
		return c.CreateCustomDomain(&fc.CreateCustomDomainRequest{Body: &fc.CreateCustomDomainInput{
			DomainName: dara.String(name), Protocol: dara.String("HTTP"), RouteConfig: &fc.RouteConfig{Routes: routes},
		}})
	}
	resp, err := create("api.example.com", route("/a/*"), route("/exact", "GET"))
	if err != nil {
		t.Fatal(err)
	}
	if got := dara.StringValue(resp.Body.DomainName); got != "api.example.com" {
		t.Errorf("CreateCustomDomain: domainName %q", got)
	}
	if _, err := create("www.example.com", route("/*")); err != nil {
		t.Fatal(err)
	}

	request := func(method, host, path string) (int, map[string]string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+env.addr+path, strings.NewReader("b"))
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got map[string]string
		if resp.StatusCode == 200 {
			json.NewDecoder(resp.Body).Decode(&got)
			env.waitLease(t)
		}
		return resp.StatusCode, got
	}
	routing := []struct {
		method, host, path string
		status             int
		wantPath           string
	}{
		{"POST", "api.example.com", "/a/b?x=1", 200, "/a/b"},
		{"GET", "API.example.com:8080", "/a", 200, "/a"},
		{"GET", "api.example.com", "/exact", 200, "/exact"},
		{"POST", "api.example.com", "/exact", 405, ""},
		{"GET", "api.example.com", "/ab", 404, ""},
		{"GET", "www.example.com", "/anything/at/all", 200, "/anything/at/all"},
	}
	for _, r := range routing {
		status, got := request(r.method, r.host, r.path)
		if status != r.status || (r.wantPath != "" && got["path"] != r.wantPath) {
			t.Errorf("%s %s%s: got %d path %q, want %d %q", r.method, r.host, r.path, status, got["path"], r.status, r.wantPath)
		}
	}

	if _, err := c.UpdateCustomDomain(dara.String("api.example.com"), &fc.UpdateCustomDomainRequest{Body: &fc.UpdateCustomDomainInput{
		RouteConfig: &fc.RouteConfig{Routes: []*fc.PathConfig{route("/b/*")}},
	}}); err != nil {
		t.Fatal(err)
	}
	if status, _ := request("GET", "api.example.com", "/a/b"); status != 404 {
		t.Errorf("old route after UpdateCustomDomain: got %d, want 404", status)
	}
	if status, got := request("GET", "api.example.com", "/b/c"); status != 200 || got["path"] != "/b/c" {
		t.Errorf("new route after UpdateCustomDomain: got %d %q, want 200 /b/c", status, got["path"])
	}
	got, err := c.GetCustomDomain(dara.String("api.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if r := got.Body.RouteConfig.Routes; len(r) != 1 || dara.StringValue(r[0].Path) != "/b/*" {
		t.Errorf("GetCustomDomain routes: got %v", r)
	}
	list, err := c.ListCustomDomains(&fc.ListCustomDomainsRequest{Limit: dara.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list.Body.CustomDomains); n != 1 || dara.StringValue(list.Body.NextToken) != "www.example.com" {
		t.Errorf("ListCustomDomains limit 1: got %d domains, next %q", n, dara.StringValue(list.Body.NextToken))
	}
	list, err = c.ListCustomDomains(&fc.ListCustomDomainsRequest{Prefix: dara.String("www")})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range list.Body.CustomDomains {
		names = append(names, dara.StringValue(d.DomainName))
	}
	if !slices.Equal(names, []string{"www.example.com"}) {
		t.Errorf("ListCustomDomains prefix www: got %v", names)
	}

	if _, err := c.DeleteCustomDomain(dara.String("www.example.com")); err != nil {
		t.Fatal(err)
	}
	if status, _ := request("GET", "www.example.com", "/x"); status != 404 {
		t.Errorf("deleted domain: got %d, want 404", status)
	}

	errs := []struct {
		name   string
		call   func() error
		code   string
		status int
	}{
		{"missing", func() error { _, err := c.GetCustomDomain(dara.String("no.example.com")); return err }, CodeDomainNotFound, 404},
		{"duplicate", func() error { _, err := create("api.example.com"); return err }, CodeDomainAlreadyExists, 409},
		{"not a name", func() error { _, err := create("127.0.0.1"); return err }, CodeInvalidArgument, 400},
		{"trigger domain", func() error { _, err := create("x.fcd.localhost"); return err }, CodeInvalidArgument, 400},
		{"qualifier", func() error {
			r := route("/*")
			r.Qualifier = dara.String("bad/q")
			_, err := create("q.example.com", r)
			return err
		}, CodeInvalidArgument, 400},
		{"https", func() error {
			_, err := c.CreateCustomDomain(&fc.CreateCustomDomainRequest{Body: &fc.CreateCustomDomainInput{DomainName: dara.String("s.example.com"), Protocol: dara.String("HTTP,HTTPS")}})
			return err
		}, CodeInvalidArgument, 400},
		{"certConfig", func() error {
			_, err := c.CreateCustomDomain(&fc.CreateCustomDomainRequest{Body: &fc.CreateCustomDomainInput{DomainName: dara.String("s.example.com"),
				CertConfig: &fc.CertConfig{CertName: dara.String("c"), Certificate: dara.String("-----BEGIN")}}})
			return err
		}, CodeInvalidArgument, 400},
		{"rewriteConfig", func() error {
			r := route("/*")
			r.RewriteConfig = &fc.RewriteConfig{EqualRules: []*fc.EqualRule{{Match: dara.String("/a"), Replacement: dara.String("/b")}}}
			_, err := create("r.example.com", r)
			return err
		}, CodeInvalidArgument, 400},
	}
	for _, e := range errs {
		if code, status := sdkCode(e.call()); code != e.code || status != e.status {
			t.Errorf("%s: got %q/%d, want %q/%d", e.name, code, status, e.code, e.status)
		}
	}
}
