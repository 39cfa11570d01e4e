package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fcd-dev/fcd/api"
)

// functionColdStarts prints a function's last instance starts, one line
// each with every phase's duration in ms, or with -w each as a waterfall:
// every phase's start offset, duration and a bar drawn to scale.
func functionColdStarts(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("function coldstarts", stderr)
	limit := fs.Int("n", 10, "print the last N starts (0: all kept)")
	output := fs.String("o", "", "output format: json")
	wide := fs.Bool("w", false, "print each start as a waterfall: offsets, durations and bars to scale")
	name, err := parseWithName(fs, args)
	if err != nil {
		return err
	}
	q := url.Values{"limit": {fmt.Sprint(*limit)}}
	_, data, err := c.do(ctx, http.MethodGet, "/fcd/v1/coldstarts/"+url.PathEscape(name), q, nil, nil)
	if err != nil {
		return err
	}
	var page api.ColdStartsPage
	if err := json.Unmarshal(data, &page); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	switch {
	case *output == "json":
		return writeIndented(stdout, page)
	case *wide:
		return printWaterfalls(stdout, page.ColdStarts)
	}
	return printColdStarts(stdout, page.ColdStarts)
}

// phaseColumns are the phases of starts in the order they first appear:
// starts of different images (full, lazy) take different steps.
func phaseColumns(starts []api.ColdStart) []string {
	var names []string
	for _, s := range starts {
		prev := -1
		for _, p := range s.Phases {
			if i := slices.Index(names, p.Name); i >= 0 {
				prev = i
				continue
			}
			prev++
			names = slices.Insert(names, prev, p.Name)
		}
	}
	return names
}

// printColdStarts writes one row per start: when, the instance, each
// phase in ms ("-" where a start did not take it), the total, and
// whether the image was local.
func printColdStarts(w io.Writer, starts []api.ColdStart) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	names := phaseColumns(starts)
	header := make([]string, len(names))
	for i, n := range names {
		header[i] = strings.ToUpper(n)
	}
	fmt.Fprintf(tw, "STARTED\tINSTANCE\t%s\tTOTAL\tIMAGE\t\n", strings.Join(header, "\t"))
	for _, s := range starts {
		phases := make([]string, len(names))
		for i, n := range names {
			phases[i] = "-"
			if j := slices.IndexFunc(s.Phases, func(p api.ColdStartPhase) bool { return p.Name == n }); j >= 0 {
				phases[i] = fmt.Sprintf("%.1f", s.Phases[j].Ms)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%s\t\n", s.StartedAt.Local().Format(time.TimeOnly), s.InstanceID,
			strings.Join(phases, "\t"), s.TotalMs, imageNote(s))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(starts) > 0 {
		fmt.Fprintln(w, "(phases and total in ms)")
	}
	return nil
}

func imageNote(s api.ColdStart) string {
	if s.Cached {
		return "local"
	}
	return "pulled " + byteSize(s.FetchedBytes)
}

// waterfallWidth is how many columns a waterfall's bars span.
const waterfallWidth = 50

// printWaterfalls writes each start as a waterfall: one row per phase
// with its start offset and duration in ms and a bar placed to scale on
// the start's time axis (from 0 to its first response, or its total).
func printWaterfalls(w io.Writer, starts []api.ColdStart) error {
	for k, s := range starts {
		if k > 0 {
			fmt.Fprintln(w)
		}
		end := max(s.TotalMs, s.FirstResponseMs)
		for _, p := range s.Phases {
			end = max(end, p.AtMs+p.Ms)
		}
		fmt.Fprintf(w, "%s  instance %s  total %.1f ms", s.StartedAt.Local().Format(time.TimeOnly), s.InstanceID, s.TotalMs)
		if s.FirstResponseMs > 0 {
			fmt.Fprintf(w, "  first response %.1f ms", s.FirstResponseMs)
		}
		fmt.Fprintf(w, "  image %s\n", imageNote(s))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  PHASE\tAT ms\tMS\t\tBYTES\n")
		for _, p := range s.Phases {
			b := ""
			if p.Bytes > 0 {
				b = byteSize(p.Bytes)
			}
			fmt.Fprintf(tw, "  %s\t%.1f\t%.1f\t%s\t%s\n", p.Name, p.AtMs, p.Ms, bar(p.AtMs, p.Ms, end), b)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// bar draws [at, at+d) of a 0..end axis in waterfallWidth columns; a
// phase too short for a column still gets one.
func bar(at, d, end float64) string {
	if end <= 0 {
		return ""
	}
	from := int(at / end * waterfallWidth)
	n := max(1, int((at+d)/end*waterfallWidth+0.5)-from)
	from = min(from, waterfallWidth-1)
	n = min(n, waterfallWidth-from)
	return "|" + strings.Repeat(" ", from) + strings.Repeat("#", n) + strings.Repeat(" ", waterfallWidth-from-n) + "|"
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
