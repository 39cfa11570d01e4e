package async

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// Errors of the queue's API, each in an errdefs category; test them with
// errors.Is.
var (
	// ErrTaskExists is an Enqueue whose task id the function already has.
	ErrTaskExists = fmt.Errorf("async task already exists: %w", errdefs.ErrAlreadyExists)
	// ErrTaskNotFound is a task the function does not have, or an event
	// that is not a task (asyncTask off and no task id given).
	ErrTaskNotFound = fmt.Errorf("async task not found: %w", errdefs.ErrNotFound)
	// ErrConfigNotFound is a function without an async invoke config.
	ErrConfigNotFound = fmt.Errorf("async invoke config not found: %w", errdefs.ErrNotFound)
	// ErrTaskFinished is StopAsyncTask on a task in an end state.
	ErrTaskFinished = fmt.Errorf("async task already finished: %w", errdefs.ErrFailedPrecondition)
	// ErrClosed is an Enqueue after the queue stopped.
	ErrClosed = fmt.Errorf("async queue closed: %w", errdefs.ErrUnavailable)
)
