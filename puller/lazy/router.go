package lazy

import (
	"context"
	"errors"
	"strings"

	"github.com/fcd-dev/fcd/instance/image"
)

// AcceleratedSuffix ends the tag of an image's accelerated form, as in
// Function Compute: "repo:v1_accelerated" is the accelerated "repo:v1",
// whichever mode made it.
const AcceleratedSuffix = "_accelerated"

// Router is the Images fcd runs instances with: a reference whose tag ends
// in AcceleratedSuffix is mounted lazily, any other is pulled whole, and an
// accelerated tag that turns out not to be lazy (ErrNotLazy: neither
// eStargz nor an index-only artifact) is pulled whole too. Which reference
// a function uses (the original, or its accelerated form once conversion
// is Ready) is decided before Prepare, from the function's
// accelerationType.
type Router struct {
	// Lazy mounts accelerated images. Required.
	Lazy image.Images
	// Full pulls every other image. Required.
	Full image.Images
}

var _ image.Images = (*Router)(nil)

// Prepare implements image.Images.
func (r *Router) Prepare(ctx context.Context, ref string, opts image.Options) (image.Image, error) {
	if !IsAccelerated(ref) {
		return r.Full.Prepare(ctx, ref, opts)
	}
	img, err := r.Lazy.Prepare(ctx, ref, opts)
	if errors.Is(err, ErrNotLazy) {
		return r.Full.Prepare(ctx, ref, opts)
	}
	return img, err
}

// IsAccelerated reports whether ref names an accelerated image by its tag.
func IsAccelerated(ref string) bool {
	if i := strings.LastIndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	i := strings.LastIndexByte(ref, ':')
	return i >= 0 && !strings.Contains(ref[i:], "/") && strings.HasSuffix(ref, AcceleratedSuffix)
}
