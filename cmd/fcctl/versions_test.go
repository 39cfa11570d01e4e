package main

import (
	"errors"
	"strings"
	"testing"
)

func TestVersionCommands(t *testing.T) {
	dir := serve(t)
	var errAPI = errors.New("api")
	steps := []struct {
		args    []string
		wantOut string
		wantErr error
	}{
		{[]string{"function", "create", "echo", "--image", "r/echo:1"}, "echo", nil},
		{[]string{"version", "publish", "echo", "--description", "first"}, "published version 1 of echo", nil},
		{[]string{"function", "update", "echo", "--memory", "1024"}, "", nil},
		{[]string{"version", "publish", "echo", "-o", "json"}, `"versionId": "2"`, nil},
		{[]string{"version", "publish", "echo"}, "VersionPublishError", errAPI},
		{[]string{"version", "list", "echo"}, "2        ", nil},
		{[]string{"version", "list", "echo", "--direction", "FORWARD", "--limit", "1"}, "next: --next-token 2", nil},
		{[]string{"version", "publish"}, "takes FUNCTION", errUsage},
		{[]string{"version", "delete", "echo", "9"}, "VersionNotFound", errAPI},
		{[]string{"alias", "create", "echo", "prod", "--version", "1", "--weight", "2=0.2"}, "1=80% 2=20%", nil},
		{[]string{"alias", "create", "echo", "bad", "--version", "1", "--weight", "2=1.5"}, "InvalidArgument", errAPI},
		{[]string{"alias", "create", "echo", "bad", "--version", "7"}, "VersionNotFound", errAPI},
		{[]string{"alias", "create", "echo", "bad"}, "needs --version", errUsage},
		{[]string{"alias", "get", "echo", "prod", "-o", "json"}, `"aliasName": "prod"`, nil},
		{[]string{"alias", "list", "echo"}, "prod   1", nil},
		{[]string{"version", "delete", "echo", "2"}, "VersionInUse", errAPI},
		{[]string{"alias", "update", "echo", "prod", "--weight", "-"}, "1=100%", nil},
		{[]string{"version", "delete", "echo", "2"}, "deleted version 2 of echo", nil},
		{[]string{"alias", "delete", "echo", "prod"}, "deleted alias prod", nil},
		{[]string{"alias", "get", "echo", "prod"}, "AliasNotFound", errAPI},
		{[]string{"concurrency", "put", "echo", "--reserved", "3"}, "reserved concurrency 3", nil},
		{[]string{"concurrency", "get", "echo", "-o", "json"}, `"reservedConcurrency": 3`, nil},
		{[]string{"concurrency", "list"}, "echo      3", nil},
		{[]string{"concurrency", "put", "echo"}, "needs --reserved", errUsage},
		{[]string{"concurrency", "delete", "echo"}, "deleted the concurrency config of echo", nil},
		{[]string{"concurrency", "get", "echo"}, "OnDemandConfigNotFound", errAPI},
		{[]string{"function", "disable", "echo", "--reason", "maintenance"}, "invocations of echo disabled", nil},
		{[]string{"function", "get", "echo", "-o", "json"}, `"reason": "maintenance"`, nil},
		{[]string{"function", "enable", "echo"}, "invocations of echo enabled", nil},
		{[]string{"function", "disable", "none"}, "FunctionNotFound", errAPI},
		{[]string{"instance", "list", "echo"}, "INSTANCE", nil},
		{[]string{"instance", "list", "echo", "--qualifier", "nosuch"}, "AliasNotFound", errAPI},
		{[]string{"instance", "kill", "echo"}, "unknown instance subcommand", errUsage},
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
