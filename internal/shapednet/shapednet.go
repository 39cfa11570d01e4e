// Package shapednet puts a server behind a rate-limited link for
// benchmarks: a network namespace of the caller's own, joined to the host
// by a veth pair whose egress from the namespace is shaped with a `tc tbf`
// qdisc, so a registry listening inside it is reached at a chosen bandwidth
// as a remote registry would be.
//
// Everything it creates carries the name given to New and is removed by
// Close. It needs root and iproute2; traffic stays between the host and the
// namespace it made.
package shapednet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Options configure a Link. The zero value of each field means its default.
type Options struct {
	// Name names the namespace (fcd-<Name>) and the host end of the veth
	// pair (<Name>h, at most 15 bytes). Required, at most 12 bytes.
	Name string
	// Prefix is the /30 the pair is addressed from: the host end gets the
	// first address, the namespace end the second. Zero means
	// 198.18.0.0/30, from the range set aside for benchmarks (RFC 2544),
	// which clients that refuse private addresses (token realms, say)
	// still accept.
	Prefix netip.Prefix
	// RateMbit limits traffic leaving the namespace (what a registry
	// inside sends); 0 means unlimited.
	RateMbit int
}

// Link is a network namespace behind a shaped veth pair.
type Link struct {
	opts   Options
	netns  string
	host   netip.Addr
	remote netip.Addr
}

// New creates the namespace, the veth pair and the qdisc. On error nothing
// is left behind.
func New(opts Options) (_ *Link, err error) {
	if opts.Name == "" || len(opts.Name) > 12 {
		return nil, errors.New("shapednet: Options.Name must be 1-12 bytes")
	}
	if !opts.Prefix.IsValid() {
		opts.Prefix = netip.MustParsePrefix("198.18.0.0/30")
	}
	if opts.Prefix.Bits() != 30 || !opts.Prefix.Addr().Is4() {
		return nil, fmt.Errorf("shapednet: prefix %s is not an IPv4 /30", opts.Prefix)
	}
	base := opts.Prefix.Masked().Addr()
	l := &Link{opts: opts, netns: "fcd-" + opts.Name, host: base.Next(), remote: base.Next().Next()}
	hostIf, nsIf := opts.Name+"h", opts.Name+"n"
	// A previous run that died leaves these behind; they are ours by name.
	_ = ip("netns", "del", l.netns)
	_ = ip("link", "del", hostIf)
	defer func() {
		if err != nil {
			_ = l.Close()
		}
	}()
	steps := [][]string{
		{"netns", "add", l.netns},
		{"link", "add", hostIf, "type", "veth", "peer", "name", nsIf},
		{"link", "set", nsIf, "netns", l.netns},
		{"addr", "add", fmt.Sprintf("%s/30", l.host), "dev", hostIf},
		{"link", "set", hostIf, "up"},
		{"-n", l.netns, "addr", "add", fmt.Sprintf("%s/30", l.remote), "dev", nsIf},
		{"-n", l.netns, "link", "set", nsIf, "up"},
		{"-n", l.netns, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return nil, err
		}
	}
	if opts.RateMbit > 0 {
		if err := l.SetRate(opts.RateMbit); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// SetRate replaces the limit on traffic leaving the namespace. The burst
// is 1 ms worth of bytes (at least 32 KiB), as a real link's queue would
// let through; 0 removes the limit.
func (l *Link) SetRate(mbit int) error {
	nsIf := l.opts.Name + "n"
	_ = run("ip", "netns", "exec", l.netns, "tc", "qdisc", "del", "dev", nsIf, "root")
	if mbit <= 0 {
		return nil
	}
	burst := max(mbit*1000*1000/8/1000, 32<<10)
	return run("ip", "netns", "exec", l.netns, "tc", "qdisc", "add", "dev", nsIf, "root",
		"tbf", "rate", fmt.Sprintf("%dmbit", mbit), "burst", fmt.Sprint(burst), "latency", "50ms")
}

// RemoteAddr is the namespace's address, where servers started by Listen
// are reached from the host.
func (l *Link) RemoteAddr() netip.Addr { return l.remote }

// Listen opens a TCP listener inside the namespace on port (0 picks one).
// The socket stays in the namespace; it can be served from any goroutine.
func (l *Link) Listen(port int) (net.Listener, error) {
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer self.Close()
	target, err := os.Open("/run/netns/" + l.netns)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter %s: %w", l.netns, err)
	}
	ln, lerr := net.Listen("tcp", netip.AddrPortFrom(l.remote, uint16(port)).String())
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread is stuck in the namespace: leave it locked, so the
		// runtime ends it with this goroutine instead of reusing it.
		if ln != nil {
			ln.Close()
		}
		return nil, fmt.Errorf("leave %s: %w", l.netns, err)
	}
	runtime.UnlockOSThread()
	return ln, lerr
}

// Close removes the namespace and the veth pair (deleting one end removes
// the other).
func (l *Link) Close() error {
	var errs []error
	if err := ip("netns", "del", l.netns); err != nil && !strings.Contains(err.Error(), "No such file") {
		errs = append(errs, err)
	}
	_ = ip("link", "del", l.opts.Name+"h")
	return errors.Join(errs...)
}

func ip(args ...string) error { return run("ip", args...) }

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
