package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/fcd-dev/fcd/puller"
)

// registryHint ends the message of a refused registry connection.
const registryHint = "refused by -registry-refuse (-registry-allow makes exceptions)"

// registryAddressFlags registers -registry-refuse and -registry-allow, the
// addresses fcd's registry connections (pulls, lazy reads, conversions)
// may not reach; the returned func checks and applies them once fs is
// parsed.
func (cfg *Config) registryAddressFlags(fs *flag.FlagSet) func() error {
	def := make([]string, len(puller.DefaultRefused))
	for i, p := range puller.DefaultRefused {
		def[i] = p.String()
	}
	refuse := fs.String("registry-refuse", strings.Join(def, ","),
		"comma-separated networks (CIDRs or IPs) fcd never connects to for registry traffic (image pulls, token servers, redirects, conversions), whatever the image names or its name resolves to; by default the host's loopback and unspecified addresses, link-local (cloud metadata) and multicast. Empty: no check. The embedded registry (-registry-address) is always allowed")
	allow := fs.String("registry-allow", "",
		"comma-separated exceptions to -registry-refuse: networks (CIDRs or IPs) or single ip:port addresses, e.g. 127.0.0.1:5001 for a registry on loopback")
	return func() error {
		a := &cfg.RegistryAddresses
		var err error
		if a.Refused, err = parseRefused(*refuse); err != nil {
			return err
		}
		if a.Allowed, a.AllowedAddrs, err = parseAllowed(*allow); err != nil {
			return err
		}
		if len(a.Refused) == 0 && (len(a.Allowed) > 0 || len(a.AllowedAddrs) > 0) {
			return fmt.Errorf("-registry-allow %q: -registry-refuse is empty, so there is nothing to make exceptions to", *allow)
		}
		a.Hint = registryHint
		return nil
	}
}

// parseRefused parses -registry-refuse: comma-separated CIDRs or IPs.
func parseRefused(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range splitList(s) {
		p, err := parseNetwork(item)
		if err != nil {
			return nil, fmt.Errorf("-registry-refuse %q: %w", item, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// parseAllowed parses -registry-allow: comma-separated CIDRs, IPs or
// ip:port addresses.
func parseAllowed(s string) ([]netip.Prefix, []netip.AddrPort, error) {
	var nets []netip.Prefix
	var addrs []netip.AddrPort
	for _, item := range splitList(s) {
		if ap, err := netip.ParseAddrPort(item); err == nil {
			if ap.Port() == 0 {
				return nil, nil, fmt.Errorf("-registry-allow %q: port 0", item)
			}
			addrs = append(addrs, ap)
			continue
		}
		p, err := parseNetwork(item)
		if err != nil {
			if _, ipErr := netip.ParseAddr(item); ipErr != nil && !strings.Contains(item, "/") {
				err = errors.New("want a CIDR, an IP address or an ip:port (names are not resolved)")
			}
			return nil, nil, fmt.Errorf("-registry-allow %q: %w", item, err)
		}
		nets = append(nets, p)
	}
	return nets, addrs, nil
}

// parseNetwork parses a CIDR, or an IP as the network of that address
// alone.
func parseNetwork(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, errors.New("want a CIDR or an IP address (names are not resolved)")
		}
		if ip.Zone() != "" {
			return netip.Prefix{}, errors.New("want an address without a zone")
		}
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("want a CIDR or an IP address: %w", err)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("address bits set past the prefix length (did you mean %s?)", m)
	}
	return p, nil
}

// splitList splits a comma-separated list, dropping spaces and empty
// items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// registryAddresses returns the address policy of fcd's registry
// connections: cfg's, with the embedded registry's listen address allowed
// (nil when it is disabled) and, if that is an unspecified address
// (0.0.0.0, ::), loopback at its port, where clients reach it. It is nil
// when -registry-refuse is empty: any address may be reached.
func registryAddresses(cfg Config, embedded net.Addr) (*puller.AddressPolicy, error) {
	if len(cfg.RegistryAddresses.Refused) == 0 {
		return nil, nil
	}
	p := cfg.RegistryAddresses
	p.AllowedAddrs = append([]netip.AddrPort(nil), p.AllowedAddrs...)
	if embedded != nil {
		ap, err := netip.ParseAddrPort(embedded.String())
		if err != nil {
			return nil, fmt.Errorf("embedded registry address %s: %w", embedded, err)
		}
		p.AllowedAddrs = append(p.AllowedAddrs, ap)
		if ap.Addr().IsUnspecified() {
			p.AllowedAddrs = append(p.AllowedAddrs,
				netip.AddrPortFrom(netip.IPv4Unspecified(), ap.Port()),
				netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port()),
				netip.AddrPortFrom(netip.IPv6Loopback(), ap.Port()))
		}
	}
	return &p, nil
}
