package puller

import "errors"

var (
	// ErrPlatform is returned by Prepare when the image has no linux/amd64
	// variant. The error message names the platforms the image offers.
	ErrPlatform = errors.New("image is not linux/amd64")

	// ErrTooLarge is returned by Prepare when the image's compressed layers
	// sum past Options.MaxCompressedSize, or when unpacking it writes more
	// than Options.MaxUncompressedSize bytes.
	ErrTooLarge = errors.New("image too large")

	// ErrInvalidReference is returned for an image reference that cannot be
	// parsed.
	ErrInvalidReference = errors.New("invalid image reference")
)
