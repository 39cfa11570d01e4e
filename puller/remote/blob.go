package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Credentials returns the login for a registry host. It is called each
// time the fetcher (re-)authenticates, so it may hand out new temporary
// credentials every time.
type Credentials func(host string) (user, secret string, err error)

// Blob reads byte ranges of one registry blob. It is safe for concurrent
// use and cheap; make one per layer and image, or share one.
type Blob struct {
	f      *Fetcher
	domain string // registry name, as in the reference
	repo   string // repository path
	desc   ocispec.Descriptor
	hosts  []docker.RegistryHost
	creds  Credentials

	mu   sync.Mutex
	host int // index in hosts of the host to try next
	auth map[string]*authState

	stats counters
}

// Blob returns a reader of the blob desc (digest and size are required)
// of the repository named by ref ("registry/repo[:tag|@digest]", as
// distribution/reference parses it; the tag or digest is ignored).
//
// hosts configures the registry the containerd way (docker.ConfigureDefaultRegistries
// or config.ConfigureHosts from a hosts directory): its hosts with the pull
// capability are tried in order, a failing one giving way to the next, each
// with its Client, Scheme, Path and Header. With creds, the Blob authenticates
// with containerd's docker authorizer fed by creds, and after a 401 or 403
// discards its tokens and authenticates again with whatever creds returns
// then. Without creds, each host's own Authorizer is used (nil: anonymous);
// it is asked to handle a 401, but a token that expires with the
// credentials behind it cannot be renewed that way.
func (f *Fetcher) Blob(ref string, desc ocispec.Descriptor, hosts docker.RegistryHosts, creds Credentials) (*Blob, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, fmt.Errorf("remote: blob of %q: %w", ref, err)
	}
	if err := desc.Digest.Validate(); err != nil || desc.Digest.Algorithm() != digest.SHA256 {
		return nil, fmt.Errorf("remote: blob %q of %s: want a sha256 digest: %w", desc.Digest, ref, errdefs.ErrInvalidArgument)
	}
	if desc.Size <= 0 {
		return nil, fmt.Errorf("remote: blob %s of %s: size %d: %w", desc.Digest, ref, desc.Size, errdefs.ErrInvalidArgument)
	}
	domain := reference.Domain(named)
	all, err := hosts(domain)
	if err != nil {
		return nil, fmt.Errorf("remote: hosts of %s: %w", domain, err)
	}
	b := &Blob{f: f, domain: domain, repo: reference.Path(named), desc: desc, creds: creds, auth: make(map[string]*authState)}
	for _, h := range all {
		if h.Capabilities.Has(docker.HostCapabilityPull) {
			if h.Client == nil {
				h.Client = http.DefaultClient
			}
			b.hosts = append(b.hosts, h)
		}
	}
	if len(b.hosts) == 0 {
		return nil, fmt.Errorf("remote: no host to pull %s from: %w", domain, errdefs.ErrNotFound)
	}
	return b, nil
}

// Descriptor returns the blob's descriptor.
func (b *Blob) Descriptor() ocispec.Descriptor { return b.desc }

// Stats returns this Blob's counters. CacheBytes > 0 with NetworkBytes
// == 0 means every read was served from the cache.
func (b *Blob) Stats() Stats { return b.stats.snapshot() }

// ReadChunk returns the n bytes of the blob at off. When want is set the
// bytes are checked against it (sha256) before they are returned, served
// from memory (Options.HoldBytes) or the cache if they hold want and
// stored into them otherwise; a
// mismatch is ErrDigestMismatch and nothing is stored. The read waits in
// the registry's queue at priority prio; concurrent reads of the same
// bytes share one request, and adjacent pending reads share one GET
// (close ones too, with Options.MaxGap).
// Cancelling ctx abandons the read and returns ctx's error; its request
// is stopped too if no other read waits on it, unless the request is
// already out and, with a Cache, carries verified chunks: the registry
// sends them anyway, so they are received and kept for the next read.
// Errors are *FetchError.
//
// The returned slice may be shared with concurrent readers of the same
// bytes: do not modify it.
func (b *Blob) ReadChunk(ctx context.Context, off, n int64, want digest.Digest, prio Priority) ([]byte, error) {
	if err := b.checkRange(off, n); err != nil {
		return nil, err
	}
	for {
		// Counted before the look: the join tells whether a chunk was
		// kept between the look and the join, which may be this one.
		kept := b.f.kept.Load()
		data, ok, err := b.local(ctx, n, want)
		if err != nil {
			return nil, b.wrap(off, n, err)
		}
		if ok {
			return data, nil
		}
		if testHookMissed != nil {
			testHookMissed(want)
		}
		data, err = b.f.fetch(ctx, b, off, n, want, prio, kept)
		switch {
		case errors.Is(err, errLookAgain):
			continue
		case err != nil:
			return nil, b.wrap(off, n, err)
		}
		return data, nil
	}
}

// testHookMissed, when set by a test, runs between ReadChunk's look for
// a chunk and its join.
var testHookMissed func(want digest.Digest)

// local returns the n bytes of chunk want from memory (Options.HoldBytes)
// or the cache; false when neither holds them (always, without want).
func (b *Blob) local(ctx context.Context, n int64, want digest.Digest) ([]byte, bool, error) {
	if want != "" && b.f.held != nil {
		if data, ok := b.f.held.get(want); ok && int64(len(data)) == n {
			b.count(func(c *counters) *atomicInt { return &c.cache }, n)
			return data, true, nil
		}
	}
	if want == "" || b.f.cache == nil {
		return nil, false, nil
	}
	data, err := b.f.cache.Get(ctx, want)
	switch {
	case err == nil && int64(len(data)) == n:
		b.count(func(c *counters) *atomicInt { return &c.cache }, n)
		return data, true, nil
	case err == nil:
		b.f.log.Warn("remote: cached chunk has the wrong size", "digest", want, "size", len(data), "want", n)
	case !errdefs.IsNotFound(err):
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		b.f.log.Warn("remote: read cached chunk", "digest", want, "error", err)
	}
	return nil, false, nil
}

// ReadRange returns the n bytes of the blob at off, neither verified nor
// cached (for a TOC or footer, which is verified another way). It queues
// and shares like ReadChunk.
func (b *Blob) ReadRange(ctx context.Context, off, n int64, prio Priority) ([]byte, error) {
	return b.ReadChunk(ctx, off, n, "", prio)
}

func (b *Blob) checkRange(off, n int64) error {
	if off < 0 || n <= 0 || off > b.desc.Size-n {
		return b.wrap(off, n, fmt.Errorf("range outside the blob (%d bytes): %w", b.desc.Size, errdefs.ErrInvalidArgument))
	}
	return nil
}

func (b *Blob) wrap(off, n int64, err error) error {
	var fe *FetchError
	if errors.As(err, &fe) {
		return err
	}
	return &FetchError{Registry: b.domain, Repo: b.repo, Digest: b.desc.Digest, Off: off, N: n, Err: err}
}

// nextHost returns the host to try and its breaker.
func (b *Blob) nextHost() (*docker.RegistryHost, *breaker) {
	b.mu.Lock()
	h := &b.hosts[b.host%len(b.hosts)]
	b.mu.Unlock()
	return h, b.f.breaker(h.Host)
}

// failHost moves on to the next host after h failed.
func (b *Blob) failHost(h *docker.RegistryHost) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if &b.hosts[b.host%len(b.hosts)] == h {
		b.host++
	}
}
