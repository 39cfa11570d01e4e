// Package echoserver is the HTTP handler shared by the example functions.
package echoserver

import (
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"os"
)

// Request is the JSON an echo server answers with.
type Request struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   map[string][]string `json:"query"`
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body"`
	// Server is the address the request arrived at: the instance's own,
	// which lets a benchmark call the instance directly.
	Server string `json:"server"`
}

// Handler answers POST /invoke with the request body and every other
// request with its JSON description.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.Method == http.MethodPost && r.URL.Path == "/invoke" {
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(body)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Request{
			Method:  r.Method,
			Path:    r.URL.Path,
			Query:   r.URL.Query(),
			Headers: r.Header,
			Body:    string(body),
			Server:  localAddr(r),
		})
	})
}

// Port returns $FC_CUSTOM_LISTEN_PORT, or "9000".
func Port() string {
	if p := os.Getenv("FC_CUSTOM_LISTEN_PORT"); p != "" {
		return p
	}
	return "9000"
}

// Serve listens on host:Port() and serves h until it fails.
func Serve(host string, h http.Handler) {
	addr := net.JoinHostPort(host, Port())
	l, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("listen %s: %v", addr, err)
	}
	log.Printf("listening on %s", addr)
	log.Fatal(http.Serve(l, h))
}

func localAddr(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a.String()
	}
	return ""
}
