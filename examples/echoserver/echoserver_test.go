package echoserver

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	s := httptest.NewServer(Handler())
	defer s.Close()
	tests := []struct {
		name, method, path, body string
		wantRaw                  string // for /invoke: the body itself
		want                     Request
	}{
		{name: "get", method: "GET", path: "/a/b?x=1&x=2", want: Request{Method: "GET", Path: "/a/b", Query: map[string][]string{"x": {"1", "2"}}}},
		{name: "put body", method: "PUT", path: "/p", body: "hello", want: Request{Method: "PUT", Path: "/p", Body: "hello"}},
		{name: "invoke", method: "POST", path: "/invoke", body: `{"k":"v"}`, wantRaw: `{"k":"v"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, s.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Test", "yes")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tt.wantRaw != "" {
				if string(b) != tt.wantRaw {
					t.Errorf("got %q, want %q", b, tt.wantRaw)
				}
				return
			}
			var got Request
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if got.Method != tt.want.Method || got.Path != tt.want.Path || got.Body != tt.want.Body {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if tt.want.Query != nil && strings.Join(got.Query["x"], ",") != "1,2" {
				t.Errorf("query: got %v, want x=1,2", got.Query)
			}
			if got.Headers["X-Test"][0] != "yes" {
				t.Errorf("headers: got %v, want X-Test: yes", got.Headers)
			}
		})
	}
}
