package shapednet

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/fcd-dev/fcd/internal/testenv"
)

func TestLink(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "tc", "iproute2")
	l, err := New(Options{Name: "shtest", RateMbit: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
		if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), "fcd-shtest") {
			t.Errorf("namespace left behind: %s", out)
		}
	}()

	out, err := exec.Command("ip", "netns", "exec", "fcd-shtest", "tc", "qdisc", "show", "dev", "shtestn").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "tbf") || !strings.Contains(string(out), "100Mbit") {
		t.Fatalf("qdisc: got %q (%v), want a 100Mbit tbf", out, err)
	}

	ln, err := l.Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 1<<20)
	_, _ = rand.Read(body)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) })}
	go srv.Serve(ln)
	defer srv.Close()

	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("got %d bytes (%v), want the %d served", len(got), err, len(body))
	}
	if !strings.HasPrefix(ln.Addr().String(), l.RemoteAddr().String()+":") {
		t.Errorf("listener at %s, want inside the namespace at %s", ln.Addr(), l.RemoteAddr())
	}
}
