// Command push-images builds the example function images without a Docker
// engine and pushes them to a registry:
//
//	go run ./examples/cmd/push-images [-registry host:port] [name ...]
//
// pushes host:port/examples/{echo,echo-localhost,misbehave}:latest (or the
// named ones). Without -registry it pushes to the embedded registry of the
// fcd whose credentials.json is in -data-dir, with that fcd's admin key.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/examples/images"
)

func main() {
	registry := flag.String("registry", "", "registry host:port to push to (default: the embedded registry of the fcd in -data-dir)")
	dataDir := flag.String("data-dir", api.DefaultDataDir(), "data dir of the fcd whose registry and key to use")
	username := flag.String("username", "", "registry user name (default: the fcd admin key id, for its registry)")
	password := flag.String("password", "", "registry password (default: the fcd admin key secret, for its registry)")
	flag.Parse()

	if *registry == "" || *username == "" {
		creds, err := api.LoadCredentials(filepath.Join(*dataDir, api.CredentialsFile))
		switch {
		case err != nil && *registry == "":
			fail(2, fmt.Errorf("no -registry given and no fcd credentials: %w", err))
		case err == nil && *registry == "":
			*registry = creds.Registry
		}
		if err == nil && *registry == creds.Registry && *username == "" {
			*username, *password = creds.AccessKeyID, creds.AccessKeySecret
		}
		if *registry == "" {
			fail(2, fmt.Errorf("the fcd in %s runs no registry: pass -registry host:port", *dataDir))
		}
	}
	var auth authn.Authenticator
	if *username != "" {
		auth = &authn.Basic{Username: *username, Password: *password}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	refs, err := images.BuildAndPush(ctx, *registry, auth, flag.Args()...)
	for _, r := range refs {
		fmt.Println(r)
	}
	if err != nil {
		fail(1, err)
	}
}

func fail(code int, err error) {
	fmt.Fprintln(os.Stderr, "push-images:", err)
	os.Exit(code)
}
