// Command misbehave is the echo server with failure modes, for tests.
//
//	misbehave exit N   prints a line and exits with code N at once
//	misbehave          serves echo on 0.0.0.0:$FC_CUSTOM_LISTEN_PORT, plus
//	  GET /oom         allocates and touches memory until it is killed
//	  GET /fill?mb=N   writes N MiB to /fill.dat and answers
//	                   {"written": bytes, "error": "..."}
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"

	"github.com/fcd-dev/fcd/examples/echoserver"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "exit" {
		code, _ := strconv.Atoi(os.Args[2])
		fmt.Printf("misbehave: exiting with code %d\n", code)
		os.Exit(code)
	}
	mux := http.NewServeMux()
	mux.Handle("/", echoserver.Handler())
	mux.HandleFunc("/oom", func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("misbehave: allocating until killed")
		var hold [][]byte
		for {
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = byte(i)
			}
			hold = append(hold, b)
		}
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
