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

// ExitError says that an instance's process ended by itself while it was
// serving: Instance.ExitError returns it to a caller whose request broke
// off. It belongs to errdefs.ErrUnavailable.
type ExitError struct {
	// InstanceID names the instance.
	InstanceID string
	// Exit is how the process ended.
	Exit ExitStatus
	// MemoryMB is the instance's memory limit.
	MemoryMB int
	// LogTail holds the instance's last log lines.
	LogTail []string
}

func (e *ExitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "instance %s exited with code %d", e.InstanceID, e.Exit.Code)
	if e.Exit.OOMKilled {
		fmt.Fprintf(&b, ", killed for using more than its %d MB of memory", e.MemoryMB)
	}
	if len(e.LogTail) > 0 {
		b.WriteString("; last logs:\n")
		b.WriteString(strings.Join(e.LogTail, "\n"))
	}
	return b.String()
}

// ExitCode is the process's exit code (128+n for signal n, -1 unknown).
func (e *ExitError) ExitCode() int { return e.Exit.Code }

// OOMKilled reports whether the kernel killed the process for passing
// its memory limit.
func (e *ExitError) OOMKilled() bool { return e.Exit.OOMKilled }

// Logs returns the instance's last log lines.
func (e *ExitError) Logs() []string { return e.LogTail }

func (e *ExitError) Unwrap() error { return errdefs.ErrUnavailable }
