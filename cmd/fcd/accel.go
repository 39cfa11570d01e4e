package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/puller"
	"github.com/fcd-dev/fcd/puller/accel"
	"github.com/fcd-dev/fcd/puller/lazy"
	"github.com/fcd-dev/fcd/registry"
	"github.com/fcd-dev/fcd/store"
	"github.com/opencontainers/go-digest"
)

// newAccelerator builds the image converter and its job service on st's
// bbolt file. The converter authenticates with the admin key to the
// embedded registry and with the configured logins elsewhere, once plat
// is set, reaches each registry as -registry-hosts-dir says, connects
// only where addrs allows (nil: anywhere) and gives a registry
// -registry-timeout to answer; Run the service to convert.
func newAccelerator(cfg Config, creds api.Credentials, st *store.Store, plat *atomic.Pointer[platform], addrs *puller.AddressPolicy, log *slog.Logger) (*accel.Service, error) {
	tmp := filepath.Join(cfg.DataDir, "accel")
	// Files left by a conversion an earlier run did not finish.
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("acceleration temp dir: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("acceleration temp dir: %w", err)
	}
	records, err := lazy.OpenRecords(st.DB())
	if err != nil {
		return nil, err
	}
	// A silent registry fails a conversion, and the look-up of a cold
	// start (starter.image), as it fails a pull.
	transport, err := puller.NewRegistryTransport(cfg.RegistryHostsDir, nil, addrs, cfg.RegistryTimeout, cfg.RegistryTimeout)
	if err != nil {
		return nil, err
	}
	conv := accel.NewConverter(accel.Options{
		Transport: transport,
		PlainHTTP: transport.PlainHTTP,
		Records:   records,
		Credentials: func(host string) (string, string, error) {
			p := plat.Load()
			if p == nil {
				return "", "", nil
			}
			if p.registry != nil && host == p.registry.Addr() {
				return creds.AccessKeyID, creds.AccessKeySecret, nil
			}
			l := p.logins[host]
			return l.Username, l.Password, nil
		},
		TempDir: tmp,
		Logger:  log.With("component", "accel"),
	})
	var c accel.Converts = conv
	if cfg.wrapConverter != nil {
		c = cfg.wrapConverter(c)
	}
	return accel.NewService(st.DB(), c, accel.ServiceOptions{
		RebakeDelay: cfg.AccelRebakeDelay,
		Logger:      log.With("component", "accel"),
	})
}

// rebakeOnRecord asks svc to bake each new start-up record into its
// image's full-mode accelerated form (accel.Service.Rebake).
func rebakeOnRecord(ctx context.Context, svc *accel.Service, log *slog.Logger) func(lazy.Record) {
	return func(rec lazy.Record) {
		if _, err := svc.Rebake(ctx, rec.Source.String()); err != nil {
			log.Warn("schedule acceleration with the start-up record", "source", rec.Source, "error", err)
		}
	}
}

// onPush records a conversion for a tag pushed to the embedded registry
// when its repository has acceleration enabled.
func onPush(svc *accel.Service, log *slog.Logger) func(context.Context, registry.PushEvent) {
	return func(ctx context.Context, ev registry.PushEvent) {
		digest := ev.Digest
		if strings.Contains(ev.MediaType, "index") || strings.Contains(ev.MediaType, "list") {
			// The job is for the linux/amd64 manifest: resolve it.
			digest = ""
		}
		if _, err := svc.OnPush(ctx, ev.Repository, ev.Tag, digest); err != nil {
			log.Warn("acceleration on push", "repository", ev.Repository, "tag", ev.Tag, "error", err)
		}
	}
}

// image returns the image an instance of f runs: for accelerationType
// Default, the original when it is already unpacked on this host (a free
// cache hit, and the fastest start), else the accelerated image once its
// conversion is Ready (named by
// its _accelerated tag, so the lazy puller mounts it; an index-only
// artifact only when lazy pulls are on, since it cannot be pulled whole),
// else the original, digest-pinned; the image as given when that cannot
// be resolved (the pull then reports why, with the function's own
// credentials). A registry that did not answer the look-up in time, or
// whose address is refused, fails the start at once: the pull would only
// wait for it again.
func (s *starter) image(ctx context.Context, f *api.Function, image string) (string, error) {
	cc := f.CustomContainerConfig
	if s.accel == nil || cc == nil || cc.AccelerationType != api.AccelerationDefault {
		return image, nil
	}
	r, err := s.accel.Resolve(ctx, image)
	if errors.Is(err, puller.ErrRegistryTimeout) || errors.Is(err, puller.ErrAddressRefused) {
		return "", fmt.Errorf("look up %s: %w", image, err)
	}
	if err != nil {
		s.log.Debug("resolve accelerated image", "image", image, "error", err)
		return image, nil
	}
	switch {
	case r.Accelerated && s.local != nil && s.local(ctx, digestOf(r.Source)):
		// Already unpacked here: the original starts at once, for free.
		return r.Source, nil
	case r.Lazy != "" && (r.Mode == accel.ModeFull || s.lazy):
		return r.Lazy, nil
	case r.Mode == accel.ModeFull:
		return r.Ref, nil
	default:
		return r.Source, nil
	}
}

// digestOf returns the digest a pinned reference ends with.
func digestOf(pinned string) digest.Digest {
	if i := strings.LastIndexByte(pinned, '@'); i >= 0 {
		return digest.Digest(pinned[i+1:])
	}
	return ""
}
