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

	"github.com/fcd-dev/fcd/api"
)

// functionColdStarts prints a function's last instance starts, one line
// each, as a timeline: every phase's duration in ms, in start order.
func functionColdStarts(ctx context.Context, c *client, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("function coldstarts", stderr)
	limit := fs.Int("n", 10, "print the last N starts (0: all kept)")
	output := fs.String("o", "", "output format: json")
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
	if *output == "json" {
		return writeIndented(stdout, page)
	}
	return printColdStarts(stdout, page.ColdStarts)
}

// printColdStarts writes one row per start: when, the instance, each
// phase in ms, the total, and whether the image was local.
func printColdStarts(w io.Writer, starts []api.ColdStart) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	var header []string
	if len(starts) > 0 {
		for _, p := range starts[0].Phases {
			header = append(header, strings.ToUpper(p.Name))
		}
	}
	fmt.Fprintf(tw, "STARTED\tINSTANCE\t%s\tTOTAL\tIMAGE\t\n", strings.Join(header, "\t"))
	for _, s := range starts {
		phases := make([]string, 0, len(s.Phases))
		for _, p := range s.Phases {
			phases = append(phases, fmt.Sprintf("%.1f", p.Ms))
		}
		image := "pulled " + byteSize(s.FetchedBytes)
		if s.Cached {
			image = "local"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%s\t\n", s.StartedAt.Local().Format(time.TimeOnly), s.InstanceID,
			strings.Join(phases, "\t"), s.TotalMs, image)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(starts) > 0 {
		fmt.Fprintln(w, "(phases and total in ms)")
	}
	return nil
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
