package proxy

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/store"
)

// memLogs is a function log in memory, as the instance manager's
// ReadLogs serves it.
type memLogs struct {
	mu    sync.Mutex
	lines []string
}

func (l *memLogs) ReadLogs(function string, tail int) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if tail > 0 && tail < len(l.lines) {
		return append([]string(nil), l.lines[len(l.lines)-tail:]...), nil
	}
	return append([]string(nil), l.lines...), nil
}

func (l *memLogs) add(line string) {
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
}

// TestFollowLogs reads a function's log stream: the tail first, then the
// lines written while it is open, each once.
func TestFollowLogs(t *testing.T) {
	st, err := store.Open(t.TempDir()+"/fcd.db", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	name, rt, img := "fn", api.RuntimeCustomContainer, "r/i:t"
	f, err := api.NewFunction(&api.Input{FunctionName: &name, Runtime: &rt, CustomContainerConfig: &api.ContainerInput{Image: &img}}, "id", "local", "1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateFunction(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	logs := &memLogs{lines: []string{"old 1", "old 2", "old 3"}}
	addr := testServer(t, Options{Functions: st, Logs: logs})
	s := signIn(t, addr)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/fcd/v1/logs/fn?tail=2", nil)
	for _, c := range s.cookies {
		req.AddCookie(c)
	}
	req.Header.Set(HeaderCSRF, s.csrf)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got %d, want 200", resp.StatusCode)
	}
	lines := bufio.NewScanner(resp.Body)
	next := func() string {
		t.Helper()
		for lines.Scan() {
			if l := lines.Text(); l != "" { // "" is a heartbeat
				return l
			}
		}
		t.Fatalf("stream ended: %v", lines.Err())
		return ""
	}
	var got []string
	got = append(got, next(), next())
	logs.add("new 1")
	logs.add("new 2")
	got = append(got, next(), next())
	if want := "old 2,old 3,new 1,new 2"; strings.Join(got, ",") != want {
		t.Fatalf("got %q, want %q", strings.Join(got, ","), want)
	}
}

// TestStats serves the /metrics registry as JSON, filtered by prefix.
func TestStats(t *testing.T) {
	addr := testServer(t, Options{})
	var page StatsPage
	resp, eb := signedRequest{method: http.MethodGet, path: "/fcd/v1/stats", rawQuery: "prefix=fcd_invocation"}.doBody(t, addr, &page)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got %d %+v, want 200", resp.StatusCode, eb)
	}
	var names []string
	for _, s := range page.Stats {
		if !strings.HasPrefix(s.Name, "fcd_invocation") || s.Type != "counter" || len(s.Samples) != 1 {
			t.Errorf("got %+v, want counters named fcd_invocation* with one sample", s)
		}
		names = append(names, s.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "fcd_invocations_total") {
		t.Fatalf("got %v, want fcd_invocations_total among them", names)
	}
}
