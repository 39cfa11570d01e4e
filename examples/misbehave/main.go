// Command misbehave is the echo server with failure modes, for tests.
//
//	misbehave exit N   prints a line and exits with code N at once
//	misbehave          serves echo on 0.0.0.0:$FC_CUSTOM_LISTEN_PORT, plus
//	  GET /oom         allocates and touches memory until it is killed
//	  GET /fill?mb=N   writes N MiB to /fill.dat and answers
//	                   {"written": bytes, "error": "..."}
//	  GET /exit?code=N prints a line and exits with code N before answering
//	  GET /sleep?ms=N  answers "slept" after N milliseconds
//	  POST /invoke     by its event: "oom", "exit N" and "sleep N" as the
//	                   paths above; any other event is echoed
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fcd-dev/fcd/examples/echoserver"
)

func main() {
	if os.Getenv("MISBEHAVE_SIGTERM") == "ignore" {
		signal.Ignore(syscall.SIGTERM)
	}
	if len(os.Args) == 3 && os.Args[1] == "exit" {
		code, _ := strconv.Atoi(os.Args[2])
		fmt.Printf("misbehave: exiting with code %d\n", code)
		os.Exit(code)
	}
	mux := http.NewServeMux()
	mux.Handle("/", echoserver.Handler())
	mux.HandleFunc("/oom", func(w http.ResponseWriter, r *http.Request) { oom() })
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		exit(code)
	})
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprint(w, "slept")
	})
	mux.HandleFunc("POST /invoke", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		verb, arg, _ := strings.Cut(string(body), " ")
		n, _ := strconv.Atoi(arg)
		switch verb {
		case "oom":
			oom()
		case "exit":
			exit(n)
		case "sleep":
			time.Sleep(time.Duration(n) * time.Millisecond)
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(body)
	})
	mux.HandleFunc("/fill", func(w http.ResponseWriter, r *http.Request) {
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		n, err := fill("/fill.dat", mb)
		res := map[string]any{"written": n}
		if err != nil {
			res["error"] = err.Error()
		}
		fmt.Printf("misbehave: fill %d MiB: wrote %d bytes, err %v\n", mb, n, err)
		_ = json.NewEncoder(w).Encode(res)
	})
	echoserver.Serve("0.0.0.0", mux)
}

// oom allocates and touches memory until the kernel kills the process.
func oom() {
	fmt.Println("misbehave: allocating until killed")
	var hold [][]byte
	for {
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = byte(i)
		}
		hold = append(hold, b)
	}
}

// exit ends the process in the middle of the request it serves.
func exit(code int) {
	fmt.Printf("misbehave: exiting with code %d mid-request\n", code)
	os.Exit(code)
}

func fill(path string, mb int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	var n int64
	for i := 0; i < mb; i++ {
		k, err := f.Write(buf)
		n += int64(k)
		if err != nil {
			f.Close()
			return n, err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return n, err
	}
	return n, f.Close()
}
