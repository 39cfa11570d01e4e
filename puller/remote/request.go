package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/remotes/docker"
	remoteerrors "github.com/containerd/containerd/remotes/errors"
	"github.com/containerd/errdefs"
)

// get reads g's range [g.pos, g.end) into its items: single-range GETs,
// each resuming where the last one stopped, retried with exponential
// back-off through transient failures until RetryTimeout passes without
// progress, re-authenticating after a 401 or 403. A GET that ends with
// none of its reads waited for is not sent again.
func (b *Blob) get(g *group) error {
	f := b.f
	ctx := docker.ContextWithAppendPullRepositoryScope(g.ctx, b.repo)
	deadline := time.Now().Add(f.opts.RetryTimeout)
	backoff := f.opts.InitialBackoff
	var lastErr error
	authTries, sent := 0, 0
	for g.pos < g.end {
		if err := g.ctx.Err(); err != nil {
			return err
		}
		h, br := b.nextHost()
		if wait := br.wait(time.Now()); wait > 0 {
			if time.Now().Add(wait).After(deadline) {
				if lastErr == nil {
					lastErr = errors.New("it was failing before this read started")
				}
				return fmt.Errorf("%w: circuit breaker open for %s: %v", ErrUnavailable, h.Host, lastErr)
			}
			if err := sleep(g.ctx, wait); err != nil {
				return err
			}
			continue
		}
		if !f.onWire(g) {
			return context.Canceled // nobody waits for the rest
		}
		if sent++; sent > 1 {
			b.count(func(c *counters) *atomicInt { return &c.retries }, 1)
		}
		before := g.pos
		err := b.attempt(ctx, h, g)
		f.offWire(g)
		if g.pos > before {
			backoff, authTries = f.opts.InitialBackoff, 0
			deadline = time.Now().Add(f.opts.RetryTimeout)
		}
		if cerr := g.ctx.Err(); cerr != nil {
			return cerr
		}
		var ae *authError
		switch {
		case err == nil:
			br.success()
			continue
		case errors.As(err, &ae):
			br.success() // it answered
			if authTries++; authTries > maxAuthRetries {
				return fmt.Errorf("%w: %v (after %d re-authentications)", ErrUnauthorized, ae, maxAuthRetries)
			}
			rerr := b.reauth(ctx, h, ae)
			if rerr == nil {
				continue
			}
			// The credentials source or token endpoint may be down for a
			// moment: back off, within the re-authentication bound.
			if authTries == maxAuthRetries {
				return fmt.Errorf("%w: %v", ErrUnauthorized, rerr)
			}
			err = fmt.Errorf("authenticate: %w", rerr)
		case errors.Is(err, ErrBadResponse):
			br.success()
			return err
		case errdefs.IsPermissionDenied(err):
			// A connection refused by policy (puller.AddressPolicy, e.g.
			// a redirect to loopback): it is refused again on retry.
			return err
		case g.pos > before:
			br.success() // a body broke off: the host is up
		default:
			br.failure(time.Now())
			b.failHost(h)
		}
		lastErr = err
		if time.Now().Add(backoff).After(deadline) {
			return fmt.Errorf("%w: no progress for %v: %v", ErrUnavailable, f.opts.RetryTimeout, lastErr)
		}
		f.log.Debug("remote: retrying", "registry", h.Host, "repo", b.repo, "digest", b.desc.Digest,
			"range", fmt.Sprintf("%d-%d", g.pos, g.end-1), "backoff", backoff, "error", err)
		if err := sleep(g.ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, f.opts.MaxBackoff)
	}
	return nil
}

// authError is a 401 or 403 from the registry (not from a redirect
// target): authenticate again and retry.
type authError struct {
	status int
	resp   *http.Response // headers only (the body is closed); nil if from the token endpoint
	gen    int            // auth generation the request was sent with
	err    error          // the token endpoint's error, if from there
}

func (e *authError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("registry answered %d", e.status)
}

// attempt sends one GET for [g.pos, g.end) and fills g from its body.
func (b *Blob) attempt(ctx context.Context, h *docker.RegistryHost, g *group) error {
	stall := b.f.opts.StallTimeout
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer timer.Stop()

	url := fmt.Sprintf("%s://%s%s/%s/blobs/%s", h.Scheme, h.Host, h.Path, b.repo, b.desc.Digest)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	for k, v := range h.Header {
		req.Header[k] = append([]string(nil), v...)
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", g.pos, g.end-1))
	gen, err := b.authorize(ctx, h, req)
	if err != nil {
		// A token endpoint refusing the login: try new credentials.
		var us remoteerrors.ErrUnexpectedStatus
		if errors.As(err, &us) && (us.StatusCode == http.StatusUnauthorized || us.StatusCode == http.StatusForbidden) {
			return &authError{status: us.StatusCode, gen: gen, err: err}
		}
		return stalled(ctx, fmt.Errorf("authorize: %w", err))
	}
	b.count(func(c *counters) *atomicInt { return &c.requests }, 1)
	sent := time.Now()
	defer func() { b.count(func(c *counters) *atomicInt { return &c.request }, int64(time.Since(sent))) }()
	resp, err := h.Client.Do(req)
	b.count(func(c *counters) *atomicInt { return &c.header }, int64(time.Since(sent)))
	if err != nil {
		return stalled(ctx, err)
	}
	defer resp.Body.Close()
	body := &watchReader{r: resp.Body, timer: timer, stall: stall, b: b}

	redirected := resp.Request != nil && resp.Request.Response != nil
	switch code := resp.StatusCode; {
	case code == http.StatusPartialContent:
		start, last, err := contentRange(resp.Header.Get("Content-Range"))
		if err != nil || start != g.pos || last < start {
			return fmt.Errorf("%w: asked for bytes %d-%d, got Content-Range %q", ErrBadResponse, g.pos, g.end-1, resp.Header.Get("Content-Range"))
		}
		// A registry may answer with fewer bytes than asked; the next
		// attempt asks for the rest.
		return stalled(ctx, g.fill(b.f, body, min(last+1, g.end)))
	case code == http.StatusOK:
		// The registry ignored the range: stream past the bytes before it,
		// never holding more than a copy buffer of them.
		b.count(func(c *counters) *atomicInt { return &c.whole }, 1)
		if resp.ContentLength >= 0 && resp.ContentLength != b.desc.Size {
			return fmt.Errorf("%w: 200 with %d bytes, blob has %d", ErrBadResponse, resp.ContentLength, b.desc.Size)
		}
		if _, err := io.CopyN(io.Discard, body, g.pos); err != nil {
			return stalled(ctx, fmt.Errorf("skip to %d in a whole-blob answer: %w", g.pos, err))
		}
		return stalled(ctx, g.fill(b.f, body, g.end))
	case (code == http.StatusUnauthorized || code == http.StatusForbidden) && !redirected:
		return &authError{status: code, resp: resp, gen: gen}
	case code == http.StatusTooManyRequests || code >= 500 || redirected && code == http.StatusForbidden:
		// Overload, or a signed URL that expired before we used it: retry
		// (a new redirect brings a new URL).
		return fmt.Errorf("%s answered %s", resp.Request.URL.Host, resp.Status)
	default:
		return fmt.Errorf("%w: %s answered %s", ErrBadResponse, resp.Request.URL.Host, resp.Status)
	}
}

// stalled names the stall timeout as the cause of an error it provoked.
func stalled(ctx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), errStalled) {
		return fmt.Errorf("%w: %v", errStalled, err)
	}
	return err
}

// contentRange parses "bytes first-last/size" (size may be "*").
func contentRange(s string) (first, last int64, err error) {
	r, ok := strings.CutPrefix(s, "bytes ")
	r, _, ok2 := strings.Cut(r, "/")
	a, z, ok3 := strings.Cut(r, "-")
	if !ok || !ok2 || !ok3 {
		return 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	if first, err = strconv.ParseInt(a, 10, 64); err == nil {
		last, err = strconv.ParseInt(z, 10, 64)
	}
	return first, last, err
}

// watchReader counts body bytes and pushes the stall timer back on every
// read that makes progress.
type watchReader struct {
	r     io.Reader
	timer *time.Timer
	stall time.Duration
	b     *Blob
}

func (w *watchReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if n > 0 {
		w.timer.Reset(w.stall)
		w.b.count(func(c *counters) *atomicInt { return &c.network }, int64(n))
	}
	return n, err
}

// authState is one host's authentication for a Blob with Credentials: a
// containerd docker authorizer, replaced by a fresh one (new credentials,
// new tokens) after each 401 or 403. gen counts replacements, so that
// concurrent failures of one generation re-authenticate once.
type authState struct {
	mu        sync.Mutex
	gen       int
	az        docker.Authorizer
	challenge *http.Response // the host's last WWW-Authenticate answer

	// call serializes calls into the authorizer: containerd 1.7's bearer
	// handler races with itself when one scope's token is fetched while
	// another call reads it (authorizer.go, doBearerAuth's expirationTime).
	// Taken after mu, never before.
	call sync.Mutex
}

func (b *Blob) authState(host string) *authState {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.auth[host]
	if !ok {
		st = &authState{}
		b.auth[host] = st
	}
	return st
}

// authorize adds credentials to req and returns the generation used.
func (b *Blob) authorize(ctx context.Context, h *docker.RegistryHost, req *http.Request) (int, error) {
	st := b.authState(h.Host)
	st.mu.Lock()
	az, gen := st.az, st.gen
	st.mu.Unlock()
	if b.creds == nil {
		az = h.Authorizer
	}
	if az == nil {
		return gen, nil
	}
	st.call.Lock()
	defer st.call.Unlock()
	return gen, az.Authorize(ctx, req)
}

// reauth handles a 401 or 403: with Credentials, a fresh authorizer
// answers the host's challenge (the one in this response, or the last
// one seen: a 403 for an expired token often has none); without, the
// host's own authorizer is handed the response.
func (b *Blob) reauth(ctx context.Context, h *docker.RegistryHost, ae *authError) error {
	st := b.authState(h.Host)
	st.mu.Lock()
	defer st.mu.Unlock()
	if ae.gen != st.gen {
		return nil // another request already re-authenticated
	}
	st.gen++
	b.count(func(c *counters) *atomicInt { return &c.reauths }, 1)
	resp := ae.resp
	if resp != nil && len(resp.Header.Values("WWW-Authenticate")) > 0 {
		st.challenge = resp
	} else if st.challenge != nil {
		resp = st.challenge
	} else {
		return fmt.Errorf("%s: %v, and no authentication challenge seen", h.Host, ae)
	}
	b.f.log.Debug("remote: authenticating", "registry", h.Host, "repo", b.repo, "status", ae.status)
	if b.creds == nil {
		if h.Authorizer == nil {
			return fmt.Errorf("%s wants authentication and no credentials were given", h.Host)
		}
		st.call.Lock()
		defer st.call.Unlock()
		return h.Authorizer.AddResponses(ctx, []*http.Response{resp})
	}
	st.az = docker.NewDockerAuthorizer(docker.WithAuthClient(h.Client), docker.WithAuthCreds(b.creds), docker.WithAuthHeader(h.Header))
	return st.az.AddResponses(ctx, []*http.Response{resp})
}
