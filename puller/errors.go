package puller

import (
	"errors"

	"github.com/containerd/errdefs"

	"github.com/fcd-dev/fcd/instance/image"
)

var (
	// ErrPlatform is returned by Prepare when the image has no linux/amd64
	// variant. The error message names the platforms the image offers.
	ErrPlatform = errors.New("image is not linux/amd64")

	// ErrTooLarge is returned by Prepare when the image's compressed layers
	// sum past Options.MaxCompressedSize, or when unpacking it writes more
	// than Options.MaxUncompressedSize bytes.
	ErrTooLarge = errors.New("image too large")

	// ErrForeignURLs is returned by Prepare for an image one of whose
	// blobs names URLs to fetch it from (Docker's foreign layers, OCI's
	// non-distributable layers): fcd fetches an image's blobs from its
	// registry only, never from servers the image names (RegistryOnly).
	ErrForeignURLs = errors.New("image names URLs outside its registry to fetch a blob from; fcd fetches blobs from the image's registry only")

	// ErrInvalidReference is returned for an image reference that cannot be
	// parsed.
	ErrInvalidReference = errors.New("invalid image reference")

	// ErrUnauthorized is returned by Prepare when the registry refuses the
	// credentials; it is image.ErrUnauthorized (category
	// errdefs.ErrUnauthenticated).
	ErrUnauthorized = image.ErrUnauthorized

	// ErrRegistryTimeout is returned by Prepare when the registry did not
	// answer within a bound: no response headers within
	// Options.ResponseHeaderTimeout, a body read that waited
	// Options.StallTimeout for a byte, or a pull not done within
	// Options.PullTimeout.
	// The message names the registry host. It is image.ErrRegistryTimeout
	// (category errdefs.ErrUnavailable).
	ErrRegistryTimeout = image.ErrRegistryTimeout

	// ErrAddressRefused is returned by Prepare when a registry connection
	// was to be made to an address the puller's AddressPolicy refuses:
	// the registry's own, its token server's, a redirect's. It is wrapped
	// by an *AddressError naming the address. It carries the category
	// errdefs.ErrPermissionDenied: trying again cannot help.
	ErrAddressRefused = errdefs.ErrPermissionDenied.WithMessage("registry address refused")

	// ErrHostsDir is returned by a RegistryTransport for a host whose
	// entry in the hosts directory cannot be read or asks for what the
	// transport cannot do; the wrapping error names the entry and why.
	// It carries the category errdefs.ErrInvalidArgument: trying again
	// cannot help until the entry is changed.
	ErrHostsDir = errdefs.ErrInvalidArgument.WithMessage("registry hosts directory")
)
