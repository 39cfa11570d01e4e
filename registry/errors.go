package registry

import "errors"

// Errors returned by this package.
var (
	// ErrNoCredentials is the token endpoint's error for a request without
	// credentials (HTTP 401).
	ErrNoCredentials = errors.New("registry: credentials required")

	// ErrBadCredentials is the token endpoint's error for credentials
	// that are neither the admin key nor valid temporary credentials
	// (HTTP 401).
	ErrBadCredentials = errors.New("registry: invalid credentials")

	// ErrDenied is the token endpoint's error for valid credentials that
	// grant none of the requested scopes (HTTP 403).
	ErrDenied = errors.New("registry: access denied")
)
