// Command notify is the echo server that reports every invocation before
// it answers: POST /invoke sends the request's x-fc-request-id to
// $NOTIFY_URL (a POST whose body is the id) and answers with the event once
// the report was acknowledged, or with 500 when it was not. Tests of
// at-least-once delivery count the reports, which outlive fcd.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/fcd-dev/fcd/examples/echoserver"
)

func main() {
	target := os.Getenv("NOTIFY_URL")
	client := &http.Client{Timeout: 5 * time.Second}
	mux := http.NewServeMux()
	mux.Handle("/", echoserver.Handler())
	mux.HandleFunc("POST /invoke", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if target != "" {
			if err := report(client, target, r.Header.Get("x-fc-request-id")); err != nil {
				fmt.Println("notify:", err)
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(body)
	})
	echoserver.Serve("0.0.0.0", mux)
}

func report(c *http.Client, target, id string) error {
	resp, err := c.Post(target, "text/plain", strings.NewReader(id))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("report %s: HTTP %d", id, resp.StatusCode)
	}
	return nil
}
