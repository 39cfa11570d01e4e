package instance

import (
	"fmt"
	"strings"
	"time"

	"github.com/containerd/errdefs"
)

var (
	// ErrMissingDependency is returned when a program fcd needs (containerd,
	// runc, CNI plugins, mkfs.ext4, iptables) is absent; the message names
	// the Debian package to install. It wraps errdefs.ErrFailedPrecondition.
	ErrMissingDependency = category("missing host dependency", errdefs.ErrFailedPrecondition)

	// ErrSubnetOverlap is returned by NewManager when Options.Subnet
	// overlaps a route of the host that is not fcd's own bridge. It wraps
	// errdefs.ErrInvalidArgument.
	ErrSubnetOverlap = category("subnet overlaps an existing route", errdefs.ErrInvalidArgument)

	// ErrStopped is returned by calls on an instance that has been
	// stopped. It wraps errdefs.ErrFailedPrecondition.
	ErrStopped = category("instance stopped", errdefs.ErrFailedPrecondition)
)

// categorized is a sentinel with an errdefs category that does not show
// in its message.
type categorized struct {
	msg string
	cat error
}

func category(msg string, cat error) error { return &categorized{msg: msg, cat: cat} }

func (e *categorized) Error() string { return e.msg }
func (e *categorized) Unwrap() error { return e.cat }

// StartError is returned by Manager.Start when the instance was created but
// did not become ready. Nothing of the instance is left running. It belongs
// to errdefs.ErrFailedPrecondition; errors.Is also reaches Err.
type StartError struct {
	// Exited is true when the instance's process exited before it was
	// ready; Exit then holds its status. Otherwise the probe, health check
	// or initializer failed, or the start timed out.
	Exited bool
	// InstanceID names the failed instance.
	InstanceID string
	// Duration is the time from container start to the failure.
	Duration time.Duration
	// Err is the probe, health check or initializer error; when Exited it
	// describes the exit.
	Err error
	// Exit is the process's exit status when Exited.
	Exit ExitStatus
	// LogTail holds the instance's last log lines.
	LogTail []string
}

func (e *StartError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "instance %s ", e.InstanceID)
	if e.Exited {
		fmt.Fprintf(&b, "exited with code %d", e.Exit.Code)
		if e.Exit.OOMKilled {
			b.WriteString(" (out of memory)")
		}
		fmt.Fprintf(&b, " %s after start", e.Duration.Round(time.Millisecond))
	} else {
		fmt.Fprintf(&b, "did not become ready in %s", e.Duration.Round(time.Millisecond))
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if len(e.LogTail) > 0 {
		b.WriteString("; last logs:\n")
		b.WriteString(strings.Join(e.LogTail, "\n"))
	}
	return b.String()
}

// ProcessExited reports Exited, for consumers that classify the error
// without importing this package.
func (e *StartError) ProcessExited() bool { return e.Exited }

func (e *StartError) Unwrap() []error { return []error{errdefs.ErrFailedPrecondition, e.Err} }
