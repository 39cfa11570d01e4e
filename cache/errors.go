package cache

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// ErrDigestMismatch is returned by Put when the bytes read do not hash to
// the digest given. Nothing is stored. It wraps errdefs.ErrInvalidArgument.
var ErrDigestMismatch = fmt.Errorf("cache: digest mismatch: %w", errdefs.ErrInvalidArgument)

// ErrInvalidDigest is returned for a digest that is malformed or not
// sha256, the only algorithm the store lays out. It wraps
// errdefs.ErrInvalidArgument.
var ErrInvalidDigest = fmt.Errorf("cache: invalid digest: %w", errdefs.ErrInvalidArgument)

// ErrTooLarge is returned by Put for a blob larger than the whole byte
// budget (Options.MaxBytes); it could never be kept. It wraps
// errdefs.ErrResourceExhausted.
var ErrTooLarge = fmt.Errorf("cache: blob larger than the byte budget: %w", errdefs.ErrResourceExhausted)

// ErrCorrupt is returned by Verify, and by Open when it verifies, for an
// entry whose bytes on disk no longer hash to its digest. The entry has
// already been dropped from the store when the error is returned; fetch it
// again. It wraps errdefs.ErrDataLoss.
var ErrCorrupt = fmt.Errorf("cache: corrupt entry: %w", errdefs.ErrDataLoss)

// ErrLocked is returned by Open when another Cache (in this or another
// process) holds the directory. It wraps errdefs.ErrUnavailable.
var ErrLocked = fmt.Errorf("cache: directory in use: %w", errdefs.ErrUnavailable)

// ErrClosed is returned by Put after Close. It wraps
// errdefs.ErrFailedPrecondition.
var ErrClosed = fmt.Errorf("cache: closed: %w", errdefs.ErrFailedPrecondition)
