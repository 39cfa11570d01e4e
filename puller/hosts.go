package puller

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"

	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/containerd/remotes/docker/config"
)

// registryHosts tells how to reach each registry host with one caller's
// credentials. Without a hosts directory, registries on loopback are
// spoken to in plain HTTP and every other one in HTTPS. With one, it is
// read the containerd way (the certs.d layout: <dir>/<host>/hosts.toml
// with mirrors, plain-HTTP servers, capabilities, CA and client
// certificates, skip_verify; or bare *.crt/*.cert/*.key files), so fcd
// reaches a mirror or a private registry exactly as containerd's CRI
// would with the same directory. Both the full and the lazy puller use it.
//
// Every client it hands out carries the puller's bounds and address
// policy: requests to a host without TLS settings of its own share the
// puller's client (and its keep-alive connections); a host with its own
// TLS settings gets a client of its own whose transport is bounded and
// checked the same way.
func (p *Puller) registryHosts(creds func(string) (string, string, error)) docker.RegistryHosts {
	if p.opts.HostsDir == "" {
		authOpts := []docker.AuthorizerOpt{docker.WithAuthClient(p.opts.HTTPClient)}
		if creds != nil {
			authOpts = append(authOpts, docker.WithAuthCreds(creds))
		}
		return docker.ConfigureDefaultRegistries(
			docker.WithClient(p.opts.HTTPClient),
			docker.WithPlainHTTP(docker.MatchLocalhost),
			docker.WithAuthorizer(docker.NewDockerAuthorizer(authOpts...)),
		)
	}
	return config.ConfigureHosts(context.Background(), config.HostOptions{
		HostDir:      config.HostDirFromRoot(p.opts.HostsDir),
		Credentials:  creds,
		UpdateClient: updateClient(p.opts.HTTPClient.Transport, p.opts.Addresses, p.bound, p.opts.HostsDir),
	})
}

// RegistryHosts returns how to reach registries with creds, as Prepare
// does; the lazy puller reads blob ranges through the same hosts.
func (p *Puller) RegistryHosts(creds func(string) (string, string, error)) docker.RegistryHosts {
	return p.registryHosts(creds)
}

// updateClient returns the hook through which config.ConfigureHosts
// hands each client it makes for a hosts directory (dir, named in
// errors): a client without TLS settings of its own is given shared, the
// caller's bounded and checked transport, so that its keep-alive
// connections are shared; one with its own TLS settings gets its
// transport checked by addrs (when set) and bounded by bound.
func updateClient(shared http.RoundTripper, addrs *AddressPolicy, bound func(http.RoundTripper) http.RoundTripper, dir string) config.UpdateClientFunc {
	return func(c *http.Client) error {
		tr, ok := c.Transport.(*http.Transport)
		if ok && plainTLS(tr.TLSClientConfig) {
			c.Transport = shared
			return nil
		}
		if addrs != nil {
			if !ok {
				return fmt.Errorf("registry hosts: the %T transport made for %s cannot have its addresses checked", c.Transport, dir)
			}
			gtr, err := addrs.Transport(tr)
			if err != nil {
				return err
			}
			c.Transport = gtr
		}
		c.Transport = bound(c.Transport)
		return nil
	}
}

// plainTLS reports whether c asks for nothing beyond the defaults.
func plainTLS(c *tls.Config) bool {
	return c == nil || (!c.InsecureSkipVerify && c.RootCAs == nil && len(c.Certificates) == 0)
}
