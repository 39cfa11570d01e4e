package remote

import (
	"errors"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
)

var (
	// ErrUnavailable reports a read that failed because the registry kept
	// failing (connection errors, 5xx, stalls, dropped bodies) until the
	// retry bound (Options.RetryTimeout), or whose circuit breaker stayed
	// open past it. A later read tries again. It wraps
	// errdefs.ErrUnavailable.
	ErrUnavailable = fmt.Errorf("remote: registry unavailable: %w", errdefs.ErrUnavailable)

	// ErrDigestMismatch reports fetched bytes that do not hash to the
	// digest the caller asked for: the index or TOC does not describe the
	// blob the registry serves. Nothing is cached. It wraps
	// errdefs.ErrDataLoss.
	ErrDigestMismatch = fmt.Errorf("remote: fetched bytes do not match their digest: %w", errdefs.ErrDataLoss)

	// ErrUnauthorized reports a registry that kept refusing the
	// credentials (401 or 403) after re-authentication. It wraps
	// errdefs.ErrUnauthenticated.
	ErrUnauthorized = fmt.Errorf("remote: registry refused the credentials: %w", errdefs.ErrUnauthenticated)

	// ErrBadResponse reports an answer that cannot be used and will not
	// improve with a retry: an unexpected status (400, 404, 416, ...), a
	// Content-Range for other bytes, or a whole-blob answer of the wrong
	// size. It wraps errdefs.ErrUnknown.
	ErrBadResponse = fmt.Errorf("remote: unusable registry response: %w", errdefs.ErrUnknown)

	// ErrClosed reports a read on, or pending when closing, a closed
	// Fetcher. It wraps errdefs.ErrFailedPrecondition.
	ErrClosed = fmt.Errorf("remote: fetcher closed: %w", errdefs.ErrFailedPrecondition)

	// errStalled is the cause of a request cancelled by the stall timer.
	errStalled = errors.New("remote: no data within the stall timeout")
)

// FetchError is the error of a failed read: which registry, repository,
// blob and range, and why (wrapping one of the errors above, or the
// context's error).
type FetchError struct {
	Registry string
	Repo     string
	Digest   digest.Digest
	Off, N   int64
	Err      error
}

func (e *FetchError) Error() string {
	return fmt.Sprintf("fetch %s/%s@%s bytes %d-%d: %v", e.Registry, e.Repo, e.Digest, e.Off, e.Off+e.N-1, e.Err)
}

func (e *FetchError) Unwrap() error { return e.Err }
