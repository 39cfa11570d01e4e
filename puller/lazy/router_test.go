package lazy

import (
	"context"
	"errors"
	"testing"

	"github.com/fcd-dev/fcd/instance/image"
)

// recorder is a fake image.Images that records the references it was
// asked for and answers with err.
type recorder struct {
	refs []string
	err  error
}

func (r *recorder) Prepare(_ context.Context, ref string, _ image.Options) (image.Image, error) {
	r.refs = append(r.refs, ref)
	return nil, r.err
}

func TestRouter(t *testing.T) {
	for _, tc := range []struct {
		ref      string
		lazyErr  error
		wantLazy int
		wantFull int
	}{
		{ref: "r.example/app:v1", wantFull: 1},
		{ref: "r.example/app:v1_accelerated", wantLazy: 1},
		{ref: "r.example/app:v1_accelerated", lazyErr: ErrNotLazy, wantLazy: 1, wantFull: 1},
		{ref: "r.example/app:v1_accelerated", lazyErr: errors.New("registry down"), wantLazy: 1},
		{ref: "r.example:5000/app_accelerated", wantFull: 1},
		{ref: "r.example/app:v1_accelerated@sha256:0000000000000000000000000000000000000000000000000000000000000000", wantLazy: 1},
	} {
		lazy, full := &recorder{err: tc.lazyErr}, &recorder{}
		r := &Router{Lazy: lazy, Full: full}
		_, _ = r.Prepare(context.Background(), tc.ref, image.Options{})
		if len(lazy.refs) != tc.wantLazy || len(full.refs) != tc.wantFull {
			t.Errorf("%s (lazy error %v): got %d lazy and %d full prepares, want %d and %d",
				tc.ref, tc.lazyErr, len(lazy.refs), len(full.refs), tc.wantLazy, tc.wantFull)
		}
	}
}
