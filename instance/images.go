package instance

import "github.com/fcd-dev/fcd/instance/image"

// The image contract, declared in package image (see there): the Manager
// consumes an Images given in Options.
type (
	// Images prepares the read-only root filesystems instances run on.
	Images = image.Images
	// Image is one prepared use of an image.
	Image = image.Image
	// ImageOptions are the per-call options of Images.Prepare.
	ImageOptions = image.Options
	// PullStats describes what an image's Prepare did.
	PullStats = image.Stats
	// PullSpan is one timed step of a pull (image.Span).
	PullSpan = image.Span
)
