// Command probe is an example function that reports what its sandbox lets
// it do, for tests of the instance sandbox. It serves on
// 0.0.0.0:$FC_CUSTOM_LISTEN_PORT (default 9000):
//
//	GET /status               {"capEff": "...", "seccomp": "2", "noNewPrivs": "1"}
//	                          from /proc/self/status
//	GET /connect?addr=IP:PORT {"ok": true} when a TCP connection to addr
//	                          opens within 2 s, else {"ok": false, "error": "..."}
//	GET /packet               {"ok": true} when an AF_PACKET raw socket
//	                          opens, else {"ok": false, "error": "..."}
//	GET /env?name=N           {"value": "...", "set": true}
//	GET /file?path=P          {"content": "..."} (the first 64 KiB), or
//	                          {"error": "..."}
package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/fcd-dev/fcd/examples/echoserver"
)

// Status is the answer of GET /status.
type Status struct {
	CapEff     string `json:"capEff"`
	Seccomp    string `json:"seccomp"`
	NoNewPrivs string `json:"noNewPrivs"`
}

// Result is the answer of GET /connect and GET /packet.
type Result struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := status()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		reply(w, st)
	})
	mux.HandleFunc("/connect", func(w http.ResponseWriter, r *http.Request) {
		c, err := net.DialTimeout("tcp", r.URL.Query().Get("addr"), 2*time.Second)
		if err == nil {
			c.Close()
		}
		reply(w, result(err))
	})
	mux.HandleFunc("/packet", func(w http.ResponseWriter, r *http.Request) {
		const ethPAll = 0x0300 // htons(ETH_P_ALL)
		fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, ethPAll)
		if err == nil {
			syscall.Close(fd)
		}
		reply(w, result(err))
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		v, ok := os.LookupEnv(r.URL.Query().Get("name"))
		reply(w, map[string]any{"value": v, "set": ok})
	})
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(r.URL.Query().Get("path"))
		if err != nil {
			reply(w, map[string]any{"error": err.Error()})
			return
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, 64<<10))
		if err != nil {
			reply(w, map[string]any{"error": err.Error()})
			return
		}
		reply(w, map[string]any{"content": string(b)})
	})
	mux.Handle("/", echoserver.Handler())
	echoserver.Serve("0.0.0.0", mux)
}

func result(err error) Result {
	if err != nil {
		return Result{Error: err.Error()}
	}
	return Result{OK: true}
}

func status() (Status, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return Status{}, err
	}
	defer f.Close()
	var st Status
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, _ := strings.Cut(s.Text(), ":")
		v = strings.TrimSpace(v)
		switch k {
		case "CapEff":
			st.CapEff = v
		case "Seccomp":
			st.Seccomp = v
		case "NoNewPrivs":
			st.NoNewPrivs = v
		}
	}
	return st, s.Err()
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
