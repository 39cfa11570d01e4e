package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/fcd-dev/fcd/api"
)

const triggerUsage = `Usage:
  fcctl trigger create FUNCTION NAME [--auth anonymous|function] [--methods GET,POST] [--description D] [-o json]
  fcctl trigger get FUNCTION NAME [-o json]
  fcctl trigger list FUNCTION [--prefix P] [--limit N] [-o json]
  fcctl trigger update FUNCTION NAME [--auth A] [--methods M] [--description D] [-o json]
  fcctl trigger delete FUNCTION NAME

A function has an HTTP endpoint (http://<function>.<domain>:<port>/ and
http://<fcd>/fn/<function>/) only while it has an HTTP trigger.
`

func runTrigger(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand("trigger", triggerUsage, args, stderr)
	if err != nil {
		return err
	}
	switch verb {
	case "create", "update":
		return triggerWrite(ctx, c, verb, args, stdout, stderr)
	case "get":
		return triggerGet(ctx, c, args, stdout, stderr)
	case "list", "ls":
		return triggerList(ctx, c, args, stdout, stderr)
	case "delete", "rm":
		return triggerDelete(ctx, c, args, stdout, stderr)
	default:
		return unknownSubcommand("trigger", verb, triggerUsage, stderr)
	}
}

func triggersPath(function string) string {
	return "/" + api.Version + "/functions/" + url.PathEscape(function) + "/triggers"
}

func triggerWrite(ctx context.Context, c *client, verb string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("trigger "+verb, stderr)
	auth := fs.String("auth", "", "authType: anonymous (default) or function (signed requests)")
	methods := fs.String("methods", "", "comma-separated HTTP methods the trigger accepts (default: all)")
	description := fs.String("description", "", "description")
	output := fs.String("o", "", "output format: json")
	names, err := parsePositional(fs, args, 2)
	if err != nil {
		return err
	}
	function, name := names[0], names[1]
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	in := api.TriggerInput{}
	if set["description"] {
		in.Description = description
	}
	if verb == "create" || set["auth"] || set["methods"] {
		cfg := api.HTTPTriggerConfig{AuthType: *auth}
		if cfg.AuthType == "" {
			cfg.AuthType = api.AuthTypeAnonymous
		}
		if *methods != "" {
			for _, m := range strings.Split(*methods, ",") {
				cfg.Methods = append(cfg.Methods, strings.ToUpper(strings.TrimSpace(m)))
			}
		}
		data, _ := json.Marshal(cfg)
		s := string(data)
		in.TriggerConfig = &s
	}
	method, path := http.MethodPost, triggersPath(function)
	if verb == "create" {
		typ := api.TriggerTypeHTTP
		in.TriggerName, in.TriggerType = &name, &typ
	} else {
		method, path = http.MethodPut, path+"/"+url.PathEscape(name)
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	_, data, err := c.do(ctx, method, path, nil, body, nil)
	if err != nil {
		return err
	}
	return printTrigger(stdout, data, *output)
}

func triggerGet(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("trigger get", stderr)
	output := fs.String("o", "", "output format: json")
	names, err := parsePositional(fs, args, 2)
	if err != nil {
		return err
	}
	_, data, err := c.do(ctx, http.MethodGet, triggersPath(names[0])+"/"+url.PathEscape(names[1]), nil, nil, nil)
	if err != nil {
		return err
	}
	return printTrigger(stdout, data, *output)
}

func triggerDelete(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("trigger delete", stderr)
	names, err := parsePositional(fs, args, 2)
	if err != nil {
		return err
	}
	if _, _, err := c.do(ctx, http.MethodDelete, triggersPath(names[0])+"/"+url.PathEscape(names[1]), nil, nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "deleted trigger %s of %s\n", names[1], names[0])
	return nil
}

func triggerList(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("trigger list", stderr)
	output := fs.String("o", "", "output format: json")
	prefix := fs.String("prefix", "", "only triggers whose name starts with this")
	limit := fs.Int("limit", 0, "at most this many (0: all, paging through)")
	names, err := parsePositional(fs, args, 1)
	if err != nil {
		return err
	}
	q := url.Values{}
	if *prefix != "" {
		q.Set("prefix", *prefix)
	}
	all, err := listPages[api.Trigger](ctx, c, triggersPath(names[0]), q, fcPaging, "triggers", *limit)
	if err != nil {
		return err
	}
	if *output == "json" {
		return writeIndented(stdout, map[string]any{"triggers": all})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tAUTH\tMETHODS\tURL")
	for _, t := range all {
		auth, methods := triggerSummary(t)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.TriggerName, t.TriggerType, auth, methods, triggerURL(t))
	}
	return tw.Flush()
}

func triggerSummary(t api.Trigger) (auth, methods string) {
	hc, err := t.HTTPConfig()
	if err != nil {
		return "?", "?"
	}
	methods = strings.Join(hc.Methods, ",")
	if methods == "" {
		methods = "*"
	}
	return hc.AuthType, methods
}

func triggerURL(t api.Trigger) string {
	if t.HTTPTrigger == nil {
		return ""
	}
	return t.HTTPTrigger.URLIntranet
}

func printTrigger(w io.Writer, data []byte, output string) error {
	var t api.Trigger
	if err := json.Unmarshal(data, &t); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	if output == "json" {
		return writeIndented(w, t)
	}
	auth, methods := triggerSummary(t)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	row("Name", t.TriggerName)
	row("Type", t.TriggerType)
	row("Auth", auth)
	row("Methods", methods)
	row("Qualifier", t.Qualifier)
	if t.HTTPTrigger != nil {
		row("URL", t.HTTPTrigger.URLIntranet)
		row("URL (by host)", t.HTTPTrigger.URLInternet)
	}
	if t.Description != "" {
		row("Description", t.Description)
	}
	row("Created", t.CreatedTime)
	row("Modified", t.LastModifiedTime)
	return tw.Flush()
}
