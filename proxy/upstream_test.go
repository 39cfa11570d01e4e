package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestPooledConnPastDeadline: a connection keeps its last call's deadline
// while pooled; once that passed, the liveness check before its reuse
// still tells a live connection from a closed one.
func TestPooledConnPastDeadline(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	defer be.Close()
	addr := strings.TrimPrefix(be.URL, "http://")
	u := newUpstream()
	u.checkAfter = 0 // every reuse checks
	call1 := func() *upConn {
		t.Helper()
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		req.SetRequestURI("/")
		req.Header.SetHost(addr)
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseResponse(resp)
		cl := &call{}
		conn, err := u.roundTrip(cl, "i-1", addr, req, resp, time.Now().Add(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if body, err := io.ReadAll(resp.BodyStream()); err != nil || string(body) != "ok" {
			t.Fatalf("got %q, %v; want ok", body, err)
		}
		resp.CloseBodyStream()
		cl.detach()
		return conn
	}

	conn := call1()
	conn.SetDeadline(time.Unix(1, 0)) // as if its call's deadline passed while idle
	u.put(conn, time.Now())
	got, reused, err := u.get("i-1", fixedAddr(addr), time.Now())
	if err != nil || !reused || got != conn {
		t.Fatalf("live connection past its deadline: got %p reused=%v %v, want %p reused", got, reused, err, conn)
	}
	u.put(got, time.Now())

	// The instance closes it while it is pooled, past its deadline.
	conn.SetDeadline(time.Unix(1, 0))
	be.CloseClientConnections()
	got, reused, err = u.get("i-1", fixedAddr(addr), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if reused || got == conn {
		t.Fatal("a connection its instance closed was reused")
	}
	got.Close()
}

// TestAbortBeforePooling: an abort that lands after the response was read
// but before the connection went back to the pool leaves a past deadline
// on it; the next call on the connection replaces it.
func TestAbortBeforePooling(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))
	defer be.Close()
	addr := strings.TrimPrefix(be.URL, "http://")
	u := newUpstream()
	do := func(abortBeforePut bool) *upConn {
		t.Helper()
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		req.SetRequestURI("/")
		req.Header.SetHost(addr)
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseResponse(resp)
		cl := &call{}
		conn, err := u.roundTrip(cl, "i-1", addr, req, resp, time.Now().Add(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(resp.BodyStream()); err != nil {
			t.Fatal(err)
		}
		resp.CloseBodyStream()
		if abortBeforePut {
			cl.abort() // the client watch fires just before Server.finish detaches
		}
		cl.detach()
		u.put(conn, time.Now())
		return conn
	}
	first := do(true)
	if second := do(false); second != first {
		t.Fatal("the connection was not reused")
	}
}
