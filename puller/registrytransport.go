package puller

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/containerd/remotes/docker/config"
	"github.com/containerd/errdefs"
)

// RegistryTransport carries registry requests the way the pullers make
// them under a hosts directory (Options.HostsDir), for a client that talks
// to registries by itself rather than through containerd's resolver: the
// acceleration converter, which uses go-containerregistry.
//
// A request to a host the hosts directory names goes with the settings of
// that host's own server there, the entry that may be pushed to (such a
// client writes to the image's own registry; mirrors serve pulls only):
// its TLS settings (CA, client certificates, skip_verify) and headers;
// HTTPS is refused for a server given as http:// without TLS settings
// (containerd would speak only plain HTTP to it). A request to any other
// host (token servers, redirects, registries the directory does not name)
// goes as without a hosts directory; a _default entry names every host.
// Every request carries the address policy and the silence bounds, as the
// pullers' do. PlainHTTP tells the client which hosts it may speak plain
// HTTP to.
//
// An entry that cannot be read, or whose settings cannot be honoured (its
// server is another host, or serves the API under a path of its own, or
// none of its hosts may be pushed to), fails each request to its host
// with an error wrapping ErrHostsDir that says why. A host's entry is read
// at its first request and kept, with its connections, for the life of
// the RegistryTransport.
type RegistryTransport struct {
	dir   string
	hosts docker.RegistryHosts // nil without a hosts directory
	def   http.RoundTripper

	mu     sync.Mutex
	routes map[string]*route // by host[:port]; nil: not in the directory
}

var _ http.RoundTripper = (*RegistryTransport)(nil)

// route is how requests to one host the hosts directory names are made.
type route struct {
	rt http.RoundTripper
	// plain: the server is given as http://; secure: HTTPS may be tried
	// (both, for an http:// server with TLS settings, which
	// config.ConfigureHosts tries in HTTPS first).
	plain, secure bool
	header        http.Header
}

// NewRegistryTransport returns a RegistryTransport for hostsDir ("" means
// none: loopback registries in plain HTTP, every other in HTTPS) whose
// connections are made as base makes them (nil: http.DefaultTransport)
// and checked by addrs (nil: any address), and whose requests are bounded
// by header and stall as BoundTransport's.
func NewRegistryTransport(hostsDir string, base *http.Transport, addrs *AddressPolicy, header, stall time.Duration) (*RegistryTransport, error) {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	def := base
	if addrs != nil {
		var err error
		if def, err = addrs.Transport(base); err != nil {
			return nil, err
		}
	}
	t := &RegistryTransport{
		dir:    hostsDir,
		def:    BoundTransport(def, header, stall),
		routes: map[string]*route{},
	}
	if hostsDir == "" {
		return t, nil
	}
	bound := func(rt http.RoundTripper) http.RoundTripper { return BoundTransport(rt, header, stall) }
	update := updateClient(t.def, addrs, bound, hostsDir)
	t.hosts = config.ConfigureHosts(context.Background(), config.HostOptions{
		HostDir: config.HostDirFromRoot(hostsDir),
		UpdateClient: func(c *http.Client) error {
			// A host's transport is base with the TLS settings
			// containerd made for it: it proxies and dials as the
			// default one does.
			if tr, ok := c.Transport.(*http.Transport); ok && !plainTLS(tr.TLSClientConfig) {
				own := base.Clone()
				own.TLSClientConfig = tr.TLSClientConfig
				c.Transport = own
			}
			return update(c)
		},
	})
	return t, nil
}

// RoundTrip sends req as its host's entry in the hosts directory says.
func (t *RegistryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r, err := t.route(req.URL.Host)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	if r == nil {
		return t.def.RoundTrip(req)
	}
	if req.URL.Scheme == "https" && !r.secure {
		closeBody(req)
		return nil, fmt.Errorf("registry %s: %w: its server is given as http:// without TLS settings, so HTTPS is not tried", req.URL.Host, ErrHostsDir)
	}
	if len(r.header) > 0 {
		req = req.Clone(req.Context())
		for k, v := range r.header {
			req.Header[k] = append(req.Header[k], v...)
		}
	}
	return r.rt.RoundTrip(req)
}

// PlainHTTP reports whether host (host[:port]) may be spoken to in plain
// HTTP: when the hosts directory names it, whether it gives its server as
// http://; otherwise whether it is on loopback (docker.MatchLocalhost).
func (t *RegistryTransport) PlainHTTP(host string) (bool, error) {
	r, err := t.route(host)
	if err != nil {
		return false, err
	}
	if r == nil {
		return docker.MatchLocalhost(host)
	}
	return r.plain, nil
}

// route returns how to reach host, reading its entry at the first call; nil
// for a host the hosts directory does not name. Errors are not kept: a
// later request reads the entry again.
func (t *RegistryTransport) route(host string) (*route, error) {
	if t.hosts == nil {
		return nil, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if r, ok := t.routes[host]; ok {
		return r, nil
	}
	r, err := t.load(host)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", host, err)
	}
	t.routes[host] = r
	return r, nil
}

// load reads host's entry in the hosts directory.
func (t *RegistryTransport) load(host string) (*route, error) {
	dir, err := config.HostDirFromRoot(t.dir)(host)
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHostsDir, err)
	}
	hosts, err := t.hosts(host)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrHostsDir, dir, err)
	}
	for _, h := range hosts {
		if !h.Capabilities.Has(docker.HostCapabilityPush) {
			continue
		}
		switch {
		case h.Host != host:
			return nil, fmt.Errorf("%w: %s gives %s, another host, as the server pushed to: conversions reach an image's registry under the registry's own name", ErrHostsDir, dir, h.Host)
		case h.Path != "/v2":
			return nil, fmt.Errorf("%w: %s gives its server's API under %s: the converter reaches it under /v2 only", ErrHostsDir, dir, h.Path)
		}
		// config.ConfigureHosts wraps the transport of an http:// server
		// with TLS settings in docker.NewHTTPFallback (HTTPS first, plain
		// HTTP after a TLS error) and names it https; every other
		// transport it hands out is the bounded one updateClient gave.
		_, bounded := h.Client.Transport.(*boundedTransport)
		fallback := !bounded
		return &route{
			rt:     h.Client.Transport,
			plain:  h.Scheme == "http" || fallback,
			secure: h.Scheme == "https",
			header: h.Header,
		}, nil
	}
	return nil, fmt.Errorf("%w: %s gives no host push capability: an accelerated image is pushed to its source's registry", ErrHostsDir, dir)
}

// closeBody closes the body of a request that is not sent, as an
// http.RoundTripper must.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
