package accel

import (
	"fmt"

	"github.com/containerd/errdefs"

	"github.com/fcd-dev/fcd/puller/gzindex"
)

// ErrUnsupported reports a source that cannot be converted in the
// requested mode: a zstd or uncompressed layer in index-only mode, a
// sparse tar entry in full mode, a layer to be fetched from URLs outside
// the registry (a Docker foreign layer) in either. The
// wrapping error names the layer and why. It wraps gzindex.ErrUnsupported;
// errdefs.IsInvalidArgument reports true for it.
var ErrUnsupported = fmt.Errorf("accel: %w (%w)", gzindex.ErrUnsupported, errdefs.ErrInvalidArgument)

// ErrInvalidRef reports a reference that cannot be converted: not a tag (a
// digest has no <tag>_accelerated) or already an accelerated tag. It wraps
// errdefs.ErrInvalidArgument.
var ErrInvalidRef = fmt.Errorf("accel: reference cannot be accelerated: %w", errdefs.ErrInvalidArgument)

// ErrInvalidMode reports a mode other than ModeFull and ModeIndexOnly. It
// wraps errdefs.ErrInvalidArgument.
var ErrInvalidMode = fmt.Errorf("accel: unknown acceleration mode: %w", errdefs.ErrInvalidArgument)

// ErrNotFound reports a job, a repository setting or an accelerated image
// that does not exist. It wraps errdefs.ErrNotFound.
var ErrNotFound = fmt.Errorf("accel: %w", errdefs.ErrNotFound)

// ErrDenied reports a registry that refused fcd's credentials. It wraps
// errdefs.ErrPermissionDenied.
var ErrDenied = fmt.Errorf("accel: registry access denied: %w", errdefs.ErrPermissionDenied)

// ErrTooLarge reports a source image whose layers unpack to more than
// Options.MaxUncompressedSize bytes or hold more than Options.MaxEntries
// tar entries; a full-mode conversion stops when it reads past the limit. It wraps errdefs.ErrInvalidArgument: converting the
// same image again fails again.
var ErrTooLarge = fmt.Errorf("accel: image too large (%w)", errdefs.ErrInvalidArgument)

// ErrPlainHTTP reports a registry that was to be spoken to in plain HTTP
// (go-containerregistry's fallback when HTTPS fails) although
// Options.PlainHTTP does not allow it: the converter speaks HTTPS to it
// or nothing. Retrying cannot help.
var ErrPlainHTTP = fmt.Errorf("accel: plain HTTP is used only for registries on loopback or that the registry hosts directory gives as http://: %w", errdefs.ErrPermissionDenied)

// ErrAmbiguous reports a digest alone naming the jobs of several
// repositories (Service.Job): name one as <repository>@<digest>. It wraps
// errdefs.ErrInvalidArgument.
var ErrAmbiguous = fmt.Errorf("accel: digest has jobs in several repositories: name one as <repository>@<digest> (%w)", errdefs.ErrInvalidArgument)
