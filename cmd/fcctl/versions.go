package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fcd-dev/fcd/api"
)

const versionUsage = `Usage:
  fcctl version publish FUNCTION [--description D] [-o json]
  fcctl version list FUNCTION [--direction FORWARD|BACKWARD] [--limit N] [--next-token T] [-o json]
  fcctl version delete FUNCTION VERSION
`

const aliasUsage = `Usage:
  fcctl alias create FUNCTION ALIAS --version V [--weight V2=0.2] [--description D] [-o json]
  fcctl alias get FUNCTION ALIAS [-o json]
  fcctl alias update FUNCTION ALIAS [--version V] [--weight V2=0.2 | --weight -] [--description D] [-o json]
  fcctl alias delete FUNCTION ALIAS
  fcctl alias list FUNCTION [--prefix P] [--limit N] [--next-token T] [-o json]
`

const concurrencyUsage = `Usage:
  fcctl concurrency put FUNCTION --reserved N [-o json]   (0 refuses every invocation)
  fcctl concurrency get FUNCTION [-o json]
  fcctl concurrency delete FUNCTION
  fcctl concurrency list [--function F] [--limit N] [--next-token T] [-o json]
`

const instanceUsage = `Usage:
  fcctl instance list FUNCTION [--qualifier Q] [-o json]
`

// parseArgs parses flags placed anywhere among exactly len(names)
// positional arguments, which it returns.
func parseArgs(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != len(names) {
		return nil, fmt.Errorf("%w: %s takes %s", errUsage, fs.Name(), strings.Join(names, " "))
	}
	return pos, nil
}

func functionPath(name string, sub ...string) string {
	p := "/" + api.Version + "/functions/" + url.PathEscape(name)
	for _, s := range sub {
		p += "/" + url.PathEscape(s)
	}
	return p
}

// subcommand splits args into a verb and the rest, or fails with usage.
func subcommand(what, usage string, args []string, stderr io.Writer) (string, []string, error) {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return "", nil, fmt.Errorf("%w: %s needs a subcommand", errUsage, what)
	}
	return args[0], args[1:], nil
}

func unknownSubcommand(what, verb, usage string, stderr io.Writer) error {
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("%w: unknown %s subcommand %q", errUsage, what, verb)
}

// output prints data (an API response body) as indented JSON with -o json,
// else through text.
func output(stdout io.Writer, format string, data []byte, v any, text func()) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	switch format {
	case "json":
		return writeIndented(stdout, v)
	case "":
		text()
		return nil
	default:
		return fmt.Errorf("%w: unknown output format %q (json)", errUsage, format)
	}
}

func runVersion(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand("version", versionUsage, args, stderr)
	if err != nil {
		return err
	}
	fs := newFlagSet("version "+verb, stderr)
	out := fs.String("o", "", "output format: json")
	switch verb {
	case "publish":
		desc := fs.String("description", "", "version description")
		pos, err := parseArgs(fs, args, "FUNCTION")
		if err != nil {
			return err
		}
		body, _ := json.Marshal(api.PublishVersionInput{Description: *desc})
		_, data, err := c.do(ctx, http.MethodPost, functionPath(pos[0], "versions"), nil, body, nil)
		if err != nil {
			return err
		}
		var v api.FunctionVersion
		return output(stdout, *out, data, &v, func() { fmt.Fprintf(stdout, "published version %s of %s\n", v.VersionID, pos[0]) })
	case "list", "ls":
		dir := fs.String("direction", "", "FORWARD (oldest first) or BACKWARD (newest first, the default)")
		limit := fs.Int("limit", 0, "versions per page (1..100)")
		next := fs.String("next-token", "", "version to start at")
		pos, err := parseArgs(fs, args, "FUNCTION")
		if err != nil {
			return err
		}
		q := url.Values{}
		setQuery(q, "direction", *dir)
		setQuery(q, "nextToken", *next)
		if *limit > 0 {
			q.Set("limit", strconv.Itoa(*limit))
		}
		_, data, err := c.do(ctx, http.MethodGet, functionPath(pos[0], "versions"), q, nil, nil)
		if err != nil {
			return err
		}
		var page struct {
			Versions  []api.FunctionVersion `json:"versions"`
			NextToken string                `json:"nextToken,omitempty"`
			Direction string                `json:"direction"`
		}
		return output(stdout, *out, data, &page, func() {
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tCREATED\tDESCRIPTION")
			for _, v := range page.Versions {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", v.VersionID, v.CreatedTime, v.Description)
			}
			tw.Flush()
			if page.NextToken != "" {
				fmt.Fprintf(stdout, "next: --next-token %s\n", page.NextToken)
			}
		})
	case "delete", "rm":
		pos, err := parseArgs(fs, args, "FUNCTION", "VERSION")
		if err != nil {
			return err
		}
		if _, _, err := c.do(ctx, http.MethodDelete, functionPath(pos[0], "versions", pos[1]), nil, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted version %s of %s\n", pos[1], pos[0])
		return nil
	default:
		return unknownSubcommand("version", verb, versionUsage, stderr)
	}
}

func setQuery(q url.Values, key, v string) {
	if v != "" {
		q.Set(key, v)
	}
}

// weightFlag is --weight VERSION=FRACTION; "-" clears the split.
type weightFlag struct {
	set bool
	m   map[string]float32
}

func (w *weightFlag) String() string { return fmt.Sprint(w.m) }

func (w *weightFlag) Set(v string) error {
	w.set = true
	if w.m == nil {
		w.m = map[string]float32{}
	}
	if v == "-" {
		return nil
	}
	k, f, ok := strings.Cut(v, "=")
	x, err := strconv.ParseFloat(f, 32)
	if !ok || err != nil {
		return fmt.Errorf("want VERSION=FRACTION, e.g. 2=0.2")
	}
	w.m[k] = float32(x)
	return nil
}

func runAlias(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand("alias", aliasUsage, args, stderr)
	if err != nil {
		return err
	}
	fs := newFlagSet("alias "+verb, stderr)
	out := fs.String("o", "", "output format: json")
	var (
		data []byte
		pos  []string
	)
	switch verb {
	case "create", "update":
		version := fs.String("version", "", "the version the alias points to")
		desc := fs.String("description", "", "description")
		var weight weightFlag
		fs.Var(&weight, "weight", "VERSION=FRACTION of requests for one more version; - removes it")
		if pos, err = parseArgs(fs, args, "FUNCTION", "ALIAS"); err != nil {
			return err
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		in := api.AliasInput{AdditionalVersionWeight: weight.m}
		if set["version"] {
			in.VersionID = version
		}
		if set["description"] {
			in.Description = desc
		}
		method, path := http.MethodPut, functionPath(pos[0], "aliases", pos[1])
		if verb == "create" {
			if !set["version"] {
				return fmt.Errorf("%w: alias create needs --version", errUsage)
			}
			in.AliasName = &pos[1]
			method, path = http.MethodPost, functionPath(pos[0], "aliases")
		}
		body, _ := json.Marshal(in)
		_, data, err = c.do(ctx, method, path, nil, body, nil)
	case "get":
		if pos, err = parseArgs(fs, args, "FUNCTION", "ALIAS"); err != nil {
			return err
		}
		_, data, err = c.do(ctx, http.MethodGet, functionPath(pos[0], "aliases", pos[1]), nil, nil, nil)
	case "delete", "rm":
		if pos, err = parseArgs(fs, args, "FUNCTION", "ALIAS"); err != nil {
			return err
		}
		if _, _, err := c.do(ctx, http.MethodDelete, functionPath(pos[0], "aliases", pos[1]), nil, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted alias %s of %s\n", pos[1], pos[0])
		return nil
	case "list", "ls":
		prefix := fs.String("prefix", "", "alias name prefix")
		limit := fs.Int("limit", 0, "aliases per page (1..100)")
		next := fs.String("next-token", "", "alias to start at")
		if pos, err = parseArgs(fs, args, "FUNCTION"); err != nil {
			return err
		}
		q := url.Values{}
		setQuery(q, "prefix", *prefix)
		setQuery(q, "nextToken", *next)
		if *limit > 0 {
			q.Set("limit", strconv.Itoa(*limit))
		}
		if _, data, err = c.do(ctx, http.MethodGet, functionPath(pos[0], "aliases"), q, nil, nil); err != nil {
			return err
		}
		var page struct {
			Aliases   []api.Alias `json:"aliases"`
			NextToken string      `json:"nextToken,omitempty"`
		}
		return output(stdout, *out, data, &page, func() {
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ALIAS\tVERSION\tSPLIT\tDESCRIPTION")
			for _, a := range page.Aliases {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.AliasName, a.VersionID, split(&a), a.Description)
			}
			tw.Flush()
			if page.NextToken != "" {
				fmt.Fprintf(stdout, "next: --next-token %s\n", page.NextToken)
			}
		})
	default:
		return unknownSubcommand("alias", verb, aliasUsage, stderr)
	}
	if err != nil {
		return err
	}
	var a api.Alias
	return output(stdout, *out, data, &a, func() {
		fmt.Fprintf(stdout, "Alias:       %s\nVersion:     %s\nSplit:       %s\nDescription: %s\nModified:    %s\n",
			a.AliasName, a.VersionID, split(&a), a.Description, a.LastModifiedTime)
	})
}

// split describes an alias's traffic split, e.g. "1=80% 2=20%".
func split(a *api.Alias) string {
	rest := 1.0
	var parts []string
	for _, v := range a.Versions()[1:] {
		w := float64(a.AdditionalVersionWeight[v])
		rest -= w
		parts = append(parts, fmt.Sprintf("%s=%.4g%%", v, w*100))
	}
	return strings.Join(append([]string{fmt.Sprintf("%s=%.4g%%", a.VersionID, rest*100)}, parts...), " ")
}

func runConcurrency(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand("concurrency", concurrencyUsage, args, stderr)
	if err != nil {
		return err
	}
	fs := newFlagSet("concurrency "+verb, stderr)
	out := fs.String("o", "", "output format: json")
	var data []byte
	switch verb {
	case "put", "set":
		reserved := fs.Int64("reserved", -1, "the function's reserved concurrency (0 refuses every invocation)")
		pos, err := parseArgs(fs, args, "FUNCTION")
		if err != nil {
			return err
		}
		if *reserved < 0 {
			return fmt.Errorf("%w: concurrency put needs --reserved N", errUsage)
		}
		body, _ := json.Marshal(api.PutConcurrencyInput{ReservedConcurrency: reserved})
		if _, data, err = c.do(ctx, http.MethodPut, functionPath(pos[0], "concurrency"), nil, body, nil); err != nil {
			return err
		}
	case "get":
		pos, err := parseArgs(fs, args, "FUNCTION")
		if err != nil {
			return err
		}
		if _, data, err = c.do(ctx, http.MethodGet, functionPath(pos[0], "concurrency"), nil, nil, nil); err != nil {
			return err
		}
	case "delete", "rm":
		pos, err := parseArgs(fs, args, "FUNCTION")
		if err != nil {
			return err
		}
		if _, _, err := c.do(ctx, http.MethodDelete, functionPath(pos[0], "concurrency"), nil, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted the concurrency config of %s\n", pos[0])
		return nil
	case "list", "ls":
		function := fs.String("function", "", "only this function's")
		limit := fs.Int("limit", 0, "configs per page (1..100)")
		next := fs.String("next-token", "", "function to start at")
		if _, err := parseArgs(fs, args); err != nil {
			return err
		}
		q := url.Values{}
		setQuery(q, "functionName", *function)
		setQuery(q, "nextToken", *next)
		if *limit > 0 {
			q.Set("limit", strconv.Itoa(*limit))
		}
		if _, data, err = c.do(ctx, http.MethodGet, "/"+api.Version+"/concurrency-configs", q, nil, nil); err != nil {
			return err
		}
		var page struct {
			Configs   []api.ConcurrencyConfig `json:"configs"`
			NextToken string                  `json:"nextToken,omitempty"`
		}
		return output(stdout, *out, data, &page, func() {
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FUNCTION\tRESERVED")
			for _, cc := range page.Configs {
				fmt.Fprintf(tw, "%s\t%d\n", cc.FunctionArn[strings.LastIndexByte(cc.FunctionArn, '/')+1:], cc.ReservedConcurrency)
			}
			tw.Flush()
			if page.NextToken != "" {
				fmt.Fprintf(stdout, "next: --next-token %s\n", page.NextToken)
			}
		})
	default:
		return unknownSubcommand("concurrency", verb, concurrencyUsage, stderr)
	}
	var cc api.ConcurrencyConfig
	return output(stdout, *out, data, &cc, func() {
		fmt.Fprintf(stdout, "%s: reserved concurrency %d\n", cc.FunctionArn, cc.ReservedConcurrency)
	})
}

// functionInvocation serves fcctl function disable|enable.
func functionInvocation(ctx context.Context, c *client, verb string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("function "+verb, stderr)
	reason := fs.String("reason", "", "with disable: why (GetFunction reports it)")
	pos, err := parseArgs(fs, args, "FUNCTION")
	if err != nil {
		return err
	}
	var body []byte
	if verb == "disable" {
		in := api.DisableInvocationInput{}
		if *reason != "" {
			in.Reason = reason
		}
		body, _ = json.Marshal(in)
	} else if *reason != "" {
		return fmt.Errorf("%w: --reason is for disable", errUsage)
	}
	if _, _, err := c.do(ctx, http.MethodPost, functionPath(pos[0], "invoke", verb), nil, body, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "invocations of %s %sd\n", pos[0], verb)
	return nil
}

func runInstance(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand("instance", instanceUsage, args, stderr)
	if err != nil {
		return err
	}
	if verb != "list" && verb != "ls" {
		return unknownSubcommand("instance", verb, instanceUsage, stderr)
	}
	fs := newFlagSet("instance list", stderr)
	out := fs.String("o", "", "output format: json")
	qualifier := fs.String("qualifier", "", "only instances of this qualifier (LATEST, a version, an alias)")
	pos, err := parseArgs(fs, args, "FUNCTION")
	if err != nil {
		return err
	}
	q := url.Values{}
	setQuery(q, "qualifier", *qualifier)
	_, data, err := c.do(ctx, http.MethodGet, functionPath(pos[0], "instances"), q, nil, nil)
	if err != nil {
		return err
	}
	var page struct {
		Instances []struct {
			InstanceID    string `json:"instanceId"`
			VersionID     string `json:"versionId"`
			Qualifier     string `json:"qualifier"`
			Status        string `json:"status"`
			CreatedTimeMs int64  `json:"createdTimeMs"`
		} `json:"instances"`
	}
	return output(stdout, *out, data, &page, func() {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "INSTANCE\tVERSION\tQUALIFIER\tSTATUS\tCREATED")
		for _, in := range page.Instances {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", in.InstanceID, in.VersionID, in.Qualifier, in.Status,
				time.UnixMilli(in.CreatedTimeMs).UTC().Format(time.RFC3339))
		}
		tw.Flush()
	})
}

// printFunctionView prints GetFunction's answer: the function and, when
// its invocations are disabled, why.
func printFunctionView(w io.Writer, data []byte, format string) error {
	var view struct {
		InvocationRestriction *api.InvocationRestriction `json:"invocationRestriction"`
	}
	if err := json.Unmarshal(data, &view); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	if format == "json" {
		// The whole answer, fields this fcctl does not model included.
		var buf bytes.Buffer
		if err := json.Indent(&buf, data, "", "  "); err != nil {
			return fmt.Errorf("decode response: %w", err)
		}
		buf.WriteByte('\n')
		_, err := buf.WriteTo(w)
		return err
	}
	if err := printFunction(w, data, format); err != nil {
		return err
	}
	if r := view.InvocationRestriction; r != nil && r.Disable {
		fmt.Fprintf(w, "Invocations:   disabled since %s: %s\n", r.LastModifiedTime, r.Reason)
	}
	return nil
}
