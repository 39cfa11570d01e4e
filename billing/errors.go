package billing

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// ErrInvalidRecord is returned by MeterPull and MeterInvocation for a
// record without a function name, with a non-positive memory size, or
// ending before it starts. It wraps errdefs.ErrInvalidArgument.
var ErrInvalidRecord = fmt.Errorf("invalid billing record: %w", errdefs.ErrInvalidArgument)
