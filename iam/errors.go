package iam

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// Errors returned by this package. Each wraps a containerd errdefs category
// (errdefs.IsNotFound, IsAlreadyExists, IsInvalidArgument, IsUnauthorized)
// so callers at the edge can map them to FC error codes without knowing
// this package's sentinels.
var (
	// ErrRoleNotFound is returned when no role has the given name or ARN.
	ErrRoleNotFound = fmt.Errorf("role not found: %w", errdefs.ErrNotFound)

	// ErrRoleExists is returned by CreateRole for a name already in use.
	ErrRoleExists = fmt.Errorf("role already exists: %w", errdefs.ErrAlreadyExists)

	// ErrInvalidRole is returned for a malformed role name, ARN or
	// repository pattern.
	ErrInvalidRole = fmt.Errorf("invalid role: %w", errdefs.ErrInvalidArgument)

	// ErrInvalidCredentials is returned by VerifySession for a session
	// token that was not issued by this store (forged or altered), or
	// whose access key id or secret does not match it.
	ErrInvalidCredentials = fmt.Errorf("invalid temporary credentials: %w", errdefs.ErrUnauthenticated)

	// ErrExpiredCredentials is returned by VerifySession for a genuine
	// session token past its expiry.
	ErrExpiredCredentials = fmt.Errorf("temporary credentials expired: %w", errdefs.ErrUnauthenticated)
)
