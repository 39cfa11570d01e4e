package instance

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"text/template"
)

// blockedAddrs are never reachable from an instance: link-local (cloud
// metadata at 169.254.169.254, IPv6 neighbours) and the metadata services
// of Alibaba Cloud (100.100.100.200) and AWS over IPv6 (fd00:ec2::254).
var blockedAddrs = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("100.100.100.200/32"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fd00:ec2::254/128"),
}

// firewall is the netfilter ruleset of fcd's bridge: one nftables table of
// the inet family named fcd-<Options.Name>, for packets from the bridge to
// the host or routed beyond it. It is replaced in one nft transaction, so
// a reader never sees half a ruleset, and removed the same way; nothing
// else on the host is touched.
//
// Frames switched between two ports of the bridge never reach an inet
// hook unless br_netfilter is loaded and enabled, and matching the bridge
// in a bridge-family table needs meta ibrname (CONFIG_NFT_BRIDGE_META),
// which kernels may lack. Instance-to-instance traffic is therefore
// stopped on the bridge itself: every instance's port is isolated (see
// isolatePort), and isolated ports forward nothing to each other.
//
// What an instance may do:
//   - reach the outside world through the host's routes (unless
//     denyOutbound, or its function has internetAccess false: see
//     setOffline), masqueraded by the CNI bridge plugin;
//   - answer connections the host opened to it (probes, invocations);
//     nothing routed through the host (another bridge's containers,
//     another machine) may open one;
//   - nothing else: not another instance (isolated ports on the bridge,
//     dropped here when routed back through the host), not the host itself (its bridge
//     gateway or any of its addresses: fcd provides no service, not even
//     DNS, to instances; their resolv.conf is the host's), not the
//     blockedAddrs.
type firewall struct {
	table        string
	bridge       string
	denyOutbound bool

	mu        sync.Mutex
	installed bool
	// offline holds the address of each network namespace (by id) in
	// the offline4 set: those of instances without internet access.
	offline map[string]netip.Addr
}

func newFirewall(name, bridge string, denyOutbound bool) *firewall {
	return &firewall{table: "fcd-" + name, bridge: bridge, denyOutbound: denyOutbound}
}

var rulesetTmpl = template.Must(template.New("ruleset").Parse(`
table inet {{.Table}}
delete table inet {{.Table}}
{{- if .Install}}
table inet {{.Table}} {
	set blocked4 {
		type ipv4_addr; flags interval;
		elements = { {{.Blocked4}} }
	}
	set blocked6 {
		type ipv6_addr; flags interval;
		elements = { {{.Blocked6}} }
	}
	set offline4 {
		type ipv4_addr;
		comment "instances of functions with internetAccess false";
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "{{.Bridge}}" ct state established,related accept comment "replies to the host's own connections"
		iifname "{{.Bridge}}" reject with icmpx admin-prohibited comment "instance to host"
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "{{.Bridge}}" oifname "{{.Bridge}}" drop comment "instance to instance, routed"
		oifname "{{.Bridge}}" ct state established,related accept comment "replies to instances' own connections"
		oifname "{{.Bridge}}" drop comment "into instances from anywhere but the host: other bridges, other hosts"
		iifname "{{.Bridge}}" ip daddr @blocked4 reject with icmpx admin-prohibited comment "link-local and metadata"
		iifname "{{.Bridge}}" ip6 daddr @blocked6 reject with icmpx admin-prohibited comment "link-local and metadata"
		iifname "{{.Bridge}}" ip saddr @offline4 reject with icmpx admin-prohibited comment "internetAccess false"
		{{- if .DenyOutbound}}
		iifname "{{.Bridge}}" reject with icmpx admin-prohibited comment "outbound denied"
		{{- end}}
	}
}
{{- end}}
`))

// ruleset returns the nft script that replaces fcd's tables with the
// current rules (install) or removes them (!install). The add-then-delete
// pair makes removal succeed whether or not the tables exist.
func (f *firewall) ruleset(install bool) string {
	var v4, v6 []string
	for _, p := range blockedAddrs {
		if p.Addr().Is4() {
			v4 = append(v4, p.String())
		} else {
			v6 = append(v6, p.String())
		}
	}
	var b bytes.Buffer
	err := rulesetTmpl.Execute(&b, map[string]any{
		"Table":        f.table,
		"Bridge":       f.bridge,
		"Install":      install,
		"DenyOutbound": f.denyOutbound,
		"Blocked4":     strings.Join(v4, ", "),
		"Blocked6":     strings.Join(v6, ", "),
	})
	if err != nil {
		panic(err) // the template and its data are fixed
	}
	return b.String()
}

// ensure installs the ruleset unless this process already did.
func (f *firewall) ensure(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.installed {
		return nil
	}
	if err := nft(ctx, f.ruleset(true)); err != nil {
		return fmt.Errorf("install firewall: %w", err)
	}
	f.installed = true
	return nil
}

// remove deletes fcd's tables, whichever process installed them. A nil
// firewall (a network that was never set up) has none.
func (f *firewall) remove(ctx context.Context) error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := nft(ctx, f.ruleset(false)); err != nil {
		return fmt.Errorf("remove firewall: %w", err)
	}
	f.installed = false
	f.offline = nil
	return nil
}

// removeUnlessInstalled deletes fcd's tables unless this process
// installed them: the ones an earlier process left.
func (f *firewall) removeUnlessInstalled(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.installed {
		return nil
	}
	if err := nft(ctx, f.ruleset(false)); err != nil {
		return fmt.Errorf("remove firewall: %w", err)
	}
	return nil
}

// nft runs script as one nftables transaction.
func nft(ctx context.Context, script string) error {
	cmd := exec.CommandContext(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
