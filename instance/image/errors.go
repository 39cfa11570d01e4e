package image

import "github.com/containerd/errdefs"

// Errors every Images implementation returns for the same failures, so
// callers need not know which implementation they hold.
var (
	// ErrUnauthorized is returned by Prepare when the registry refuses the
	// credentials (or their absence): a token endpoint or the registry
	// answered 401 or 403. It carries the category
	// errdefs.ErrUnauthenticated; the message starts "image pull not
	// authorized" and names Options.Role and the registry's answer.
	ErrUnauthorized = errdefs.ErrUnauthenticated.WithMessage("image pull not authorized")

	// ErrRegistryTimeout is returned by Prepare when the registry did not
	// answer within a bound of the implementation (response headers, a
	// body's silence, the whole pull). The message names the registry
	// host. It carries the category errdefs.ErrUnavailable.
	ErrRegistryTimeout = errdefs.ErrUnavailable.WithMessage("registry did not answer in time")
)
