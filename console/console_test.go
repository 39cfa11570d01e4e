package console

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func get(h fasthttp.RequestHandler, path string) *fasthttp.Response {
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI(path)
	ctx.Request.Header.SetMethod(http.MethodGet)
	h(&ctx)
	resp := &fasthttp.Response{}
	ctx.Response.CopyTo(resp)
	return resp
}

func TestHandler(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		path   string
		status int
		ctype  string
	}{
		{"/console/", 200, "text/html"},
		{"/console/index.html", 200, "text/html"},
		{"/console/app.js", 200, "text/javascript"},
		{"/console/style.css", 200, "text/css"},
		{"/console", 301, ""},
		{"/console/nope.js", 404, ""},
		{"/console/../go.mod", 404, ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp := get(h, tc.path)
			if resp.StatusCode() != tc.status || !strings.HasPrefix(string(resp.Header.ContentType()), tc.ctype) {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode(), resp.Header.ContentType(), tc.status, tc.ctype)
			}
			if tc.status == 200 && !strings.Contains(string(resp.Header.Peek("Content-Security-Policy")), "default-src 'self'") {
				t.Fatalf("no Content-Security-Policy keeping everything on fcd: %q", resp.Header.Peek("Content-Security-Policy"))
			}
		})
	}
}

// TestModulesResolve checks that every module a script imports and every
// asset the page links is embedded: a missing one breaks the console.
func TestModulesResolve(t *testing.T) {
	h := Handler()
	refs := regexp.MustCompile(`(?:from|import) '\./([^']+)'|(?:href|src)="([^"#:]+)"`)
	entries, err := assets.ReadDir("assets")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		body := string(get(h, Prefix+e.Name()).Body())
		for _, m := range refs.FindAllStringSubmatch(body, -1) {
			ref := m[1] + m[2]
			if resp := get(h, Prefix+ref); resp.StatusCode() != 200 {
				t.Errorf("%s refers to %s: got %d, want 200", e.Name(), ref, resp.StatusCode())
			}
		}
	}
}
