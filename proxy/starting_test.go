package proxy

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
)

// TestStarting answers 503 ResourceThrottled with Retry-After while fcd
// starts, then leaves the listener to the server that serves it.
func TestStarting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	url := "http://" + ln.Addr().String() + "/2023-03-30/functions"
	st := ServeStarting(ln)
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	var body errorBody
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != retryAfter || body.Code != CodeResourceThrottled {
		t.Errorf("while starting: got %d, Retry-After %q, code %q; want 503, %s, %s", resp.StatusCode, resp.Header.Get("Retry-After"), body.Code, retryAfter, CodeResourceThrottled)
	}

	st.Open()
	st.Open()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "serving") })}
	go srv.Serve(ln)
	defer srv.Close()
	resp, err = http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "serving" {
		t.Errorf("after Open: got %d %q, want 200 from the server", resp.StatusCode, b)
	}
}
