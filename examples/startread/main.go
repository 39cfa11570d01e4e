// Command startread is an example function that behaves like a large
// application starting up: before it listens, it reads every file named in
// /app/startup.list (one absolute path a line), as an interpreter imports
// its modules. It then serves on 0.0.0.0:$FC_SERVER_PORT (default 9000):
//
//	POST /invoke, any other path   {"startupFiles":N,"startupBytes":B,"startupMillis":T}
//	GET /run?seconds=S             reads random files named in /app/data.list
//	                               for S seconds (at most 30) and reports
//	                               {"files":N,"bytes":B,"seconds":S}
//
// The benchmarks use it to measure the first response of a lazily pulled
// image and its run phase after start.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

const (
	startupList = "/app/startup.list"
	dataList    = "/app/data.list"
	maxRun      = 30 * time.Second
)

type startup struct {
	Files  int   `json:"startupFiles"`
	Bytes  int64 `json:"startupBytes"`
	Millis int64 `json:"startupMillis"`
}

func main() {
	begin := time.Now()
	var st startup
	paths, err := readList(startupList)
	if err != nil && !os.IsNotExist(err) {
		log.Fatal(err)
	}
	for _, p := range paths {
		n, err := readFile(p)
		if err != nil {
			log.Fatal(err)
		}
		st.Files++
		st.Bytes += n
	}
	st.Millis = time.Since(begin).Milliseconds()
	log.Printf("read %d files, %d bytes at start-up in %d ms", st.Files, st.Bytes, st.Millis)

	data, err := readList(dataList)
	if err != nil && !os.IsNotExist(err) {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/run", func(w http.ResponseWriter, r *http.Request) { run(w, r, data) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})
	port := os.Getenv("FC_SERVER_PORT")
	if port == "" {
		port = "9000"
	}
	log.Fatal(http.ListenAndServe("0.0.0.0:"+port, mux))
}

// run reads random files of data for the asked time and reports the rate.
func run(w http.ResponseWriter, r *http.Request, data []string) {
	secs, _ := strconv.ParseFloat(r.URL.Query().Get("seconds"), 64)
	limit := min(time.Duration(secs*float64(time.Second)), maxRun)
	if limit <= 0 || len(data) == 0 {
		http.Error(w, "need seconds > 0 and a data list", http.StatusBadRequest)
		return
	}
	var files int
	var bytes int64
	begin := time.Now()
	for time.Since(begin) < limit {
		n, err := readFile(data[rand.IntN(len(data))])
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		files++
		bytes += n
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"files": files, "bytes": bytes, "seconds": time.Since(begin).Seconds()})
}

func readList(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

func readFile(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := io.Copy(io.Discard, f)
	if err != nil {
		return n, fmt.Errorf("read %s: %w", path, err)
	}
	return n, nil
}
