package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fcd-dev/fcd/billing"
	"github.com/fcd-dev/fcd/iam"
)

const roleUsage = `Usage:
  fcctl role create NAME --repo PATTERN [--repo PATTERN ...] [--description TEXT]
  fcctl role get NAME [-o json]
  fcctl role list [-o json]
  fcctl role delete NAME

Repository patterns match paths without the registry host: examples/* matches
examples/echo; examples/** matches any depth below examples; ** matches all.
`

func runRole(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand("role", roleUsage, args, stderr)
	if err != nil {
		return err
	}
	fs := newFlagSet("role "+verb, stderr)
	output := fs.String("o", "", "output format: json")
	var repos multiFlag
	fs.Var(&repos, "repo", "repository pattern the role may pull (repeatable)")
	description := fs.String("description", "", "description")
	switch verb {
	case "list", "ls":
		if err := fs.Parse(args); err != nil {
			return err
		}
		_, data, err := c.do(ctx, http.MethodGet, "/fcd/v1/roles", nil, nil, nil)
		if err != nil {
			return err
		}
		var page struct {
			Roles []iam.Role `json:"roles"`
		}
		if err := json.Unmarshal(data, &page); err != nil {
			return fmt.Errorf("decode response: %w", err)
		}
		if *output == "json" {
			return writeIndented(stdout, page)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tARN\tREPOSITORIES")
		for _, r := range page.Roles {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, r.ARN, strings.Join(r.Repositories, ","))
		}
		return tw.Flush()
	case "create", "get", "delete", "rm":
	default:
		return unknownSubcommand("role", verb, roleUsage, stderr)
	}
	name, err := parseWithName(fs, args)
	if err != nil {
		return err
	}
	var data []byte
	switch verb {
	case "create":
		body, _ := json.Marshal(iam.Role{Name: name, Repositories: repos, Description: *description})
		_, data, err = c.do(ctx, http.MethodPost, "/fcd/v1/roles", nil, body, nil)
	case "get":
		_, data, err = c.do(ctx, http.MethodGet, "/fcd/v1/roles/"+url.PathEscape(name), nil, nil, nil)
	default:
		if _, _, err = c.do(ctx, http.MethodDelete, "/fcd/v1/roles/"+url.PathEscape(name), nil, nil, nil); err == nil {
			fmt.Fprintf(stdout, "deleted role %s\n", name)
		}
		return err
	}
	if err != nil {
		return err
	}
	var r iam.Role
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	if *output == "json" {
		return writeIndented(stdout, r)
	}
	fmt.Fprintf(stdout, "Name:          %s\nARN:           %s\nRepositories:  %s\nCreated:       %s\n",
		r.Name, r.ARN, strings.Join(r.Repositories, ", "), r.CreatedTime.Format(time.RFC3339))
	return nil
}

func runBilling(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("billing", stderr)
	function := fs.String("function", "", "only this function's records")
	since := fs.String("since", "", "only records from this time on (RFC 3339, or a duration ago such as 1h)")
	kind := fs.String("kind", "", "pull or invocation")
	limit := fs.Int("limit", 20, "records to list, newest last (totals cover all)")
	output := fs.String("o", "", "output format: json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	q := url.Values{"limit": {fmt.Sprint(*limit)}}
	if *function != "" {
		q.Set("function", *function)
	}
	if *kind != "" {
		q.Set("kind", *kind)
	}
	if *since != "" {
		t, err := parseSince(*since)
		if err != nil {
			return fmt.Errorf("%w: --since: %v", errUsage, err)
		}
		q.Set("since", t.Format(time.RFC3339))
	}
	_, data, err := c.do(ctx, http.MethodGet, "/fcd/v1/billing", q, nil, nil)
	if err != nil {
		return err
	}
	var page struct {
		Records []billing.Record `json:"records"`
		Totals  billing.Totals   `json:"totals"`
	}
	if err := json.Unmarshal(data, &page); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	if *output == "json" {
		return writeIndented(stdout, page)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tKIND\tFUNCTION\tSECONDS\tMEMORY\tGB-S\tNOTE")
	for _, r := range page.Records {
		note := r.RequestID
		if r.Kind == billing.KindPull {
			note = fmt.Sprintf("%s %d bytes", r.Image, r.Bytes)
			if r.CacheHit {
				note = r.Image + " (cached: no charge)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.3f\t%d\t%.4f\t%s\n", r.Start.Format(time.RFC3339), r.Kind, r.Function, r.Seconds, r.MemoryMB, r.GBSeconds, note)
	}
	tw.Flush()
	t := page.Totals
	fmt.Fprintf(stdout, "\ntotal: %.4f GB-s (pulls %.4f GB-s over %d cold starts, %d cache hits; invocations %.4f GB-s over %d)\n",
		t.GBSeconds, t.PullGBSeconds, t.ColdStarts, t.CacheHits, t.InvocationGBSeconds, t.Invocations)
	return nil
}

func parseSince(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	return time.Parse(time.RFC3339, s)
}
