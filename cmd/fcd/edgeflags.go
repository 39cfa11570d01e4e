package main

import (
	"flag"
	"fmt"

	"github.com/fcd-dev/fcd/proxy"
)

// edgeFlags registers the flags bounding what clients can make fcd hold
// (proxy.Limits) and /metrics' authentication; the returned func checks
// and applies them once fs is parsed.
func (cfg *Config) edgeFlags(fs *flag.FlagSet) func() error {
	l := &cfg.Edge
	fs.DurationVar(&l.HeaderTimeout, "header-timeout", proxy.DefaultHeaderTimeout, "how long a client may take to send a request's headers")
	fs.DurationVar(&l.BodyTimeout, "body-timeout", proxy.DefaultBodyTimeout, "how long a client may take to send a request's body")
	fs.DurationVar(&l.KeepAliveTimeout, "keepalive-timeout", proxy.DefaultKeepAliveTimeout, "how long an idle client keep-alive connection stays open")
	fs.DurationVar(&l.WriteTimeout, "write-timeout", proxy.DefaultWriteTimeout, "how long writing a response held whole may take (streamed function responses are bounded by the function's timeout)")
	fs.IntVar(&l.MaxConnsPerIP, "max-conns-per-ip", proxy.DefaultMaxConnsPerIP, "open connections one client address may hold (-1: no cap)")
	fs.IntVar(&l.MaxHeaderBytes, "max-header-size", proxy.DefaultMaxHeaderBytes, "bytes of a request's line and headers")
	budget := fs.Int("body-buffer-budget", proxy.DefaultBodyBudget>>20, "MiB of signed request bodies buffered at once across all requests; past it requests get 429")
	metricsAuth := fs.String("metrics-auth", "none", "authentication of /metrics: none (anyone reaching -listen) or signed (like the API)")
	return func() error {
		switch *metricsAuth {
		case "none":
		case "signed":
			cfg.SignedMetrics = true
		default:
			return fmt.Errorf("-metrics-auth %q: want none or signed", *metricsAuth)
		}
		if *budget <= 0 || l.HeaderTimeout <= 0 || l.BodyTimeout <= 0 || l.KeepAliveTimeout <= 0 || l.WriteTimeout <= 0 || l.MaxHeaderBytes <= 0 || l.MaxConnsPerIP == 0 {
			return fmt.Errorf("-body-buffer-budget, -header-timeout, -body-timeout, -keepalive-timeout, -write-timeout, -max-header-size and -max-conns-per-ip must be positive (-max-conns-per-ip -1: no cap)")
		}
		l.BodyBudget = int64(*budget) << 20
		return nil
	}
}
