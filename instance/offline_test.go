package instance

import (
	"context"
	"encoding/json"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"testing"

	"github.com/fcd-dev/fcd/examples/images"
)

// TestInternetAccess: an instance of a function with internetAccess false
// (Spec.Offline) reaches nothing beyond the bridge, while one with it
// reaches the outside world; fcd still reaches both (every check goes
// through the instance's own server). The address leaves the offline set
// when the instance stops. "The outside world" is an address in a
// namespace the test makes (newOutside).
func TestInternetAccess(t *testing.T) {
	e := setup(t)
	out := newOutside(t)
	target := net.JoinHostPort(outsideAddr, out.port)

	connect := func(inst *Instance) probeResult {
		t.Helper()
		var got probeResult
		if err := json.Unmarshal(get(t, "http://"+inst.Addr()+"/connect?addr="+url.QueryEscape(target)), &got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	online := start(t, e, Spec{Function: "net-online", Image: e.refs[images.Probe], MemoryMB: 128})
	offline := start(t, e, Spec{Function: "net-offline", Image: e.refs[images.Probe], MemoryMB: 128, Offline: true})
	if got := connect(online); !got.OK {
		t.Errorf("connect %s from an instance with internet access: %s, want reachable", target, got.Error)
	}
	got := connect(offline)
	t.Logf("connect %s from an instance without internet access: %+v", target, got)
	if got.OK {
		t.Errorf("connect %s from an instance without internet access: reachable, want refused", target)
	}

	addr, _, _ := strings.Cut(offline.Addr(), ":")
	if set := offlineSet(t, e); !set[addr] || len(set) != 1 {
		t.Errorf("offline set: got %v while the offline instance %s runs, want it alone", set, addr)
	}
	if err := offline.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if set := offlineSet(t, e); len(set) != 0 {
		t.Errorf("offline set: got %v after the offline instance %s stopped, want it empty", set, addr)
	}
}

// offlineSet returns the elements of the firewall's offline4 set.
func offlineSet(t *testing.T, e *env) map[string]bool {
	t.Helper()
	b, err := exec.Command("nft", "list", "set", "inet", "fcd-"+e.mgr.opts.Name, "offline4").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list set: %v: %s", err, b)
	}
	set := map[string]bool{}
	_, elems, ok := strings.Cut(string(b), "elements = {")
	if !ok {
		return set
	}
	elems, _, _ = strings.Cut(elems, "}")
	for _, a := range strings.Split(elems, ",") {
		if a = strings.TrimSpace(a); a != "" {
			set[a] = true
		}
	}
	return set
}
