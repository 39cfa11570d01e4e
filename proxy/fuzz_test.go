package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/fcd-dev/fcd/api"
)

// Fuzz targets of the frontend's parsing of client requests: signature
// verification, HTTP trigger routing and the request an instance gets.

// requestCtx parses raw as fasthttp's server does (headers, then the body
// as a stream) into a RequestCtx, or reports false.
func requestCtx(raw []byte) (*fasthttp.RequestCtx, bool) {
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&fasthttp.Request{}, nil, nil)
	br := bufio.NewReaderSize(bytes.NewReader(raw), DefaultMaxHeaderBytes)
	if ctx.Request.Header.Read(br) != nil {
		return nil, false
	}
	if ctx.Request.ContinueReadBodyStream(br, 1<<20, false) != nil {
		return nil, false
	}
	return ctx, true
}

// FuzzVerifySigned: a request signed as the SDKs sign (api.SignRequest,
// query built from names and values) verifies on the server side after
// crossing the wire; the same request with its body or method changed
// does not.
func FuzzVerifySigned(f *testing.F) {
	f.Add("POST", "/2023-03-30/functions/f/invocations", "", "", "", []byte(`{"a":1}`))
	f.Add("GET", "/2023-03-30/functions", "prefix", "a b*~+%", "", []byte(nil))
	f.Add("PUT", "/2023-03-30/functions/f", "limit", "5", "x", []byte("body"))
	f.Add("DELETE", "/fn/f/a b/%2F", "q", "é", " v ", []byte(nil))
	f.Fuzz(func(t *testing.T, method, path, qk, qv, hv string, body []byte) {
		if !validMethod(method) || strings.ContainsAny(hv, "\x00\r\n") || !printable(hv) {
			return
		}
		u := &url.URL{Scheme: "http", Host: "fcd.test:8080", Path: "/" + strings.TrimLeft(path, "/")}
		if qk != "" {
			u.RawQuery = url.Values{qk: {qv}}.Encode()
		}
		req, err := http.NewRequest(method, u.String(), bytes.NewReader(body))
		if err != nil {
			return
		}
		if hv != "" {
			req.Header.Set("x-acs-fuzz", hv)
		}
		// The verifier starts before the request is signed, as fcd does
		// before its clients sign: it refuses requests dated earlier.
		v := newVerifier(StaticKeys{testKeyID: testSecret}, 15*time.Minute, time.Now)
		if err := api.SignRequest(req, body, testKeyID, testSecret); err != nil {
			t.Fatal(err)
		}
		var wire bytes.Buffer
		if err := req.Write(&wire); err != nil {
			return
		}
		if bytes.Index(wire.Bytes(), []byte("\r\n\r\n"))+4 > DefaultMaxHeaderBytes {
			return // refused with 431 by design (Limits.MaxHeaderBytes)
		}
		check := func(raw []byte, want bool, what string) {
			t.Helper()
			ctx, ok := requestCtx(raw)
			if !ok {
				if want {
					t.Fatalf("%s: fasthttp cannot parse the request Go wrote:\n%q", what, raw)
				}
				return
			}
			got := ctx.Request.Body()
			if stream := ctx.RequestBodyStream(); stream != nil {
				var err error
				if got, err = io.ReadAll(stream); err != nil {
					t.Fatalf("%s: reading the body: %v", what, err)
				}
			}
			_, aerr := v.verify(ctx, got)
			if (aerr == nil) != want {
				t.Fatalf("%s: verify = %v, want success %v\n%q", what, aerr, want, raw)
			}
		}
		check(wire.Bytes(), true, "signed request")
		if len(body) > 0 {
			// Same length, one byte changed: only the hash can tell.
			tampered := bytes.Clone(wire.Bytes())
			tampered[len(tampered)-1] ^= 1
			check(tampered, false, "tampered body")
		}
		other := "PATCH"
		if method == other {
			other = "POST"
		}
		// A fresh nonce would be needed to pass anyway; the method change
		// must fail on the signature first.
		check(append([]byte(other), wire.Bytes()[len(method):]...), false, "changed method")
	})
}

func validMethod(m string) bool {
	switch m {
	case "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS":
		return m != "HEAD" // a HEAD request's body is never sent
	}
	return false
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 && s[i] != '\t' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// FuzzSplitTriggerPath: the instance-side URI is the client's URI after
// /fn/<name>, always a path, and a name with no escapes is cut at the
// first '/' or '?'.
func FuzzSplitTriggerPath(f *testing.F) {
	for _, s := range []string{"/fn/f", "/fn/f/", "/fn/f/a/b?x=1", "/fn/f?x=1", "/fn/", "/fn/%2F/x", "/fn/a%zz?", "/fn//x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		if !strings.HasPrefix(uri, "/fn/") {
			return
		}
		name, rest := splitTriggerPath([]byte(uri))
		if len(rest) == 0 || rest[0] != '/' {
			t.Fatalf("%q: instance URI %q does not start with /", uri, rest)
		}
		tail := uri[len("/fn/"):]
		i := strings.IndexAny(tail, "/?")
		rawName, after := tail, ""
		if i >= 0 {
			rawName, after = tail[:i], tail[i:]
		}
		switch {
		case after == "" && string(rest) != "/",
			strings.HasPrefix(after, "?") && string(rest) != "/"+after,
			strings.HasPrefix(after, "/") && string(rest) != after:
			t.Fatalf("%q: instance URI %q, want what follows the name (%q)", uri, rest, after)
		}
		if !strings.Contains(rawName, "%") && name != rawName {
			t.Fatalf("%q: name %q, want %q", uri, name, rawName)
		}
	})
}

// FuzzUpstreamRequest: the request an instance gets for an HTTP trigger
// request the frontend accepted can always be written (a failure would be
// answered 400 without blaming the instance, but must not happen for a
// request that passed triggerRequestError), parses back, keeps the
// client's method, path and body, carries fcd's x-fc-* headers and none
// of the client's, and no connection-scoped header.
func FuzzUpstreamRequest(f *testing.F) {
	for _, s := range []string{
		"GET /fn/f/x?y=1 HTTP/1.1\r\nHost: h\r\nX-Fc-Access-Key-Id: evil\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\n\r\n",
		"POST /fn/f/up HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody",
		"POST /fn/f HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n",
		"GET /fn/f/x HTTP/1.0\r\n\r\n",
		"GET /fn/f/x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
		"HEAD /fn/f/ HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nTe: trailers\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	s := New(Options{})
	fn := &api.Function{FunctionName: "f", MemorySize: 512}
	cf := &cachedFunction{fn: fn, memory: "512", deadline: time.Second}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ctx, ok := requestCtx(raw)
		if !ok || !bytes.HasPrefix(ctx.Path(), triggerPrefix) || triggerRequestError(ctx) != nil {
			return
		}
		_, uri := splitTriggerPath(ctx.RequestURI())
		var sent []byte
		if stream := ctx.RequestBodyStream(); stream == nil {
			sent = ctx.Request.Body()
		} else {
			b, err := io.ReadAll(stream)
			if err != nil {
				return // a client body that breaks off is the client's error
			}
			sent = b
			ctx.Request.SetBodyStream(bytes.NewReader(b), len(b))
			if ctx.Request.Header.ContentLength() < 0 {
				ctx.Request.SetBodyStream(bytes.NewReader(b), -1)
			}
		}
		var up outRequest
		s.buildUpstreamRequest(ctx, &up, "rid", cf, invocation{controlPath: "/http-invoke", path: uri}, "10.0.0.1:9000", new(clientBody))
		var wire bytes.Buffer
		bw := bufio.NewWriter(&wire)
		if err := up.Write(bw); err != nil {
			t.Fatalf("an accepted request cannot be forwarded: %v\n%q", err, raw)
		}
		bw.Flush()
		var got fasthttp.Request
		if err := got.Read(bufio.NewReader(&wire)); err != nil {
			t.Fatalf("the instance cannot parse its request: %v\n%q", err, wire.Bytes())
		}
		if string(got.Header.Method()) != string(ctx.Method()) || string(got.RequestURI()) != string(uri) {
			t.Fatalf("instance got %s %s, client sent %s %s", got.Header.Method(), got.RequestURI(), ctx.Method(), uri)
		}
		if !ctx.IsHead() && !bytes.Equal(got.Body(), sent) {
			t.Fatalf("instance got body %q, client sent %q", got.Body(), sent)
		}
		for k, v := range got.Header.All() {
			name := strings.ToLower(string(k))
			switch {
			case name == "x-fc-request-id" && string(v) != "rid",
				name == "x-fc-function-name" && string(v) != "f",
				strings.HasPrefix(name, "x-fc-access-key") || name == "x-fc-security-token":
				t.Fatalf("instance got %s: %q from the client", k, v)
			case name == "keep-alive" || name == "proxy-connection" || name == "te" || name == "upgrade" || name == "proxy-authorization":
				t.Fatalf("instance got connection-scoped header %s", k)
			}
		}
		if string(got.Header.Peek("x-fc-control-path")) != "/http-invoke" {
			t.Fatalf("instance got x-fc-control-path %q", got.Header.Peek("x-fc-control-path"))
		}
	})
}
