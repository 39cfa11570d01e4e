package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/api"
)

// TestOutRequest: the request an instance gets, as net/http's parser reads
// it: the client's method, path, protocol, headers and body, without the
// connection-scoped headers, without any x-fc-* header of the client's,
// with each of fcd's headers exactly once, and framed anew.
func TestOutRequest(t *testing.T) {
	fcdHeaders := map[string]string{
		"X-Fc-Request-Id":       "rid",
		"X-Fc-Function-Name":    "f",
		"X-Fc-Function-Memory":  "512",
		"X-Fc-Function-Handler": "index.handler x", // the line break cleaned
		"X-Fc-Region":           "cn-test",
		"X-Fc-Account-Id":       "1234",
		"X-Fc-Qualifier":        "LATEST",
		"X-Fc-Version-Id":       "LATEST",
		"X-Fc-Control-Path":     "/http-invoke",
	}
	for _, tc := range []struct {
		name    string
		raw     string
		stream  int // >0: the body is streamed, announcing its length; -1 chunked
		body    string
		absent  []string          // headers that must not reach the instance
		want    map[string]string // headers that must, with these values
		chunked bool
	}{
		{
			name: "content-length body",
			raw:  "POST /fn/f/up?q=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nX-Custom: v\r\n\r\nbody",
			body: "body",
			want: map[string]string{"X-Custom": "v", "Content-Length": "4", "Content-Type": "application/octet-stream"},
		},
		{
			name:   "hop headers",
			raw:    "GET /fn/f/ HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Private ,X-Other\r\nX-Private: s\r\nX-Other: o\r\nKeep-Alive: timeout=5\r\nTe: trailers\r\nUpgrade: websocket\r\nProxy-Authorization: Basic x\r\nProxy-Connection: keep-alive\r\nX-Kept: 1\r\n\r\n",
			absent: []string{"Connection", "X-Private", "X-Other", "Keep-Alive", "Te", "Upgrade", "Proxy-Authorization", "Proxy-Connection", "Content-Length", "Transfer-Encoding"},
			want:   map[string]string{"X-Kept": "1"},
		},
		{
			name:   "connection close",
			raw:    "GET /fn/f/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			absent: []string{"Connection"},
		},
		{
			name:   "client x-fc headers",
			raw:    "POST /fn/f/ HTTP/1.1\r\nHost: h\r\nX-Fc-Request-Id: forged\r\nx-fc-access-key-id: forged\r\nX-FC-Security-Token: forged\r\nX-Fc-Function-Name: forged\r\nX-Fcx: kept\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi",
			body:   "hi",
			absent: []string{"X-Fc-Access-Key-Id", "X-Fc-Security-Token", "X-Fc-Access-Key-Secret"},
			want:   map[string]string{"X-Fcx": "kept", "Content-Type": "text/plain"},
		},
		{
			name:   "streamed, announced length",
			raw:    "PUT /fn/f/x HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world",
			stream: 11,
			body:   "hello world",
			want:   map[string]string{"Content-Length": "11"},
		},
		{
			name:    "streamed, chunked",
			raw:     "POST /fn/f HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n",
			stream:  -1,
			body:    "body",
			absent:  []string{"Content-Length"},
			chunked: true,
		},
		{
			name:   "streamed, larger than the write buffer",
			raw:    "POST /fn/f HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", // SetBodyStream announces the length
			stream: 100000,
			body:   strings.Repeat("0123456789", 10000),
			want:   map[string]string{"Content-Length": "100000"},
		},
		{
			name:    "streamed, chunked, larger than the write buffer",
			raw:     "POST /fn/f HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			stream:  -1,
			body:    strings.Repeat("abcdefghij", 10000),
			chunked: true,
		},
		{
			name: "cookies",
			raw:  "GET /fn/f/ HTTP/1.1\r\nHost: h\r\nCookie: a=1; b=2\r\n\r\n",
			want: map[string]string{"Cookie": "a=1; b=2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{Region: "cn-test", AccountID: "1234"})
			fn := &api.Function{FunctionName: "f", MemorySize: 512, Handler: "index.handler\nx"}
			cf := &cachedFunction{fn: fn, memory: "512", deadline: time.Second}
			ctx, ok := requestCtx([]byte(tc.raw))
			if !ok {
				t.Fatalf("fasthttp refused %q", tc.raw)
			}
			if tc.stream != 0 {
				ctx.Request.SetBodyStream(strings.NewReader(tc.body), tc.stream)
			} else {
				ctx.Request.SetBody([]byte(tc.body)) // in memory
			}
			_, uri := splitTriggerPath(ctx.RequestURI())
			var out outRequest
			body := s.buildUpstreamRequest(ctx, &out, "rid", cf, invocation{controlPath: "/http-invoke", path: uri, qualifier: "LATEST"}, "10.0.0.1:9000", new(clientBody))
			if (body != nil) != (tc.stream != 0) {
				t.Fatalf("got streamed body %v, want %v", body != nil, tc.stream != 0)
			}
			got := writeAndParse(t, &out)
			if got.Method != string(ctx.Method()) || got.RequestURI != string(uri) || got.Host != "h" {
				t.Errorf("instance got %s %s (Host %q), want %s %s (Host h)", got.Method, got.RequestURI, got.Host, ctx.Method(), uri)
			}
			for k, v := range fcdHeaders {
				if vs := got.Header.Values(k); len(vs) != 1 || vs[0] != v {
					t.Errorf("instance got %s %q, want exactly %q", k, vs, v)
				}
			}
			for _, k := range tc.absent {
				if vs := got.Header.Values(k); len(vs) != 0 {
					t.Errorf("instance got %s %q, want none", k, vs)
				}
			}
			for k, v := range tc.want {
				if vs := got.Header.Values(k); len(vs) != 1 || vs[0] != v {
					t.Errorf("instance got %s %q, want exactly %q", k, vs, v)
				}
			}
			if chunked := len(got.TransferEncoding) > 0; chunked != tc.chunked {
				t.Errorf("got chunked %v, want %v", chunked, tc.chunked)
			}
			b, err := io.ReadAll(got.Body)
			if err != nil || string(b) != tc.body {
				t.Errorf("instance got body %q (%v), want %q", b, err, tc.body)
			}
		})
	}
}

// TestOutRequestInvoke: InvokeFunction's request is fcd's own POST
// /invoke, with the role's credentials when it has them, and may be
// written again for a retry.
func TestOutRequestInvoke(t *testing.T) {
	s := New(Options{Region: "r", AccountID: "a"})
	fn := &api.Function{FunctionName: "f", MemorySize: 128, VersionID: "3"}
	cf := &cachedFunction{fn: fn, memory: "128", deadline: time.Second}
	ctx, ok := requestCtx([]byte("POST /2023-03-30/functions/f/invocations HTTP/1.1\r\nHost: h\r\nX-Custom: no\r\nContent-Length: 5\r\n\r\nevent"))
	if !ok {
		t.Fatal("fasthttp refused the request")
	}
	var out outRequest
	if s.buildUpstreamRequest(ctx, &out, "rid", cf, invocation{controlPath: "/invoke", body: []byte("event"), qualifier: "3"}, "10.0.0.1:9000", new(clientBody)) != nil {
		t.Fatal("got a streamed body, want the event in memory")
	}
	out.creds, out.keyID, out.keySecret, out.token = true, "id", "secret", "token"
	var first []byte
	for i := range 2 {
		var wire bytes.Buffer
		bw := bufio.NewWriter(&wire)
		if err := out.Write(bw); err != nil {
			t.Fatal(err)
		}
		bw.Flush()
		if i == 0 {
			first = bytes.Clone(wire.Bytes())
		} else if !bytes.Equal(first, wire.Bytes()) {
			t.Fatalf("a second write gave\n%q\nwant the first\n%q", wire.Bytes(), first)
		}
	}
	got, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(first)))
	if err != nil {
		t.Fatalf("the instance cannot parse %q: %v", first, err)
	}
	if got.Method != "POST" || got.RequestURI != "/invoke" || got.Host != "10.0.0.1:9000" {
		t.Errorf("instance got %s %s (Host %q), want POST /invoke (Host 10.0.0.1:9000)", got.Method, got.RequestURI, got.Host)
	}
	for k, v := range map[string]string{
		"Content-Type": "application/octet-stream", "Content-Length": "5", "X-Fc-Control-Path": "/invoke",
		"X-Fc-Version-Id": "3", "X-Fc-Qualifier": "3", "X-Fc-Access-Key-Id": "id", "X-Fc-Access-Key-Secret": "secret", "X-Fc-Security-Token": "token",
	} {
		if vs := got.Header.Values(k); len(vs) != 1 || vs[0] != v {
			t.Errorf("instance got %s %q, want exactly %q", k, vs, v)
		}
	}
	if v := got.Header.Get("X-Custom"); v != "" {
		t.Errorf("instance got the client's X-Custom %q, want none", v)
	}
	if b, _ := io.ReadAll(got.Body); string(b) != "event" {
		t.Errorf("instance got body %q, want event", b)
	}
}

// TestOutRequestNoHost: a client's request without a Host cannot be
// forwarded, and nothing is written.
func TestOutRequestNoHost(t *testing.T) {
	ctx, ok := requestCtx([]byte("GET /fn/f/x HTTP/1.0\r\n\r\n"))
	if !ok {
		t.Fatal("fasthttp refused the request")
	}
	s := New(Options{})
	cf := &cachedFunction{fn: &api.Function{FunctionName: "f"}, memory: "128"}
	var out outRequest
	s.buildUpstreamRequest(ctx, &out, "rid", cf, invocation{controlPath: "/http-invoke", path: []byte("/x")}, "a:1", new(clientBody))
	var wire bytes.Buffer
	bw := bufio.NewWriter(&wire)
	if err := out.Write(bw); err != errNoHost {
		t.Errorf("got %v, want errNoHost", err)
	}
	if bw.Buffered() != 0 {
		t.Errorf("got %d bytes written, want none", bw.Buffered())
	}
}

func writeAndParse(t *testing.T, out *outRequest) *http.Request {
	t.Helper()
	var wire bytes.Buffer
	bw := bufio.NewWriter(&wire)
	if err := out.Write(bw); err != nil {
		t.Fatal(err)
	}
	bw.Flush()
	got, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(wire.Bytes())))
	if err != nil {
		t.Fatalf("the instance cannot parse %q: %v", wire.Bytes(), err)
	}
	return got
}
