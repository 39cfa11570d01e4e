package main

import (
	"testing"

	"github.com/fcd-dev/fcd/api"
)

func TestWithRegistryAuth(t *testing.T) {
	base := func(h string) (string, string, error) { return "role-" + h, "s", nil }
	f := &api.Function{CustomContainerConfig: &api.CustomContainerConfig{Image: "reg.example:5000/app/x:1",
		RegistryConfig: &api.RegistryConfig{AuthConfig: &api.RegistryAuthConfig{UserName: "u", Password: "p"}}}}
	creds := withRegistryAuth(base, f)
	if u, p, err := creds("reg.example:5000"); u != "u" || p != "p" || err != nil {
		t.Errorf("image's registry: got %q %q %v, want the function's u/p", u, p, err)
	}
	if u, _, _ := creds("other:5000"); u != "role-other:5000" {
		t.Errorf("another registry: got %q, want the base credentials", u)
	}
	f.CustomContainerConfig.RegistryConfig = nil
	if u, _, _ := withRegistryAuth(base, f)("reg.example:5000"); u != "role-reg.example:5000" {
		t.Errorf("no registryConfig: got %q, want the base credentials", u)
	}
}
