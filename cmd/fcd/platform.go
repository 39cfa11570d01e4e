package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/billing"
	"github.com/fcd-dev/fcd/iam"
	"github.com/fcd-dev/fcd/proxy"
	"github.com/fcd-dev/fcd/registry"
	"github.com/fcd-dev/fcd/store"
)

// platform is what fcd provides around instances: roles and their
// temporary credentials (an STS endpoint, embedded unless configured), the
// embedded registry, and the billing ledger.
type platform struct {
	// logins are user names and passwords for registries other than the
	// embedded one, by host, from --registry-credentials.
	logins   map[string]registryLogin
	roles    *iam.Store
	provider *iam.Provider
	registry *registry.Registry // nil when disabled
	ledger   *billing.Ledger
	recorder *billing.Recorder
}

// startPlatform opens the role store and ledger in st's file and starts
// the STS issuer (on g) and the registry on regLn (nil: none), which
// calls onPush for tags pushed to it. The caller closes it.
func startPlatform(ctx context.Context, g *errgroup.Group, cfg Config, creds api.Credentials, st *store.Store, regLn net.Listener, onPush func(context.Context, registry.PushEvent), log *slog.Logger) (_ *platform, err error) {
	p := &platform{}
	if cfg.RegistryCredentials != "" {
		if p.logins, err = loadRegistryLogins(cfg.RegistryCredentials); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			p.close(context.WithoutCancel(ctx))
		}
	}()
	if p.roles, err = iam.Open(st.DB(), iam.Options{AccountID: cfg.AccountID}); err != nil {
		return nil, err
	}
	if p.ledger, err = billing.Open(st.DB()); err != nil {
		return nil, err
	}
	p.recorder = billing.NewRecorder(p.ledger, log.With("component", "billing"))

	endpoint := cfg.STSEndpoint
	if endpoint == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("sts listener: %w", err)
		}
		issuer := iam.NewIssuer(p.roles, iam.IssuerOptions{
			Keys:   map[string]string{creds.AccessKeyID: creds.AccessKeySecret},
			Logger: log.With("component", "sts"),
		})
		srv := &http.Server{Handler: issuer, ReadHeaderTimeout: 10 * time.Second}
		g.Go(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("sts: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			return srv.Close()
		})
		endpoint = "http://" + ln.Addr().String()
	}
	p.provider, err = iam.NewProvider(iam.ProviderOptions{
		Endpoint:        endpoint,
		AccessKeyID:     creds.AccessKeyID,
		SecretAccessKey: creds.AccessKeySecret,
	})
	if err != nil {
		return nil, err
	}
	if regLn != nil {
		p.registry, err = registry.Start(ctx, registry.Options{
			Dir:                  filepath.Join(cfg.DataDir, "registry"),
			Listener:             regLn,
			AdminAccessKeyID:     creds.AccessKeyID,
			AdminAccessKeySecret: creds.AccessKeySecret,
			Roles:                p.roles,
			OnPush:               onPush,
			Logger:               log.With("component", "registry"),
		})
		if err != nil {
			return nil, fmt.Errorf("embedded registry: %w", err)
		}
	}
	log.Info("platform ready", "sts", endpoint, "registry", cfg.RegistryAddress)
	return p, nil
}

// registryLogin is a user name and password for one registry.
type registryLogin struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// loadRegistryLogins reads a JSON file {"host:port": {"username", "password"}}.
func loadRegistryLogins(path string) (map[string]registryLogin, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registry credentials: %w", err)
	}
	var logins map[string]registryLogin
	if err := json.Unmarshal(data, &logins); err != nil {
		return nil, fmt.Errorf("registry credentials %s: want {\"host:port\": {\"username\": ..., \"password\": ...}}: %w", path, err)
	}
	return logins, nil
}

// registryCredentials returns the pull credentials of a function's
// instances. For the embedded registry they are the function role's
// temporary keys, fetched afresh (from the cache) on every call so a
// retried or long pull never uses expired ones; without a role, pulls
// there are anonymous. Other registries get the login configured for their
// host, else anonymous pulls.
func (p *platform) registryCredentials(role string) func(host string) (string, string, error) {
	embedded := ""
	if p.registry != nil {
		embedded = p.registry.Addr()
	}
	return func(h string) (string, string, error) {
		if h != embedded || role == "" {
			l := p.logins[h]
			return l.Username, l.Password, nil
		}
		// containerd's resolver gives its credentials callback no context;
		// the STS call is bounded here instead.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := p.provider.Retrieve(ctx, role)
		if err != nil {
			return "", "", fmt.Errorf("assume role %s: %w", role, err)
		}
		return c.AccessKeyID, registry.Password(c.SecretAccessKey, c.SessionToken), nil
	}
}

// RoleCredentials implements proxy.RoleCredentials.
func (p *platform) RoleCredentials(ctx context.Context, role string) (id, secret, token string, err error) {
	c, err := p.provider.Retrieve(ctx, role)
	return c.AccessKeyID, c.SecretAccessKey, c.SessionToken, err
}

var _ proxy.RoleCredentials = (*platform)(nil)

func (p *platform) close(ctx context.Context) {
	if p.recorder != nil {
		p.recorder.Close()
	}
	if p.registry != nil {
		p.registry.Close(ctx)
	}
}
