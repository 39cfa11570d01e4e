package instance

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

var (
	// ErrMissingDependency is returned when a program fcd needs (containerd,
	// runc, CNI plugins, mkfs.ext4, iptables) is absent; the message names
	// the Debian package to install.
	ErrMissingDependency = errors.New("missing host dependency")

	// ErrSubnetOverlap is returned by NewManager when Options.Subnet
	// overlaps a route of the host that is not fcd's own bridge.
	ErrSubnetOverlap = errors.New("subnet overlaps an existing route")

	// ErrStopped is returned by calls on an instance that has been stopped.
	ErrStopped = errors.New("instance stopped")
)

// Start failure codes, as Function Compute names them.
const (
	// CodeFunctionNotStarted: the instance did not become ready (probe,
	// health check or initializer failed, or the start timed out).
	CodeFunctionNotStarted = "FunctionNotStarted"
	// CodeCAExited: the instance's process exited before it was ready.
	CodeCAExited = "CAExited"
)

// StartError is returned by Manager.Start when the instance was created but
// did not become ready. Nothing of the instance is left running.
type StartError struct {
	// Code is CodeFunctionNotStarted or CodeCAExited.
	Code string
	// InstanceID names the failed instance.
	InstanceID string
	// Duration is the time from container start to the failure.
	Duration time.Duration
	// Err is the probe, health check or initializer error; for CAExited it
	// describes the exit.
	Err error
	// Exit is the process's exit status when Code is CodeCAExited.
	Exit ExitStatus
	// LogTail holds the instance's last log lines.
	LogTail []string
}

func (e *StartError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: instance %s ", e.Code, e.InstanceID)
	if e.Code == CodeCAExited {
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

func (e *StartError) Unwrap() error { return e.Err }
