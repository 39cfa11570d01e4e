package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/proxy"
)

// stubPools stands in for the scheduler: nothing runs, the last start
// failed.
type stubPools struct{}

func (stubPools) Update(*api.Function)              {}
func (stubPools) Remove(string)                     {}
func (stubPools) SetProvisioned(*api.Function, int) {}
func (stubPools) Provisioned(string) (int, int)     { return 0, 0 }
func (stubPools) StartError(string) error           { return errors.New("pull failed: not found") }

func TestOptionTagProvisionCommands(t *testing.T) {
	dir := serveWith(t, proxy.Options{Pools: stubPools{}})
	steps := []struct {
		args    []string
		wantOut string
		wantErr error
	}{
		{[]string{"function", "create", "f1", "--image", "r/e:1", "--idle-timeout", "60", "--disable-ondemand",
			"--disable-inject-credentials", "Env", "--dns-server", "10.0.0.53", "--dns-search", "corp.example",
			"--dns-option", "ndots:2", "--tag", "team=a"}, "Idle timeout:       60 s", nil},
		{[]string{"function", "get", "f1"}, "DNS:                nameserver 10.0.0.53; search corp.example; options ndots:2", nil},
		{[]string{"function", "get", "f1", "-o", "json"}, `"disableInjectCredentials": "Env"`, nil},
		{[]string{"function", "update", "f1", "--tag", "x=y"}, "", errUsage},
		{[]string{"function", "update", "f1", "--session-header", "x-session"}, "Session header:     x-session", nil},
		{[]string{"function", "update", "f1", "--session-header", ""}, "Idle timeout", nil},
		{[]string{"function", "create", "f2", "--image", "r/e:1"}, "f2", nil},
		{[]string{"function", "list", "--tag", "team=a"}, "f1", nil},
		{[]string{"tag", "add", "f2", "team=b", "env=prod"}, "tagged f2", nil},
		{[]string{"tag", "list"}, "f2        env   prod", nil},
		{[]string{"tag", "list", "f1", "-o", "json"}, `"TagValue": "a"`, nil},
		{[]string{"tag", "remove", "f2", "env"}, "untagged f2", nil},
		{[]string{"tag", "remove", "f1", "--all"}, "untagged f1", nil},
		{[]string{"tag", "list"}, "f2        team  b", nil},
		{[]string{"tag", "add", "nope", "a=b"}, "FunctionNotFound", errAPI},
		{[]string{"tag", "remove", "f2"}, "", errUsage},
		{[]string{"provision", "set", "f1", "--target", "2"}, "last start failed: pull failed: not found", nil},
		{[]string{"provision", "list"}, "f1        2       0        pull failed: not found", nil},
		{[]string{"provision", "list", "-o", "json"}, `"currentError": "pull failed: not found"`, nil},
	}
	for _, s := range steps {
		out, err := fcctl(t, dir, s.args...)
		switch {
		case s.wantErr == errUsage && !errors.Is(err, errUsage):
			t.Errorf("%v: got error %v, want a usage error", s.args, err)
		case s.wantErr == errAPI && !errors.As(err, new(*apiError)):
			t.Errorf("%v: got error %v, want an API error", s.args, err)
		case s.wantErr == nil && err != nil:
			t.Errorf("%v: %v", s.args, err)
		}
		if err != nil {
			out += err.Error()
		}
		if !strings.Contains(out, s.wantOut) {
			t.Errorf("%v: output %q does not contain %q", s.args, out, s.wantOut)
		}
	}
}
