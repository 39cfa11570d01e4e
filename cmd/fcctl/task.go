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
	"time"

	"github.com/fcd-dev/fcd/api"
)

const taskUsage = `Usage:
  fcctl task list FUNCTION [--qualifier Q] [--status S] [--prefix P] [--limit N] [--desc] [-o json]
  fcctl task get FUNCTION TASK_ID [--qualifier Q] [-o json]
  fcctl task stop FUNCTION TASK_ID [--qualifier Q]
  (--qualifier: only tasks of that version, alias or LATEST)
`

// runTask serves fcctl task: async tasks (ListAsyncTasks, GetAsyncTask,
// StopAsyncTask).
func runTask(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	verb, args, err := subcommand("task", taskUsage, args, stderr)
	if err != nil {
		return err
	}
	fs := newFlagSet("task "+verb, stderr)
	output := fs.String("o", "", "output format: json")
	status := fs.String("status", "", "list: only tasks in this state (Enqueued, Running, Retrying, Succeeded, Failed, Stopped, Expired, ...)")
	prefix := fs.String("prefix", "", "list: only task ids with this prefix")
	limit := fs.Int("limit", 0, "list: at most N tasks (0: all, page by page)")
	desc := fs.Bool("desc", false, "list: newest first")
	qualifier := fs.String("qualifier", "", "only tasks invoked with this qualifier (a version, an alias or LATEST)")
	want := map[string]int{"list": 1, "ls": 1, "get": 2, "stop": 2}[verb]
	if want == 0 {
		return unknownSubcommand("task", verb, taskUsage, stderr)
	}
	pos, err := parsePositional(fs, args, want)
	if err != nil {
		return err
	}
	base := "/" + api.Version + "/functions/" + url.PathEscape(pos[0]) + "/async-tasks"
	var qq url.Values
	if *qualifier != "" {
		qq = url.Values{"qualifier": {*qualifier}}
	}
	switch verb {
	case "get":
		_, data, err := c.do(ctx, http.MethodGet, base+"/"+url.PathEscape(pos[1]), qq, nil, nil)
		if err != nil {
			return err
		}
		var t api.AsyncTask
		if err := json.Unmarshal(data, &t); err != nil {
			return fmt.Errorf("decode response: %w", err)
		}
		if *output == "json" {
			return writeIndented(stdout, t)
		}
		printTask(stdout, &t)
		return nil
	case "stop":
		if _, _, err := c.do(ctx, http.MethodPut, base+"/"+url.PathEscape(pos[1])+"/stop", qq, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "task %s of %s stopping\n", pos[1], pos[0])
		return nil
	}
	tasks, err := listTasks(ctx, c, base, *qualifier, *status, *prefix, *limit, *desc)
	if err != nil {
		return err
	}
	if *output == "json" {
		return writeIndented(stdout, tasks)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK ID\tQUALIFIER\tSTATUS\tATTEMPTS\tSTARTED\tDURATION\tERROR")
	for _, t := range tasks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", t.TaskID, t.Qualifier, t.Status, t.AlreadyRetriedTimes+1,
			time.UnixMilli(t.StartedTime).UTC().Format(time.RFC3339), time.Duration(t.DurationMs)*time.Millisecond, oneLine(t.TaskErrorMessage))
	}
	return tw.Flush()
}

// listTasks pages through ListAsyncTasks; limit 0 means all.
func listTasks(ctx context.Context, c *client, path, qualifier, status, prefix string, limit int, desc bool) ([]*api.AsyncTask, error) {
	var all []*api.AsyncTask
	next := ""
	for {
		q := url.Values{"limit": {"100"}}
		for k, v := range map[string]string{"qualifier": qualifier, "status": status, "prefix": prefix, "nextToken": next} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if desc {
			q.Set("sortOrderByTime", "desc")
		}
		_, data, err := c.do(ctx, http.MethodGet, path, q, nil, nil)
		if err != nil {
			return nil, err
		}
		var page struct {
			Tasks     []*api.AsyncTask `json:"tasks"`
			NextToken string           `json:"nextToken"`
		}
		if err := json.Unmarshal(data, &page); err != nil {
			return nil, fmt.Errorf("decode response: %w", err)
		}
		all = append(all, page.Tasks...)
		if limit > 0 && len(all) >= limit {
			return all[:limit], nil
		}
		if next = page.NextToken; next == "" {
			return all, nil
		}
	}
}

func printTask(w io.Writer, t *api.AsyncTask) {
	fmt.Fprintf(w, "task:       %s\nrequest id: %s\nqualifier:  %s\nstatus:     %s\nattempts:   %d\n", t.TaskID, t.RequestID, t.Qualifier, t.Status, t.AlreadyRetriedTimes+1)
	if t.InstanceID != "" {
		fmt.Fprintf(w, "instance:   %s\n", t.InstanceID)
	}
	if t.TaskErrorMessage != "" {
		fmt.Fprintf(w, "error:      %s\n", oneLine(t.TaskErrorMessage))
	}
	if t.DestinationStatus != "" {
		fmt.Fprintf(w, "destination: %s\n", t.DestinationStatus)
	}
	fmt.Fprintln(w, "events:")
	for _, e := range t.Events {
		fmt.Fprintf(w, "  %s  %-9s %s\n", time.UnixMilli(e.Timestamp).UTC().Format("2006-01-02T15:04:05.000Z"), e.Status, oneLine(e.EventDetail))
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// parsePositional parses exactly n leading positional arguments and the
// flags after them.
func parsePositional(fs *flag.FlagSet, args []string, n int) ([]string, error) {
	var pos []string
	for len(args) > 0 && len(pos) < n && !strings.HasPrefix(args[0], "-") {
		pos, args = append(pos, args[0]), args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	pos = append(pos, fs.Args()...)
	if len(pos) != n {
		return nil, fmt.Errorf("%w: %s takes %d argument(s), got %d", errUsage, fs.Name(), n, len(pos))
	}
	return pos, nil
}
