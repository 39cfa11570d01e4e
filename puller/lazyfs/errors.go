package lazyfs

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// ErrUnsupported is returned for a layer the file system cannot serve
// faithfully: a hard link to a file outside the layer, an unknown entry
// type, a layer format it does not read, a name no file system holds, or
// a layer past the bounds on what a layer may claim (doc.go). It wraps
// errdefs.ErrNotImplemented.
var ErrUnsupported = fmt.Errorf("lazyfs: unsupported layer: %w", errdefs.ErrNotImplemented)

// ErrCorrupt is returned when fetched bytes do not match the digest the
// layer's table of contents or index records for them. It wraps
// errdefs.ErrDataLoss.
var ErrCorrupt = fmt.Errorf("lazyfs: content does not match its digest: %w", errdefs.ErrDataLoss)

// ErrNotFound is returned for a file the layer does not hold. It wraps
// errdefs.ErrNotFound.
var ErrNotFound = fmt.Errorf("lazyfs: no such file in layer: %w", errdefs.ErrNotFound)
