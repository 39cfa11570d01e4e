package main

import (
	"github.com/distribution/reference"

	"github.com/fcd-dev/fcd/api"
)

// withRegistryAuth puts a function's registryConfig.authConfig in front of
// creds: the image's registry gets the function's own user name and
// password, every other registry what creds gives (the role's temporary
// keys for the embedded registry, the host's logins).
func withRegistryAuth(creds func(host string) (string, string, error), f *api.Function) func(host string) (string, string, error) {
	cc := f.CustomContainerConfig
	if cc == nil || cc.RegistryConfig == nil || cc.RegistryConfig.AuthConfig == nil {
		return creds
	}
	named, err := reference.ParseDockerRef(cc.Image)
	if err != nil {
		return creds // validated at create; the pull reports it
	}
	host, auth := reference.Domain(named), *cc.RegistryConfig.AuthConfig
	return func(h string) (string, string, error) {
		if h == host {
			return auth.UserName, auth.Password, nil
		}
		return creds(h)
	}
}
