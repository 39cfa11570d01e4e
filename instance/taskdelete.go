package instance

import (
	"context"
	"strings"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
)

// taskDeleter is the part of a containerd task deleteTask uses.
type taskDeleter interface {
	Delete(context.Context, ...containerd.ProcessDeleteOpts) (*containerd.ExitStatus, error)
}

// shimGone is how containerd (1.6) words a task delete whose shim exited
// before it answered; it reaches the client as text only.
const shimGone = "ttrpc: closed"

// deleteShimRetries and deleteShimPause bound deleteTask's wait for
// containerd to forget a task whose shim is gone (a few milliseconds
// here).
const (
	deleteShimRetries = 50
	deleteShimPause   = 20 * time.Millisecond
)

// deleteTask deletes task t; a task that is already gone is no error.
//
// A shim group's shim exits once its last task is deleted. When two of
// its tasks are deleted at once, the delete whose answer that exit cut
// off fails with "ttrpc: closed" although the shim deleted the task, and
// containerd forgets the task only once it has seen the shim's connection
// close. deleteTask rides that out: it deletes again until containerd
// says the task is not found.
func deleteTask(ctx context.Context, t taskDeleter, opts ...containerd.ProcessDeleteOpts) error {
	for try := 0; ; try++ {
		_, err := t.Delete(ctx, opts...)
		switch {
		case err == nil || errdefs.IsNotFound(err):
			return nil
		case !strings.Contains(err.Error(), shimGone) || try == deleteShimRetries:
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(deleteShimPause):
		}
	}
}
