package puller

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// DefaultRefused are the networks fcd's registry connections may not reach
// unless an exception allows them: the host itself (loopback, and the
// unspecified addresses, which reach it too), link-local networks (cloud
// metadata services live at 169.254.169.254) and multicast. Private
// networks are not among them: self-hosted registries live there.
var DefaultRefused = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("ff00::/8"),
}

// AddressPolicy says which addresses registry connections may reach. An
// image's creator chooses its registry, and the registry chooses the
// token server (its WWW-Authenticate realm), redirects and what its name
// resolves to: each could point fcd, which runs on the host, at a service
// on the host's loopback or at a cloud metadata address. The policy is
// checked on the IP and port each connection is actually made to, in the
// dialer (net.Dialer.Control, before the connection is attempted), so
// that every path to an address is covered, DNS rebinding included.
//
// An IPv4 address and its IPv4-mapped IPv6 form (::ffff:127.0.0.1) are
// the same to the policy: a network given in either form holds both. A
// zone is ignored.
//
// With an HTTP proxy configured (HTTP_PROXY, HTTPS_PROXY), connections
// go to the proxy, and the policy checks the proxy's address only: the
// proxy must refuse these addresses itself.
type AddressPolicy struct {
	// Refused are the networks no connection may reach, unless Allowed
	// or AllowedAddrs make an exception. Empty refuses nothing.
	Refused []netip.Prefix
	// Allowed are networks that may be reached even if Refused holds
	// them.
	Allowed []netip.Prefix
	// AllowedAddrs are single addresses, each at one port, that may be
	// reached even if Refused holds them (an own registry on loopback).
	AllowedAddrs []netip.AddrPort
	// Hint ends the message of each refusal, saying where the rule
	// comes from and how to change it (fcd names its flags); empty adds
	// nothing.
	Hint string
}

// Check returns an *AddressError, which wraps ErrAddressRefused, when the
// policy refuses addr, and nil otherwise.
func (p *AddressPolicy) Check(addr netip.AddrPort) error {
	// An IPv4 address in both its forms; any other in its own twice.
	ip, port := addr.Addr().WithZone("").Unmap(), addr.Port()
	mapped := netip.AddrFrom16(ip.As16())
	for _, a := range p.AllowedAddrs {
		if a.Port() == port && a.Addr().WithZone("").Unmap() == ip {
			return nil
		}
	}
	for _, n := range p.Allowed {
		if n.Contains(ip) || n.Contains(mapped) {
			return nil
		}
	}
	for _, n := range p.Refused {
		if n.Contains(ip) || n.Contains(mapped) {
			return &AddressError{Addr: addr, Network: n, Hint: p.Hint}
		}
	}
	return nil
}

// control is a net.Dialer's Control: it runs before each connection
// attempt with the literal address connected to.
func (p *AddressPolicy) control(network, address string, _ syscall.RawConn) error {
	addr, err := netip.ParseAddrPort(address)
	if err != nil {
		// Not an IP and port: nothing the policy can vouch for.
		return fmt.Errorf("%w: %s %q is not an IP address and port", ErrAddressRefused, network, address)
	}
	return p.Check(addr)
}

// Transport returns a copy of base (http.DefaultTransport when nil) whose
// connections p checks: its DialContext is replaced by a net.Dialer (with
// http.DefaultTransport's timeouts) that checks each address before it
// connects. A base that dials by other means (Dial, DialTLS,
// DialTLSContext) is refused, since its connections could not be checked.
func (p *AddressPolicy) Transport(base *http.Transport) (*http.Transport, error) {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	if base.Dial != nil || base.DialTLS != nil || base.DialTLSContext != nil {
		return nil, errors.New("puller: address policy: the transport dials by itself (Dial, DialTLS or DialTLSContext), so its connections cannot be checked")
	}
	tr := base.Clone()
	tr.DialContext = (&net.Dialer{
		Timeout:   30 * time.Second,
		KeepAlive: 30 * time.Second,
		Control:   p.control,
	}).DialContext
	return tr, nil
}

// AddressError is the error of a connection an AddressPolicy refused. It
// wraps ErrAddressRefused.
type AddressError struct {
	// Addr is the address the connection was to be made to.
	Addr netip.AddrPort
	// Network is the refused network that holds it.
	Network netip.Prefix
	// Hint is AddressPolicy.Hint.
	Hint string
}

func (e *AddressError) Error() string {
	msg := fmt.Sprintf("%v: %s is in %s", ErrAddressRefused, e.Addr, e.Network)
	if e.Hint != "" {
		msg += ", " + e.Hint
	}
	return msg
}

func (e *AddressError) Unwrap() error { return ErrAddressRefused }
