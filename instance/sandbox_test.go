package instance

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fcd-dev/fcd/examples/images"
	"golang.org/x/sys/unix"
)

// Capability bits in /proc/<pid>/status CapEff.
const (
	capNetRaw = 13
	capMknod  = 27
)

// TestSandbox runs the probe example inside a real instance and checks
// what it may do: no NET_RAW or MKNOD, seccomp filtering, no packet
// sockets, no connection to another instance, to the host (through the
// bridge gateway or its own address) or to link-local and metadata
// addresses, while the outside world stays reachable.
func TestSandbox(t *testing.T) {
	e := setup(t)
	out := newOutside(t)

	host, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	go acceptAll(host)
	hostPort := strconv.Itoa(host.Addr().(*net.TCPAddr).Port)

	other := start(t, e, Spec{Function: "sandbox-other", Image: e.refs[images.Echo], MemoryMB: 128})
	probe := start(t, e, Spec{Function: "sandbox-probe", Image: e.refs[images.Probe], MemoryMB: 128})
	base := "http://" + probe.Addr()

	var st struct{ CapEff, Seccomp, NoNewPrivs string }
	if err := json.Unmarshal(get(t, base+"/status"), &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("probe: CapEff %s, Seccomp %s, NoNewPrivs %s", st.CapEff, st.Seccomp, st.NoNewPrivs)
	caps, err := strconv.ParseUint(st.CapEff, 16, 64)
	if err != nil {
		t.Fatalf("CapEff %q: %v", st.CapEff, err)
	}
	for _, c := range []struct {
		name string
		bit  uint
	}{{"CAP_NET_RAW", capNetRaw}, {"CAP_MKNOD", capMknod}} {
		if caps&(1<<c.bit) != 0 {
			t.Errorf("CapEff %s holds %s, want it dropped", st.CapEff, c.name)
		}
	}
	if st.Seccomp != "2" {
		t.Errorf("Seccomp: got %s, want 2 (filter)", st.Seccomp)
	}
	if st.NoNewPrivs != "1" {
		t.Errorf("NoNewPrivs: got %s, want 1", st.NoNewPrivs)
	}

	if got, want := parentPidsMax(t, e.mgr.opts.Name), strconv.Itoa(e.mgr.opts.TotalPids); got != want {
		t.Errorf("pids.max of the instances' parent cgroup: got %s, want %s", got, want)
	}

	var packet probeResult
	if err := json.Unmarshal(get(t, base+"/packet"), &packet); err != nil {
		t.Fatal(err)
	}
	t.Logf("probe: AF_PACKET socket: %+v", packet)
	if packet.OK {
		t.Error("AF_PACKET socket opened, want it refused")
	}

	gateway := e.mgr.opts.Subnet.Addr().Next()
	tests := []struct {
		name  string
		addr  string
		reach bool
	}{
		{"another instance", other.Addr(), false},
		{"host via bridge gateway", net.JoinHostPort(gateway.String(), hostPort), false},
		{"host address", net.JoinHostPort(hostAddr(t, e.mgr.opts.Subnet).String(), hostPort), false},
		{"metadata 169.254.169.254", net.JoinHostPort("169.254.169.254", out.port), false},
		{"metadata 100.100.100.200", net.JoinHostPort("100.100.100.200", out.port), false},
		{"outside world", net.JoinHostPort(outsideAddr, out.port), true},
	}
	t.Run("outside to an instance", func(t *testing.T) {
		// Only the host may open connections to an instance; the outside
		// world has a route to the bridge's subnet through the host.
		err := out.dial(probe.Addr())
		t.Logf("connect %s from the outside: %v", probe.Addr(), err)
		if err == nil {
			t.Errorf("connect %s from the outside: got reachable, want refused", probe.Addr())
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got probeResult
			if err := json.Unmarshal(get(t, base+"/connect?addr="+url.QueryEscape(tt.addr)), &got); err != nil {
				t.Fatal(err)
			}
			t.Logf("connect %s from the instance: %+v", tt.addr, got)
			if got.OK != tt.reach {
				t.Errorf("connect %s: got reachable=%v (%s), want %v", tt.addr, got.OK, got.Error, tt.reach)
			}
		})
	}
}

// parentPidsMax reads pids.max of cgroup /name in the pids hierarchy.
func parentPidsMax(t *testing.T, name string) string {
	t.Helper()
	for _, p := range []string{cgroupRoot + "/pids/" + name + "/pids.max", cgroupRoot + "/" + name + "/pids.max"} {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	t.Fatalf("no pids.max for cgroup /%s", name)
	return ""
}

type probeResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

func acceptAll(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// hostAddr returns an IPv4 address of the host outside subnet.
func hostAddr(t *testing.T, subnet netip.Prefix) netip.Addr {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a.String())
		if err != nil || !p.Addr().Is4() || p.Addr().IsLoopback() || subnet.Contains(p.Addr()) {
			continue
		}
		return p.Addr()
	}
	t.Skip("host has no IPv4 address besides loopback and fcd's bridge")
	return netip.Addr{}
}

// outsideAddr stands for the internet in the outside namespace.
const outsideAddr = "203.0.113.7"

// outside is a network namespace that stands for what lies beyond the
// host: an internet address and the metadata addresses, all served by
// one listener, routed from the host through a veth pair.
type outside struct {
	ns   string // path of the namespace
	port string
}

// dial opens and closes a TCP connection to addr from the namespace.
func (o *outside) dial(addr string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is discarded
		f, err := os.Open(o.ns)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err == nil {
			c.Close()
		}
		errc <- err
	}()
	return <-errc
}

func newOutside(t *testing.T) *outside {
	t.Helper()
	const (
		ns   = testName + "-out"
		veth = testName + "out"
	)
	run := func(args ...string) {
		t.Helper()
		if b, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, b)
		}
	}
	// Left by an interrupted run.
	_ = exec.Command("ip", "netns", "delete", ns).Run()
	_ = exec.Command("ip", "link", "delete", veth).Run()
	run("netns", "add", ns)
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "delete", ns).Run()
		_ = exec.Command("ip", "link", "delete", veth).Run()
	})
	run("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
	run("addr", "add", "198.51.100.1/30", "dev", veth)
	run("link", "set", veth, "up")
	run("-n", ns, "addr", "add", "198.51.100.2/30", "dev", "eth0")
	for _, a := range []string{outsideAddr, "169.254.169.254", "100.100.100.200"} {
		run("-n", ns, "addr", "add", a+"/32", "dev", "lo")
		run("route", "add", a+"/32", "via", "198.51.100.2")
	}
	run("-n", ns, "link", "set", "lo", "up")
	run("-n", ns, "link", "set", "eth0", "up")
	run("-n", ns, "route", "add", "default", "via", "198.51.100.1")

	l, err := listenInNetNS("/run/netns/"+ns, "tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go acceptAll(l)
	return &outside{ns: "/run/netns/" + ns, port: strconv.Itoa(l.Addr().(*net.TCPAddr).Port)}
}

// listenInNetNS opens a listener inside the network namespace at path. The
// socket stays in that namespace; the thread that entered it is locked
// and never unlocked, so the runtime discards it.
func listenInNetNS(path, network, addr string) (net.Listener, error) {
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(path)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("setns %s: %w", path, err)}
			return
		}
		l, err := net.Listen(network, addr)
		ch <- result{l, err}
	}()
	r := <-ch
	return r.l, r.err
}
