package instance

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
)

// fakeTask answers its deletes with errs in turn, then with the last.
type fakeTask struct {
	errs  []error
	calls int
}

func (f *fakeTask) Delete(context.Context, ...containerd.ProcessDeleteOpts) (*containerd.ExitStatus, error) {
	err := f.errs[min(f.calls, len(f.errs)-1)]
	f.calls++
	return nil, err
}

func TestDeleteTask(t *testing.T) {
	closed := errors.New("failed to delete task: ttrpc: closed: unknown")
	running := fmt.Errorf("task must be stopped before deletion: running: %w", errdefs.ErrFailedPrecondition)
	tests := []struct {
		name      string
		errs      []error
		wantErr   error
		wantCalls int
	}{
		{"deleted", []error{nil}, nil, 1},
		{"already gone", []error{errdefs.ErrNotFound}, nil, 1},
		{"shim gone, then forgotten", []error{closed, closed, errdefs.ErrNotFound}, nil, 3},
		{"shim gone, then deleted", []error{closed, nil}, nil, 2},
		{"refused", []error{running}, running, 1},
		{"shim gone for good", []error{closed}, closed, deleteShimRetries + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTask{errs: tt.errs}
			err := deleteTask(context.Background(), f)
			if !errors.Is(err, tt.wantErr) || f.calls != tt.wantCalls {
				t.Errorf("got %v after %d deletes, want %v after %d", err, f.calls, tt.wantErr, tt.wantCalls)
			}
		})
	}
	// A done context ends the wait.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := &fakeTask{errs: []error{closed}}
	if err := deleteTask(ctx, f); !errors.Is(err, closed) || f.calls != 1 {
		t.Errorf("done context: got %v after %d deletes, want the shim's error after 1", err, f.calls)
	}
}
