package proxy

import (
	"net/http"
	"testing"
)

// TestClientFCHeaders: a client cannot pose as the platform: the x-fc-*
// headers it sends never reach the instance, which gets fcd's own.
func TestClientFCHeaders(t *testing.T) {
	seen := make(chan http.Header, 1)
	env := newInvokeEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		w.Write([]byte("ok"))
	}))
	req, _ := http.NewRequest("GET", "http://"+env.addr+"/fn/fn/", nil)
	req.Header.Set("X-Fc-Access-Key-Id", "forged")
	req.Header.Set("x-fc-request-id", "forged")
	req.Header.Set("X-FC-Function-Name", "forged")
	req.Header.Set("X-Fcx", "kept") // not x-fc-
	resp := env.do(t, req)
	got := <-seen
	if v := got.Values("X-Fc-Access-Key-Id"); len(v) != 0 {
		t.Errorf("instance got X-Fc-Access-Key-Id %q, want none (no role)", v)
	}
	if v, want := got.Values("X-Fc-Request-Id"), resp.Header.Get(HeaderRequestID); len(v) != 1 || v[0] != want {
		t.Errorf("instance got X-Fc-Request-Id %q, want only fcd's %q", v, want)
	}
	if v := got.Values("X-Fc-Function-Name"); len(v) != 1 || v[0] != "fn" {
		t.Errorf("instance got X-Fc-Function-Name %q, want only fn", v)
	}
	if v := got.Get("X-Fcx"); v != "kept" {
		t.Errorf("instance got X-Fcx %q, want kept", v)
	}
}

// TestInstanceRequestID: the response carries fcd's request id once,
// whatever the instance answers with, in any case.
func TestInstanceRequestID(t *testing.T) {
	for _, name := range []string{"x-fc-request-id", "X-FC-REQUEST-ID"} {
		t.Run(name, func(t *testing.T) {
			seen := make(chan string, 1)
			env := newInvokeEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen <- r.Header.Get("x-fc-request-id")
				w.Header()[name] = []string{"forged"}
				w.Write([]byte("ok"))
			}))
			req, _ := http.NewRequest("GET", "http://"+env.addr+"/fn/fn/", nil)
			resp := env.do(t, req)
			want := <-seen
			if v := resp.Header.Values(HeaderRequestID); len(v) != 1 || v[0] != want {
				t.Errorf("client got %s %q, want only fcd's %q", HeaderRequestID, v, want)
			}
		})
	}
}
