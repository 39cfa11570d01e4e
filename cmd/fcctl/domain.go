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

	"github.com/fcd-dev/fcd/api"
)

const domainUsage = `Usage:
  fcctl domain create NAME --route PATH=FUNCTION[:GET,POST]... [-o json]
  fcctl domain get NAME [-o json]
  fcctl domain list [--prefix P] [-o json]
  fcctl domain update NAME --route PATH=FUNCTION[:METHODS]...   (replaces the routes)
  fcctl domain delete NAME

Requests to fcd whose Host is NAME go to the function of the route whose
path matches: exact, or ending in /* for everything below. The function
needs an HTTP trigger.
`

func runDomain(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand("domain", domainUsage, args, stderr)
	if err != nil {
		return err
	}
	fs := newFlagSet("domain "+verb, stderr)
	output := fs.String("o", "", "output format: json")
	prefix := fs.String("prefix", "", "only domains whose name starts with this")
	var routes multiFlag
	fs.Var(&routes, "route", "route PATH=FUNCTION or PATH=FUNCTION:GET,POST (repeatable)")
	path := "/" + api.Version + "/custom-domains"
	if verb == "list" || verb == "ls" {
		if err := fs.Parse(args); err != nil {
			return err
		}
		return domainList(ctx, c, path, *prefix, *output, stdout)
	}
	name, err := parseWithName(fs, args)
	if err != nil {
		return err
	}
	var data []byte
	switch verb {
	case "create", "update":
		rc, err := parseRoutes(routes)
		if err != nil {
			return err
		}
		in := api.CustomDomainInput{RouteConfig: rc}
		method, p := http.MethodPost, path
		if verb == "create" {
			proto := api.ProtocolHTTP
			in.DomainName, in.Protocol = &name, &proto
		} else {
			method, p = http.MethodPut, path+"/"+url.PathEscape(name)
		}
		body, _ := json.Marshal(in)
		_, data, err = c.do(ctx, method, p, nil, body, nil)
		if err != nil {
			return err
		}
	case "get":
		_, data, err = c.do(ctx, http.MethodGet, path+"/"+url.PathEscape(name), nil, nil, nil)
		if err != nil {
			return err
		}
	case "delete", "rm":
		if _, _, err := c.do(ctx, http.MethodDelete, path+"/"+url.PathEscape(name), nil, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted custom domain %s\n", name)
		return nil
	default:
		return unknownSubcommand("domain", verb, domainUsage, stderr)
	}
	var d api.CustomDomain
	if err := json.Unmarshal(data, &d); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	if *output == "json" {
		return writeIndented(stdout, d)
	}
	return printDomains(stdout, []api.CustomDomain{d})
}

// parseRoutes parses PATH=FUNCTION[:METHODS] arguments.
func parseRoutes(args []string) (*api.RouteConfig, error) {
	if len(args) == 0 {
		return nil, nil
	}
	rc := &api.RouteConfig{Routes: []api.PathConfig{}}
	for _, a := range args {
		path, target, ok := strings.Cut(a, "=")
		if !ok || path == "" || target == "" {
			return nil, fmt.Errorf("%w: --route %q is not PATH=FUNCTION[:METHODS]", errUsage, a)
		}
		fn, methods, _ := strings.Cut(target, ":")
		r := api.PathConfig{Path: path, FunctionName: fn}
		if methods != "" {
			r.Methods = strings.Split(strings.ToUpper(methods), ",")
		}
		rc.Routes = append(rc.Routes, r)
	}
	return rc, nil
}

func domainList(ctx context.Context, c *client, path, prefix, output string, stdout io.Writer) error {
	q := url.Values{}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	all, err := listPages[api.CustomDomain](ctx, c, path, q, fcPaging, "customDomains", 0)
	if err != nil {
		return err
	}
	if output == "json" {
		return writeIndented(stdout, map[string]any{"customDomains": all})
	}
	return printDomains(stdout, all)
}

func printDomains(w io.Writer, ds []api.CustomDomain) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tPATH\tFUNCTION\tMETHODS")
	for _, d := range ds {
		if d.RouteConfig == nil || len(d.RouteConfig.Routes) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\n", d.DomainName)
			continue
		}
		for _, r := range d.RouteConfig.Routes {
			methods := strings.Join(r.Methods, ",")
			if methods == "" {
				methods = "*"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.DomainName, r.Path, r.FunctionName, methods)
		}
	}
	return tw.Flush()
}
