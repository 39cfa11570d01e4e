package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/fcd-dev/fcd/api"
)

func runInvoke(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("invoke", stderr)
	data := fs.String("d", "", "event body; @FILE reads a file, @- stdin")
	verbose := fs.Bool("v", false, "print status, request id and timing to stderr")
	tail := fs.Bool("log", false, "print the request's log lines (x-fc-log-type: Tail) to stderr")
	async := fs.Bool("async", false, "invoke asynchronously (x-fc-invocation-type: Async): print the request id once the event is accepted")
	taskID := fs.String("task-id", "", "with --async: the async task id (x-fc-async-task-id)")
	qualifier := fs.String("qualifier", "", "LATEST (the default), a version or an alias")
	name, err := parseWithName(fs, args)
	if err != nil {
		return err
	}
	body, err := readData(*data)
	if err != nil {
		return err
	}
	h := http.Header{"Content-Type": {"application/octet-stream"}}
	if *tail {
		h.Set("x-fc-log-type", "Tail")
	}
	if *async {
		h.Set("x-fc-invocation-type", "Async")
		if *taskID != "" {
			h.Set("x-fc-async-task-id", *taskID)
		}
	} else if *taskID != "" {
		return fmt.Errorf("%w: --task-id needs --async", errUsage)
	}
	start := time.Now()
	var q url.Values
	if *qualifier != "" {
		q = url.Values{"qualifier": {*qualifier}}
	}
	resp, out, err := c.do(ctx, http.MethodPost, "/"+api.Version+"/functions/"+url.PathEscape(name)+"/invocations", q, body, h)
	elapsed := time.Since(start)
	if err != nil {
		return err
	}
	if *async {
		fmt.Fprintf(stdout, "accepted: request id %s\n", resp.Header.Get("x-fc-request-id"))
	}
	stdout.Write(out)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		fmt.Fprintln(stdout)
	}
	if *verbose {
		fmt.Fprintf(stderr, "status: %d\nrequest id: %s\ntime: %s\n", resp.StatusCode, resp.Header.Get("x-fc-request-id"), elapsed.Round(time.Microsecond))
	}
	if *tail {
		logs, _ := base64.StdEncoding.DecodeString(resp.Header.Get("x-fc-log-result"))
		fmt.Fprintf(stderr, "--- log ---\n%s", logs)
	}
	if et := resp.Header.Get("x-fc-error-type"); et != "" {
		return fmt.Errorf("function error (%s): %s", et, strings.TrimSpace(string(out)))
	}
	return nil
}

func readData(d string) ([]byte, error) {
	switch {
	case d == "@-":
		return io.ReadAll(os.Stdin)
	case strings.HasPrefix(d, "@"):
		return os.ReadFile(d[1:])
	default:
		return []byte(d), nil
	}
}

func runLogs(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("logs", stderr)
	tail := fs.Int("tail", 100, "print the last N lines (0: all kept)")
	name, err := parseWithName(fs, args)
	if err != nil {
		return err
	}
	q := url.Values{"tail": {fmt.Sprint(*tail)}}
	_, data, err := c.do(ctx, http.MethodGet, "/"+api.Version+"/functions/"+url.PathEscape(name)+"/logs", q, nil, nil)
	if err != nil {
		return err
	}
	var page struct {
		Lines []string `json:"lines"`
	}
	if err := json.Unmarshal(data, &page); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	for _, l := range page.Lines {
		fmt.Fprintln(stdout, l)
	}
	return nil
}

const provisionUsage = `Usage:
  fcctl provision set FUNCTION --target N [--qualifier Q]
  fcctl provision get FUNCTION [--qualifier Q] [-o json]
  fcctl provision delete FUNCTION [--qualifier Q]
  fcctl provision list [-o json]               every function's target, current and last start error
  (--qualifier: a version or an alias; default LATEST)
`

func runProvision(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand("provision", provisionUsage, args, stderr)
	if err != nil {
		return err
	}
	if verb == "list" || verb == "ls" {
		return provisionList(ctx, c, args, stdout, stderr)
	}
	fs := newFlagSet("provision "+verb, stderr)
	target := fs.Int("target", -1, "instances to keep warm")
	output := fs.String("o", "", "output format: json")
	qualifier := fs.String("qualifier", "", "a version or an alias (default LATEST)")
	name, err := parseWithName(fs, args)
	if err != nil {
		return err
	}
	path := "/" + api.Version + "/functions/" + url.PathEscape(name) + "/provision-config"
	var q url.Values
	if *qualifier != "" {
		q = url.Values{"qualifier": {*qualifier}}
	}
	var data []byte
	switch verb {
	case "set", "put":
		if *target < 0 {
			return fmt.Errorf("%w: provision set needs --target N", errUsage)
		}
		body, _ := json.Marshal(map[string]int{"defaultTarget": *target})
		_, data, err = c.do(ctx, http.MethodPut, path, q, body, nil)
	case "get":
		_, data, err = c.do(ctx, http.MethodGet, path, q, nil, nil)
	case "delete", "rm":
		if _, _, err = c.do(ctx, http.MethodDelete, path, q, nil, nil); err == nil {
			fmt.Fprintf(stdout, "provision config of %s deleted\n", name)
		}
		return err
	default:
		return unknownSubcommand("provision", verb, provisionUsage, stderr)
	}
	if err != nil {
		return err
	}
	var pc provisionStatus
	if err := json.Unmarshal(data, &pc); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	if *output == "json" {
		return writeIndented(stdout, pc)
	}
	fmt.Fprintf(stdout, "%s: target %d, current %d\n", name, pc.DefaultTarget, pc.Current)
	if pc.CurrentError != "" {
		fmt.Fprintf(stdout, "last start failed: %s\n", pc.CurrentError)
	}
	return nil
}
