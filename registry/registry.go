package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"

	// Register the token access controller and the filesystem driver
	// with distribution's factories.
	_ "github.com/distribution/distribution/v3/registry/auth/token"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// Defaults for Options.
const (
	DefaultAddr     = "127.0.0.1:0"
	DefaultService  = "fcd-registry"
	DefaultIssuer   = "fcd"
	DefaultTokenTTL = 5 * time.Minute
)

// Options configure Start.
type Options struct {
	// Dir holds the registry's blobs and token signing key (see the
	// package comment). Created if missing. Required.
	Dir string
	// Addr is the listen address. Zero means DefaultAddr, an ephemeral
	// loopback port; a daemon should pass a fixed one (e.g.
	// 127.0.0.1:5000) because image references name it.
	Addr string
	// Listener, when set, is served instead of listening on Addr (a
	// benchmark passes one opened inside a network namespace). Close
	// closes it.
	Listener net.Listener
	// AdminAccessKeyID and AdminAccessKeySecret are the key pair granted
	// push and pull on every repository. Required.
	AdminAccessKeyID, AdminAccessKeySecret string
	// Roles verifies temporary credentials. Nil means only the admin key
	// is accepted.
	Roles RoleVerifier
	// TokenTTL is the lifetime of issued bearer tokens. Zero means
	// DefaultTokenTTL. (distribution accepts a token up to a minute past
	// its expiry, its clock-skew leeway.)
	TokenTTL time.Duration
	// Service and Issuer name the registry (the token audience) and the
	// token issuer. Zero means DefaultService and DefaultIssuer.
	Service, Issuer string
	// Now is the token endpoint's clock. Nil means time.Now.
	Now func() time.Time
	// OnPush, when set, is called for every manifest pushed by tag,
	// from distribution's notifications (asynchronous, retried while it
	// fails to answer; see notify.go). It should return quickly.
	OnPush func(context.Context, PushEvent)
	// Logger receives refused token requests and serve errors. Nil means
	// silent. (distribution itself logs through logrus's standard
	// logger, which this package does not reconfigure.)
	Logger *slog.Logger
}

// Registry is a running embedded registry. Close stops it.
type Registry struct {
	addr   string
	srv    *http.Server
	app    *handlers.App
	done   chan struct{}
	errMu  sync.Mutex
	srvErr error
}

// Start listens on opts.Addr and serves the registry and its token endpoint
// until Close. ctx bounds only the start; the registry runs until Close.
func Start(ctx context.Context, opts Options) (_ *Registry, err error) {
	if opts.Dir == "" {
		return nil, errors.New("registry: Options.Dir is required")
	}
	if opts.AdminAccessKeyID == "" || opts.AdminAccessKeySecret == "" {
		return nil, errors.New("registry: the admin key pair is required")
	}
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.Service == "" {
		opts.Service = DefaultService
	}
	if opts.Issuer == "" {
		opts.Issuer = DefaultIssuer
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = DefaultTokenTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Join(opts.Dir, "storage"), 0o700); err != nil {
		return nil, fmt.Errorf("registry dir: %w", err)
	}
	key, err := loadOrCreateKey(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("registry token key: %w", err)
	}
	tokens, err := newTokenServer(key, opts)
	if err != nil {
		return nil, err
	}

	ln := opts.Listener
	if ln == nil {
		var lc net.ListenConfig
		if ln, err = lc.Listen(ctx, "tcp", opts.Addr); err != nil {
			return nil, fmt.Errorf("registry listen: %w", err)
		}
	}
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	addr := ln.Addr().String()

	mux := http.NewServeMux()
	var endpoints []configuration.Endpoint
	if opts.OnPush != nil {
		n, err := newNotifier(addr, opts.OnPush, opts.Logger)
		if err != nil {
			return nil, err
		}
		mux.Handle(notifyPath, n)
		endpoints = append(endpoints, n.endpoint())
	}
	app, err := newApp(ctx, opts, addr, endpoints)
	if err != nil {
		return nil, err
	}
	mux.Handle("/token", tokens)
	mux.Handle("/", &blobReader{app: app, root: filepath.Join(opts.Dir, "storage")})
	r := &Registry{
		addr: addr,
		app:  app,
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second},
		done: make(chan struct{}),
	}
	go r.serve(ln, opts.Logger)
	return r, nil
}

func (r *Registry) serve(ln net.Listener, logger *slog.Logger) {
	defer close(r.done)
	err := r.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return
	}
	if logger != nil {
		logger.Error("registry: serve", "error", err)
	}
	r.errMu.Lock()
	r.srvErr = err
	r.errMu.Unlock()
}

// newApp builds distribution's handler, turning its configuration panics
// into an error.
func newApp(ctx context.Context, opts Options, addr string, endpoints []configuration.Endpoint) (app *handlers.App, err error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": filepath.Join(opts.Dir, "storage")},
		},
		Auth: configuration.Auth{
			"token": configuration.Parameters{
				"realm":             "http://" + addr + "/token",
				"service":           opts.Service,
				"issuer":            opts.Issuer,
				"jwks":              filepath.Join(opts.Dir, jwksFile),
				"signingalgorithms": []any{"ES256"},
			},
		},
	}
	cfg.Notifications.Endpoints = endpoints
	cfg.HTTP.Addr = addr
	cfg.HTTP.Secret = hex.EncodeToString(secret)
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("registry: configure distribution: %v", p)
		}
	}()
	return handlers.NewApp(context.WithoutCancel(ctx), cfg), nil
}

// Addr returns the registry's host:port, e.g. 127.0.0.1:5000: the host part
// of image references it serves, and of the token realm
// http://<Addr>/token.
func (r *Registry) Addr() string { return r.addr }

// Close stops accepting requests, waits for those in flight until ctx is
// done, and releases distribution's background work. It returns the serve
// error, if serving failed before Close.
func (r *Registry) Close(ctx context.Context) error {
	err := r.srv.Shutdown(ctx)
	if err != nil {
		r.srv.Close()
	}
	<-r.done
	if aerr := r.app.Shutdown(); err == nil {
		err = aerr
	}
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if err == nil {
		err = r.srvErr
	}
	return err
}
