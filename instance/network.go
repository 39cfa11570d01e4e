package instance

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	gocni "github.com/containerd/go-cni"
	"golang.org/x/sys/unix"
)

// network gives each instance its own network namespace with a loopback
// interface and one address on fcd's bridge, through the CNI bridge,
// host-local and loopback plugins.
type network struct {
	cni      gocni.CNI
	nsDir    string // per-instance netns directories: nsDir/<instance id>/
	ipamDir  string
	bridge   string
	firewall *firewall
}

// netConfList is the CNI configuration of fcd's bridge network.
func netConfList(name, bridge, subnet, ipamDir string) ([]byte, error) {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       name,
		"plugins": []any{map[string]any{
			"type":        "bridge",
			"bridge":      bridge,
			"isGateway":   true,
			"ipMasq":      true,
			"hairpinMode": true,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  [][]map[string]string{{{"subnet": subnet}}},
				"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
				"dataDir": ipamDir,
			},
		}},
	}
	return json.Marshal(conf)
}

func newNetwork(opts Options) (*network, error) {
	n := &network{
		nsDir:   filepath.Join(runDir(opts.Name), "netns"),
		ipamDir: filepath.Join(opts.DataDir, "cni", "ipam"),
		bridge:  bridgeName(opts.Name),
	}
	n.firewall = newFirewall(opts.Name, n.bridge, opts.DenyOutbound)
	if err := checkSubnet(opts.Subnet, n.bridge); err != nil {
		return nil, err
	}
	conf, err := netConfList(opts.Name, n.bridge, opts.Subnet.String(), n.ipamDir)
	if err != nil {
		return nil, err
	}
	n.cni, err = gocni.New(
		gocni.WithPluginDir([]string{opts.CNIPluginDir}),
		gocni.WithMinNetworkCount(2),
		gocni.WithLoNetwork,
		gocni.WithConfListBytes(conf),
	)
	if err != nil {
		return nil, fmt.Errorf("cni config: %w", err)
	}
	return n, nil
}

// bridgeName is the host interface name of fcd's bridge (at most 15 bytes:
// Options.Name is limited to 12).
func bridgeName(name string) string { return name + "0" }

// attach creates the instance's network namespace and its interfaces and
// returns the namespace path and the instance's address.
func (n *network) attach(ctx context.Context, id string) (_ string, _ netip.Addr, err error) {
	// Before the first address is handed out: no instance is ever
	// unconfined.
	if err := n.firewall.ensure(ctx); err != nil {
		return "", netip.Addr{}, err
	}
	dir := filepath.Join(n.nsDir, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", netip.Addr{}, fmt.Errorf("netns dir: %w", err)
	}
	path := filepath.Join(dir, "net")
	if err := newNetNS(path); err != nil {
		_ = os.RemoveAll(dir)
		return "", netip.Addr{}, fmt.Errorf("create netns: %w", err)
	}
	defer func() {
		if err != nil {
			_ = n.detach(context.WithoutCancel(ctx), id)
		}
	}()
	res, err := n.cni.Setup(ctx, id, path)
	if err != nil {
		return "", netip.Addr{}, fmt.Errorf("cni setup: %w", err)
	}
	for ifname := range res.Interfaces {
		if err := n.isolatePort(ifname); err != nil {
			return "", netip.Addr{}, err
		}
	}
	for ifname, c := range res.Interfaces {
		if ifname == "lo" {
			continue
		}
		for _, ipc := range c.IPConfigs {
			if a, ok := netip.AddrFromSlice(ipc.IP.To4()); ok && c.Sandbox != "" {
				return path, a, nil
			}
		}
	}
	return "", netip.Addr{}, fmt.Errorf("cni setup: no IPv4 address in result")
}

// detach releases the instance's address and removes its namespace. It is
// safe to call for an instance whose network is partly or not set up.
func (n *network) detach(ctx context.Context, id string) error {
	if err := n.firewall.clearOffline(ctx, id); err != nil {
		return err
	}
	dir := filepath.Join(n.nsDir, id)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("netns dir: %w", err)
	}
	var errs []error
	path := ""
	if len(entries) > 0 {
		path = filepath.Join(dir, entries[0].Name())
	}
	if path != "" && !isNetNS(path) {
		// Killed between creating the file and mounting the namespace
		// on it: there is no namespace to clean, and the plugins refuse
		// a path that is not one. CNI DEL without it still releases the
		// address.
		path = ""
	}
	// CNI DEL with the namespace releases the address and the veth; the
	// plugins tolerate a namespace that is already gone.
	if err := n.cni.Remove(ctx, id, path); err != nil {
		errs = append(errs, fmt.Errorf("cni remove: %w", err))
	}
	for _, e := range entries {
		if err := removeNetNS(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, fmt.Errorf("remove netns: %w", err))
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// isolatePort marks ifname isolated when it is a port of fcd's bridge
// (the host end of an instance's veth; the result's other interfaces live
// in the instance's namespace). The bridge forwards nothing between two
// isolated ports (unicast, broadcast or ARP), only between them and the
// bridge itself, so one instance cannot reach another on the link layer
// whatever netfilter sees.
func (n *network) isolatePort(ifname string) error {
	if _, err := os.Stat(filepath.Join("/sys/class/net", n.bridge, "brif", ifname)); err != nil {
		return nil
	}
	p := filepath.Join("/sys/class/net", ifname, "brport", "isolated")
	if err := os.WriteFile(p, []byte("1"), 0); err != nil {
		return fmt.Errorf("isolate bridge port %s: %w", ifname, err)
	}
	return nil
}

// leftovers returns the instance IDs whose namespaces exist.
func (n *network) leftovers() ([]string, error) {
	entries, err := os.ReadDir(n.nsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Name())
	}
	return ids, nil
}

// checkSubnet refuses a subnet that overlaps an IPv4 route of the host
// other than the default route and routes through fcd's own bridge.
func checkSubnet(subnet netip.Prefix, bridge string) error {
	// /proc/net follows the main thread, which may be wedged in an
	// instance's namespace: a goroutine that entered one (newNetNS) ends
	// with its thread locked, and the runtime cannot end the main thread.
	// This thread's own view is the host's.
	runtime.LockOSThread()
	f, err := os.Open("/proc/thread-self/net/route")
	runtime.UnlockOSThread()
	if err != nil {
		return fmt.Errorf("read routes: %w", err)
	}
	defer f.Close()
	routes, err := parseRoutes(bufio.NewScanner(f))
	if err != nil {
		return err
	}
	return checkSubnetRoutes(subnet, bridge, routes)
}

func checkSubnetRoutes(subnet netip.Prefix, bridge string, routes []route) error {
	for _, r := range routes {
		if r.dev == bridge || r.dst.Bits() == 0 {
			continue
		}
		if r.dst.Overlaps(subnet) {
			return fmt.Errorf("%w: %s and %s via %s", ErrSubnetOverlap, subnet, r.dst, r.dev)
		}
	}
	return nil
}

type route struct {
	dev string
	dst netip.Prefix
}

// parseRoutes reads the kernel's /proc/net/route table (hex, host order).
func parseRoutes(s *bufio.Scanner) ([]route, error) {
	var routes []route
	first := true
	for s.Scan() {
		if first {
			first = false
			continue
		}
		fields := strings.Fields(s.Text())
		if len(fields) < 8 {
			continue
		}
		dst, err1 := hexAddr(fields[1])
		mask, err2 := hexAddr(fields[7])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("parse route %q", s.Text())
		}
		ones, _ := net.IPMask(mask.AsSlice()).Size()
		routes = append(routes, route{dev: fields[0], dst: netip.PrefixFrom(dst, ones)})
	}
	return routes, s.Err()
}

func hexAddr(s string) (netip.Addr, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return netip.Addr{}, fmt.Errorf("bad address %q", s)
	}
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], binary.LittleEndian.Uint32(b))
	return netip.AddrFrom4(a), nil
}

// newNetNS creates a network namespace and pins it by bind-mounting it on
// path. The namespace is made on a locked thread that is never unlocked,
// so the runtime discards that thread instead of reusing it in the new
// namespace.
func newNetNS(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		_ = os.Remove(path)
		return err
	}
	return nil
}

// removeNetNS unpins a namespace made by newNetNS and removes path.
func removeNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// close removes fcd's firewall, and its bridge and the netns directory
// once no instance uses them, so a stopped fcd leaves no interface or rule
// behind. A bridge that still has ports belongs to instances of a live
// process and is kept.
func (n *network) close(ctx context.Context) error {
	if err := n.firewall.remove(ctx); err != nil {
		return err
	}
	ports, err := os.ReadDir(filepath.Join("/sys/class/net", n.bridge, "brif"))
	if errors.Is(err, os.ErrNotExist) {
		if err := os.Remove(n.nsDir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	if err != nil || len(ports) > 0 {
		return err
	}
	if out, err := exec.CommandContext(ctx, "ip", "link", "delete", n.bridge).CombinedOutput(); err != nil {
		return fmt.Errorf("delete bridge %s: %v: %s", n.bridge, err, strings.TrimSpace(string(out)))
	}
	if err := os.Remove(n.nsDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// isNetNS reports whether path is a mounted network namespace (nsfs).
func isNetNS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}
