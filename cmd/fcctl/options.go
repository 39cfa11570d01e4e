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

// optionFlags are the function options beyond the container (api's
// function_options.go).
type optionFlags struct {
	idleTimeout             int
	disableOndemand         bool
	disableInject           string
	sessionHeader           string
	dnsServers, dnsSearches multiFlag
	dnsOptions, tags        multiFlag
}

func (o *optionFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&o.idleTimeout, "idle-timeout", 0, "seconds an idle instance lives (0: the host's default)")
	fs.BoolVar(&o.disableOndemand, "disable-ondemand", false, "serve from provisioned instances only")
	fs.StringVar(&o.disableInject, "disable-inject-credentials", "", "keep the role's keys out of: None, Env, Request or All")
	fs.Var(&o.dnsServers, "dns-server", "instance resolv.conf nameserver (repeatable; customDNS)")
	fs.Var(&o.dnsSearches, "dns-search", "instance resolv.conf search domain (repeatable)")
	fs.Var(&o.dnsOptions, "dns-option", "instance resolv.conf option NAME or NAME:VALUE (repeatable)")
	fs.Var(&o.tags, "tag", "tag KEY=VALUE (repeatable; create only, then fcctl tag)")
	fs.StringVar(&o.sessionHeader, "session-header", "", `session affinity: requests with the same value of this header go to one instance ("" turns it off)`)
}

func (o *optionFlags) apply(set map[string]bool, in *api.Input, create bool) error {
	if set["idle-timeout"] {
		v := int32(o.idleTimeout)
		in.IdleTimeout = &v
	}
	if set["disable-ondemand"] {
		in.DisableOndemand = &o.disableOndemand
	}
	if set["disable-inject-credentials"] {
		in.DisableInjectCredentials = &o.disableInject
	}
	if set["dns-server"] || set["dns-search"] || set["dns-option"] {
		d := &api.CustomDNS{NameServers: o.dnsServers, Searches: o.dnsSearches}
		for _, opt := range o.dnsOptions {
			name, value, _ := strings.Cut(opt, ":")
			d.DNSOptions = append(d.DNSOptions, api.DNSOption{Name: name, Value: value})
		}
		in.CustomDNS = d
	}
	if set["session-header"] {
		mode, cfg := api.SessionAffinityNone, ""
		if o.sessionHeader != "" {
			data, _ := json.Marshal(api.SessionConfig{HeaderName: o.sessionHeader})
			mode, cfg = api.SessionAffinityHeaderField, string(data)
		}
		in.SessionAffinity, in.SessionAffinityConfig = &mode, &cfg
	}
	if set["tag"] {
		if !create {
			return fmt.Errorf("%w: --tag is for create; change tags with fcctl tag add|remove", errUsage)
		}
		tags, err := parseTags(o.tags)
		if err != nil {
			return err
		}
		in.Tags = tags
	}
	return nil
}

func printOptions(row func(string, any), f *api.Function) {
	if f.IdleTimeout > 0 {
		row("Idle timeout", fmt.Sprintf("%d s", f.IdleTimeout))
	}
	if f.DisableOndemand {
		row("On-demand", "disabled (provisioned instances only)")
	}
	if m := f.DisableInjectCredentials; m != "" && m != api.InjectCredentialsNone {
		row("No credentials in", m)
	}
	if d := f.CustomDNS; d != nil {
		row("DNS", strings.TrimSpace(strings.ReplaceAll(d.ResolvConf(), "\n", "; ")))
	}
	if c, ok := f.Session(); ok {
		row("Session header", c.HeaderName)
	}
	for _, t := range f.Tags {
		row("Tag", t.Key+"="+t.Value)
	}
}

// parseTags parses KEY=VALUE (or KEY) arguments.
func parseTags(args []string) ([]api.Tag, error) {
	var tags []api.Tag
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		if k == "" {
			return nil, fmt.Errorf("%w: tag %q is not KEY=VALUE", errUsage, a)
		}
		tags = append(tags, api.Tag{Key: k, Value: v})
	}
	return tags, nil
}

const tagUsage = `Usage:
  fcctl tag add FUNCTION KEY=VALUE...        tag a function (TagResources)
  fcctl tag remove FUNCTION KEY... | --all    untag it (UntagResources)
  fcctl tag list [FUNCTION] [--tag K=V] [-o json]   tags of functions (ListTagResources)
`

func runTag(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand("tag", tagUsage, args, stderr)
	if err != nil {
		return err
	}
	fs := newFlagSet("tag "+verb, stderr)
	all := fs.Bool("all", false, "remove every tag")
	output := fs.String("o", "", "output format: json")
	var filter multiFlag
	fs.Var(&filter, "tag", "only functions with this tag KEY=VALUE (repeatable)")
	var pos []string
	for len(args) > 0 {
		if strings.HasPrefix(args[0], "-") {
			if err := fs.Parse(args); err != nil {
				return err
			}
			args = fs.Args()
			continue
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	path := "/" + api.Version + "/tags-v2"
	switch verb {
	case "add":
		if len(pos) < 2 {
			return fmt.Errorf("%w: tag add takes FUNCTION KEY=VALUE...", errUsage)
		}
		tags, err := parseTags(pos[1:])
		if err != nil {
			return err
		}
		body, _ := json.Marshal(map[string]any{"ResourceId": []string{pos[0]}, "ResourceType": "FUNCTION", "Tag": tags})
		if _, _, err := c.do(ctx, http.MethodPost, path, nil, body, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "tagged %s\n", pos[0])
		return nil
	case "remove", "rm":
		if len(pos) < 1 || (len(pos) == 1 && !*all) {
			return fmt.Errorf("%w: tag remove takes FUNCTION KEY... or FUNCTION --all", errUsage)
		}
		q := url.Values{}
		ids, _ := json.Marshal([]string{pos[0]})
		q.Set("ResourceId", string(ids))
		q.Set("ResourceType", "FUNCTION")
		if *all {
			q.Set("All", "true")
		} else {
			keys, _ := json.Marshal(pos[1:])
			q.Set("TagKey", string(keys))
		}
		if _, _, err := c.do(ctx, http.MethodDelete, path, q, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "untagged %s\n", pos[0])
		return nil
	case "list", "ls":
		return tagList(ctx, c, path, pos, filter, *output, stdout)
	default:
		return unknownSubcommand("tag", verb, tagUsage, stderr)
	}
}

func tagList(ctx context.Context, c *client, path string, functions []string, filter []string, output string, stdout io.Writer) error {
	q := url.Values{}
	if len(functions) > 0 {
		ids, _ := json.Marshal(functions)
		q.Set("ResourceId", string(ids))
	}
	if len(filter) > 0 {
		tags, err := parseTags(filter)
		if err != nil {
			return err
		}
		data, _ := json.Marshal(tags)
		q.Set("Tag", string(data))
	}
	type tagResource struct {
		ResourceID string `json:"ResourceId"`
		TagKey     string `json:"TagKey"`
		TagValue   string `json:"TagValue"`
	}
	all, err := listPages[tagResource](ctx, c, path, q, tagPaging, "TagResources", 0)
	if err != nil {
		return err
	}
	if output == "json" {
		return writeIndented(stdout, map[string]any{"tagResources": all})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FUNCTION\tKEY\tVALUE")
	for _, r := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.ResourceID, r.TagKey, r.TagValue)
	}
	return tw.Flush()
}

// provisionStatus is FC's ProvisionConfig as fcctl shows it.
type provisionStatus struct {
	FunctionArn   string `json:"functionArn"`
	DefaultTarget int    `json:"defaultTarget"`
	Current       int    `json:"current"`
	CurrentError  string `json:"currentError,omitempty"`
}

func provisionList(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("provision list", stderr)
	output := fs.String("o", "", "output format: json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	q := url.Values{}
	all, err := listPages[provisionStatus](ctx, c, "/"+api.Version+"/provision-configs", q, fcPaging, "provisionConfigs", 0)
	if err != nil {
		return err
	}
	if *output == "json" {
		return writeIndented(stdout, map[string]any{"provisionConfigs": all})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FUNCTION\tTARGET\tCURRENT\tERROR")
	for _, pc := range all {
		name := pc.FunctionArn[strings.LastIndex(pc.FunctionArn, "/")+1:]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", name, pc.DefaultTarget, pc.Current, pc.CurrentError)
	}
	return tw.Flush()
}
