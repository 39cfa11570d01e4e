// Package testenv decides whether a test that needs privileged parts of the
// host (root, containerd, runc, CNI plugins, FUSE, external tools) can run.
//
// Locally such a test skips with the reason. When the CI environment variable
// is set, the same condition fails the test instead: CI installs and starts
// everything, so on CI nothing may skip.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// OnCI reports whether the tests run under CI (CI is set and not "false").
func OnCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// Require skips t (or fails it on CI) with reason unless ok is true.
func Require(t testing.TB, ok bool, reason string) {
	t.Helper()
	if ok {
		return
	}
	if OnCI() {
		t.Fatalf("required on CI: %s", reason)
	}
	t.Skipf("skipping: %s", reason)
}

// RequireRoot requires the test to run as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	Require(t, os.Geteuid() == 0, "test needs root")
}

// RequireCommand requires an executable on PATH; pkg names the Debian package
// that provides it, for the message.
func RequireCommand(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Require(t, err == nil, name+" not found on PATH (Debian package "+pkg+")")
	return p
}

// RequireFile requires a file to exist; pkg names the Debian package that
// provides it, for the message.
func RequireFile(t testing.TB, path, pkg string) {
	t.Helper()
	_, err := os.Stat(path)
	Require(t, err == nil, path+" not found (Debian package "+pkg+")")
}
