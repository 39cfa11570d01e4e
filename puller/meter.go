package puller

import (
	"context"

	"github.com/fcd-dev/fcd/billing"
)

// Meter receives one record per metered image pull. Billing's ledger
// satisfies it.
//
// What a pull reports, for the full pull here and for a later lazy pull
// alike (instance.Images documents the same contract), once the instance
// is ready (Image.Ready); a start that fails before is not metered:
//
//   - Start: when Prepare began.
//   - End: full pull: when Prepare returned. Lazy pull: when Ready was
//     called, i.e. once the instance's start-up reads were satisfied.
//   - Bytes: the compressed bytes fetched from the registry for this image
//     until End.
//   - CacheHit: nothing was fetched (every layer, or every chunk the
//     start-up read, was already on the host); billing charges nothing.
//   - Function, InstanceID, MemoryMB: from instance.ImageOptions; Image:
//     the reference as the function names it.
type Meter interface {
	MeterPull(ctx context.Context, r billing.PullRecord) (billing.Record, error)
}

var _ Meter = (*billing.Ledger)(nil)
