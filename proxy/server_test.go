package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/store"
)

const (
	testKeyID  = "AKTEST"
	testSecret = "s3cret"
)

// testServer serves a proxy with a fresh store on a loopback port.
func testServer(t *testing.T, opts Options) string {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "fcd.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if opts.Functions == nil {
		opts.Functions = st
	}
	if opts.Keys == nil {
		opts.Keys = StaticKeys{testKeyID: testSecret}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(opts).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// signedRequest is a request the test signs; fields left zero get valid
// values, so each case changes only what it tests.
type signedRequest struct {
	method, path, rawQuery string
	body                   []byte
	keyID, secret          string
	date                   time.Time
	nonce                  string
	tamper                 func(*http.Request) // after signing
}

func (r signedRequest) do(t *testing.T, addr string) (*http.Response, errorBody) {
	t.Helper()
	return r.doBody(t, addr, nil)
}

// doBody is do that decodes a successful response's JSON body into out,
// when out is not nil.
func (r signedRequest) doBody(t *testing.T, addr string, out any) (*http.Response, errorBody) {
	t.Helper()
	if r.keyID == "" {
		r.keyID, r.secret = testKeyID, testSecret
	}
	if r.date.IsZero() {
		r.date = time.Now()
	}
	if r.nonce == "" {
		r.nonce = newID()
	}
	u := "http://" + addr + r.path
	if r.rawQuery != "" {
		u += "?" + r.rawQuery
	}
	req, err := http.NewRequest(r.method, u, bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set(api.HeaderDate, r.date.UTC().Format(api.DateFormat))
	req.Header.Set(api.HeaderNonce, r.nonce)
	req.Header.Set(api.HeaderContentSHA256, api.HashPayload(r.body))
	signed := api.SignedHeaderNames([]string{"host", "content-type", api.HeaderDate, api.HeaderNonce, api.HeaderContentSHA256})
	canon := api.CanonicalRequest(api.Request{
		Method: r.method, Path: r.path, Query: req.URL.Query(),
		Header: func(n string) []string {
			if n == "host" {
				return []string{addr}
			}
			return req.Header.Values(n)
		},
		PayloadHash: api.HashPayload(r.body),
	}, signed)
	req.Header.Set("Authorization", api.AuthorizationHeader(r.keyID, signed, api.Sign(r.secret, canon)))
	if r.tamper != nil {
		r.tamper(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var eb errorBody
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("response body %q: %v", data, err)
		}
	}
	if resp.StatusCode >= 300 {
		if err := json.Unmarshal(data, &eb); err != nil {
			t.Fatalf("error body %q is not FC's JSON: %v", data, err)
		}
	}
	if resp.Header.Get(HeaderRequestID) == "" {
		t.Errorf("response has no %s", HeaderRequestID)
	}
	return resp, eb
}

const createBody = `{"functionName":"f","runtime":"custom-container","customContainerConfig":{"image":"r/i:t"}}`

func TestRequestErrors(t *testing.T) {
	addr := testServer(t, Options{MaxControlBody: 1024})
	fnPath := "/" + api.Version + "/functions"
	replayNonce := newID()
	if resp, eb := (signedRequest{method: "GET", path: fnPath, nonce: replayNonce}).do(t, addr); resp.StatusCode != 200 {
		t.Fatalf("first use of a nonce: got %d %+v", resp.StatusCode, eb)
	}
	tests := []struct {
		name       string
		req        signedRequest
		wantStatus int
		wantCode   string
	}{
		{"valid list with query", signedRequest{method: "GET", path: fnPath, rawQuery: "prefix=a%20b&limit=5"}, 200, ""},
		{"valid create", signedRequest{method: "POST", path: fnPath, body: []byte(createBody)}, 200, ""},
		{"duplicate create", signedRequest{method: "POST", path: fnPath, body: []byte(createBody)}, 409, CodeFunctionAlreadyExists},
		{"unsigned", signedRequest{method: "GET", path: fnPath, tamper: func(r *http.Request) { r.Header.Del("Authorization") }}, 403, CodeAccessDenied},
		{"unknown key", signedRequest{method: "GET", path: fnPath, keyID: "AKOTHER", secret: testSecret}, 403, CodeAccessDenied},
		{"wrong secret", signedRequest{method: "GET", path: fnPath, keyID: testKeyID, secret: "nope"}, 403, CodeSignatureNotMatch},
		{"stale date", signedRequest{method: "GET", path: fnPath, date: time.Now().Add(-time.Hour)}, 403, CodeSignatureNotMatch},
		{"future date", signedRequest{method: "GET", path: fnPath, date: time.Now().Add(time.Hour)}, 403, CodeSignatureNotMatch},
		{"replayed nonce", signedRequest{method: "GET", path: fnPath, nonce: replayNonce}, 403, CodeSignatureNotMatch},
		{"tampered query", signedRequest{method: "GET", path: fnPath, rawQuery: "limit=5", tamper: func(r *http.Request) { r.URL.RawQuery = "limit=6" }}, 403, CodeSignatureNotMatch},
		{"tampered body", signedRequest{method: "POST", path: fnPath, body: []byte(createBody), tamper: func(r *http.Request) {
			b := strings.Replace(createBody, `"f"`, `"g"`, 1)
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader(b)), int64(len(b))
		}}, 403, CodeSignatureNotMatch},
		{"body too large", signedRequest{method: "POST", path: fnPath, body: bytes.Repeat([]byte(" "), 2048)}, 400, CodeEntityTooLarge},
		{"malformed json", signedRequest{method: "POST", path: fnPath, body: []byte(`{"functionName":`)}, 400, CodeInvalidArgument},
		{"invalid function", signedRequest{method: "POST", path: fnPath, body: []byte(`{"functionName":"x","runtime":"nodejs18"}`)}, 400, CodeInvalidArgument},
		{"bad limit", signedRequest{method: "GET", path: fnPath, rawQuery: "limit=1000"}, 400, CodeInvalidArgument},
		{"method not allowed", signedRequest{method: "PATCH", path: fnPath + "/f"}, 405, CodeMethodNotAllowed},
		{"missing function", signedRequest{method: "GET", path: fnPath + "/nope"}, 404, CodeFunctionNotFound},
		{"unknown path", signedRequest{method: "GET", path: "/2016-08-15/services"}, 404, CodePathNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, eb := tc.req.do(t, addr)
			if resp.StatusCode != tc.wantStatus || eb.Code != tc.wantCode {
				t.Fatalf("got %d %q (%s), want %d %q", resp.StatusCode, eb.Code, eb.Message, tc.wantStatus, tc.wantCode)
			}
			if tc.wantCode != "" && (eb.RequestID == "" || eb.RequestID != resp.Header.Get(HeaderRequestID)) {
				t.Errorf("RequestId %q does not match header %q", eb.RequestID, resp.Header.Get(HeaderRequestID))
			}
		})
	}
}

func TestNonceCacheRotation(t *testing.T) {
	var c nonceCache
	t0 := time.Now()
	w := time.Minute
	if !c.add("a", t0, w) {
		t.Fatal("first add refused")
	}
	if c.add("a", t0.Add(59*time.Second), w) {
		t.Fatal("reuse within the window accepted")
	}
	// After one rotation the nonce is still remembered.
	if c.add("a", t0.Add(61*time.Second), w) {
		t.Fatal("reuse just after a rotation accepted")
	}
	// After two rotations it is forgotten; its date is outside the window.
	c.add("b", t0.Add(123*time.Second), w)
	if !c.add("a", t0.Add(125*time.Second), w) {
		t.Fatal("nonce remembered forever")
	}
}

// TestRequestIDs: ids share the run's prefix and never repeat.
func TestRequestIDs(t *testing.T) {
	ids := newRequestIDs()
	seen := map[string]bool{}
	for range 1000 {
		id := ids.next()
		if !strings.HasPrefix(id, ids.prefix) || len(id) == len(ids.prefix) || seen[id] {
			t.Fatalf("got id %q (prefix %q, seen before: %v)", id, ids.prefix, seen[id])
		}
		seen[id] = true
	}
	ids.n.Store(1<<64 - 2)
	if got, want := ids.next(), ids.prefix+"ffffffffffffffff"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
