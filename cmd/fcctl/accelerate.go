package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fcd-dev/fcd/proxy"
	"github.com/fcd-dev/fcd/puller/accel"
)

const accelerateUsage = `usage:
  fcctl image accelerate REF [--mode full|index-only] [--prefetch-list FILE] [--detach]
      convert REF (a tag) into REF_accelerated and follow the conversion
  fcctl image status REF|DIGEST [-o json] [--watch]
      the acceleration job of an image
  fcctl image jobs [-o json]
      every acceleration job
  fcctl image repo REPOSITORY [--enabled=true|false] [--mode M] [--prefetch-list FILE] [--webhook URL] [-o json]
      show or change a repository's acceleration setting: when enabled,
      every tag pushed to it (in the embedded registry) is converted

A prefetch list holds absolute paths, one per line ('#' starts a comment);
a path ending in '/' selects its directory and everything under it.
`

// errJobFailed reports an acceleration job that ended Failed.
var errJobFailed = errors.New("acceleration failed")

// pollInterval is how often a followed job is read back.
const pollInterval = 500 * time.Millisecond

func runImageAccelerate(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("image accelerate", stderr)
	mode := fs.String("mode", string(accel.ModeFull), "full or index-only")
	list := fs.String("prefetch-list", "", "file of paths to place first and prefetch (full mode)")
	detach := fs.Bool("detach", false, "print the job and return without following it")
	output := fs.String("o", "", "output format: json")
	ref, err := parseWithName(fs, args)
	if err != nil {
		return err
	}
	in := proxy.AccelerateInput{Image: ref, Mode: accel.Mode(*mode)}
	if *list != "" {
		if in.Prefetch, err = readPrefetchList(*list); err != nil {
			return err
		}
	}
	body, _ := json.Marshal(in)
	_, data, err := c.do(ctx, http.MethodPost, "/fcd/v1/acceleration/jobs", nil, body, nil)
	if err != nil {
		return err
	}
	var job accel.Job
	if err := json.Unmarshal(data, &job); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	if *detach {
		return printJob(stdout, job, *output)
	}
	if job, err = followJob(ctx, c, job.Key(), stdout); err != nil {
		return err
	}
	return finish(stdout, job, *output)
}

func runImageStatus(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("image status", stderr)
	output := fs.String("o", "", "output format: json")
	watch := fs.Bool("watch", false, "follow the job until it ends")
	ref, err := parseWithName(fs, args)
	if err != nil {
		return err
	}
	job, err := getJob(ctx, c, ref)
	if err != nil {
		return err
	}
	if *watch && job.State == accel.StatePreparing {
		if job, err = followJob(ctx, c, job.Key(), stdout); err != nil {
			return err
		}
		return finish(stdout, job, *output)
	}
	return printJob(stdout, job, *output)
}

func runImageJobs(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("image jobs", stderr)
	output := fs.String("o", "", "output format: json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	_, data, err := c.do(ctx, http.MethodGet, "/fcd/v1/acceleration/jobs", nil, nil, nil)
	if err != nil {
		return err
	}
	var list proxy.JobList
	if err := json.Unmarshal(data, &list); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	if *output == "json" {
		return writeIndented(stdout, list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tDIGEST\tMODE\tSTATE\tUPDATED")
	for _, j := range list.Jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", j.Ref, short(j.Digest), j.Mode, j.State, j.Updated.Format(time.RFC3339))
	}
	return tw.Flush()
}

func runImageRepo(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("image repo", stderr)
	output := fs.String("o", "", "output format: json")
	enabled := fs.Bool("enabled", false, "convert every tag pushed to the repository")
	mode := fs.String("mode", "", "full or index-only")
	list := fs.String("prefetch-list", "", "file of paths to place first and prefetch (full mode)")
	webhook := fs.String("webhook", "", "URL POSTed a JSON event when a conversion ends (empty: none)")
	repo, err := parseWithName(fs, args)
	if err != nil {
		return err
	}
	path := "/fcd/v1/acceleration/repositories/" + url.PathEscape(repo)
	var set accel.Settings
	_, data, err := c.do(ctx, http.MethodGet, path, nil, nil, nil)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(data, &set); err != nil {
			return fmt.Errorf("decode response: %w", err)
		}
	}
	changed := false
	var ferr error
	fs.Visit(func(f *flag.Flag) {
		changed = changed || f.Name != "o"
		switch f.Name {
		case "enabled":
			set.Enabled = *enabled
		case "mode":
			set.Mode = accel.Mode(*mode)
		case "webhook":
			set.Webhook = *webhook
		case "prefetch-list":
			set.Prefetch, ferr = readPrefetchList(*list)
		}
	})
	if ferr != nil {
		return ferr
	}
	if !changed && err != nil {
		return err
	}
	if changed {
		body, _ := json.Marshal(set)
		if _, data, err = c.do(ctx, http.MethodPut, path, nil, body, nil); err != nil {
			return err
		}
		if err := json.Unmarshal(data, &set); err != nil {
			return fmt.Errorf("decode response: %w", err)
		}
	}
	if *output == "json" {
		return writeIndented(stdout, set)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Repository:\t%s\nEnabled:\t%v\nMode:\t%s\nPrefetch:\t%d paths\nWebhook:\t%s\n",
		set.Repository, set.Enabled, set.Mode, len(set.Prefetch), set.Webhook)
	return tw.Flush()
}

// readPrefetchList reads a prefetch list file: absolute paths, one per
// line, '#' comments and blank lines skipped.
func readPrefetchList(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("prefetch list: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "/") {
			return nil, fmt.Errorf("%w: prefetch list %s line %d: %q is not an absolute path", errUsage, path, n, line)
		}
		out = append(out, line)
	}
	return out, sc.Err()
}

func getJob(ctx context.Context, c *client, ref string) (accel.Job, error) {
	var job accel.Job
	_, data, err := c.do(ctx, http.MethodGet, "/fcd/v1/acceleration/jobs/"+url.PathEscape(ref), nil, nil, nil)
	if err != nil {
		return job, err
	}
	if err := json.Unmarshal(data, &job); err != nil {
		return job, fmt.Errorf("decode response: %w", err)
	}
	return job, nil
}

// followJob reads the job with key (accel.Job.Key: one repository's job
// of a digest) back until it ends, showing its progress: one
// line rewritten in place on a terminal, a line per change otherwise.
func followJob(ctx context.Context, c *client, key string, stdout io.Writer) (accel.Job, error) {
	tty := isTerminal(stdout)
	last := ""
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		job, err := getJob(ctx, c, key)
		if err != nil {
			return job, err
		}
		if line := progressLine(job); line != last {
			if tty {
				fmt.Fprintf(stdout, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(stdout, line)
			}
			last = line
		}
		if job.State != accel.StatePreparing {
			if tty {
				fmt.Fprintln(stdout)
			}
			return job, nil
		}
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(stdout)
			}
			return job, fmt.Errorf("%w; the conversion goes on: fcctl image status %s --watch", ctx.Err(), job.Ref)
		case <-tick.C:
		}
	}
}

// progressLine is a job's progress in one line: layers and bytes done,
// rate and ETA.
func progressLine(j accel.Job) string {
	p := j.Progress
	if j.State == accel.StatePreparing && p.Layers == 0 {
		return fmt.Sprintf("%s: queued", j.Ref)
	}
	line := fmt.Sprintf("%s: %s  layers %d/%d  %s/%s", j.Ref, j.State, p.LayersDone, p.Layers, mb(p.BytesDone), mb(p.Bytes))
	if j.State == accel.StatePreparing && p.BytesPerSecond > 0 {
		line += fmt.Sprintf("  %s/s  ETA %s", mb(int64(p.BytesPerSecond)), p.ETA.Round(time.Second))
	}
	return line
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

// finish prints a followed job's end and fails for a Failed one.
func finish(stdout io.Writer, job accel.Job, output string) error {
	if err := printJob(stdout, job, output); err != nil {
		return err
	}
	if job.State == accel.StateFailed {
		return fmt.Errorf("%w: %s", errJobFailed, job.Error)
	}
	return nil
}

func printJob(stdout io.Writer, j accel.Job, output string) error {
	if output == "json" {
		return writeIndented(stdout, j)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Image:\t%s\nDigest:\t%s\nMode:\t%s\nState:\t%s\n", j.Ref, j.Digest, j.Mode, j.State)
	if j.Error != "" {
		fmt.Fprintf(tw, "Error:\t%s\n", j.Error)
	}
	if r := j.Result; r != nil {
		fmt.Fprintf(tw, "Accelerated:\t%s@%s\n", r.Target, r.TargetDigest)
		if r.SourceSize > 0 {
			fmt.Fprintf(tw, "Size:\t%s (%.1f%% of the original's %s)\n", mb(r.TargetSize), 100*float64(r.TargetSize)/float64(r.SourceSize), mb(r.SourceSize))
		}
		if r.Reused {
			fmt.Fprintf(tw, "Reused:\tyes (made earlier for the same digest)\n")
		}
	}
	fmt.Fprintf(tw, "Attempts:\t%d\nUpdated:\t%s\n", j.Attempts, j.Updated.Format(time.RFC3339))
	return tw.Flush()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
