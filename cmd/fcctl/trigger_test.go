package main

import (
	"errors"
	"strings"
	"testing"
)

func TestTriggerCommands(t *testing.T) {
	dir := serve(t)
	if _, err := fcctl(t, dir, "function", "create", "echo", "--image", "r/echo:1"); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		args    []string
		wantOut string
		wantErr error // nil, errUsage, or errAPI for any API error
	}{
		{[]string{"trigger", "list", "echo"}, "NAME  TYPE  AUTH  METHODS  URL", nil},
		{[]string{"trigger", "create", "echo", "web", "--methods", "get,post"}, "Methods:        GET,POST", nil},
		{[]string{"trigger", "create", "echo", "web2"}, "", errAPI}, // one HTTP trigger per function
		{[]string{"trigger", "create", "echo", "bad", "--auth", "nobody"}, "authType", errAPI},
		{[]string{"trigger", "get", "echo", "web", "-o", "json"}, `"urlIntranet": "http://127.0.0.1:`, nil},
		{[]string{"trigger", "get", "echo", "web"}, "/fn/echo", nil},
		{[]string{"trigger", "update", "echo", "web", "--auth", "function"}, "Auth:           function", nil},
		{[]string{"trigger", "update", "echo", "web", "--description", "d"}, "Auth:           function", nil},
		{[]string{"trigger", "list", "echo"}, "web   http  function  *", nil},
		{[]string{"trigger", "list", "echo", "--prefix", "x", "-o", "json"}, `"triggers": []`, nil},
		{[]string{"trigger", "delete", "echo", "web"}, "deleted trigger web of echo", nil},
		{[]string{"trigger", "get", "echo", "web"}, "TriggerNotFound", errAPI},
		{[]string{"trigger", "get", "nofn", "web"}, "FunctionNotFound", errAPI},
		{[]string{"trigger", "get", "echo"}, "", errUsage},
		{[]string{"trigger", "frob"}, "", errUsage},
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

func TestDomainCommands(t *testing.T) {
	dir := serve(t)
	steps := []struct {
		args    []string
		wantOut string
		wantErr error
	}{
		{[]string{"domain", "create", "api.example.com", "--route", "/a/*=echo:get,post", "--route", "/=echo"}, "api.example.com  /a/*  echo      GET,POST", nil},
		{[]string{"domain", "get", "api.example.com", "-o", "json"}, `"functionName": "echo"`, nil},
		{[]string{"domain", "create", "api.example.com"}, "DomainNameAlreadyExists", errAPI},
		{[]string{"domain", "create", "bad.example.com", "--route", "nopath"}, "", errUsage},
		{[]string{"domain", "update", "api.example.com", "--route", "/b=echo"}, "api.example.com  /b    echo      *", nil},
		{[]string{"domain", "list"}, "api.example.com  /b", nil},
		{[]string{"domain", "list", "--prefix", "zzz", "-o", "json"}, `"customDomains": []`, nil},
		{[]string{"domain", "delete", "api.example.com"}, "deleted custom domain api.example.com", nil},
		{[]string{"domain", "get", "api.example.com"}, "DomainNameNotFound", errAPI},
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
