// Command push-images builds the example function images without a Docker
// engine and pushes them to a registry:
//
//	go run ./examples/cmd/push-images -registry host:port
//
// pushes host:port/examples/{echo,echo-localhost,misbehave}:latest.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/fcd-dev/fcd/examples/images"
)

func main() {
	registry := flag.String("registry", "", "registry host:port to push to (required)")
	flag.Parse()
	if *registry == "" {
		fmt.Fprintln(os.Stderr, "push-images: -registry host:port is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	refs, err := images.BuildAndPush(ctx, *registry, flag.Args()...)
	for _, r := range refs {
		fmt.Println(r)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "push-images:", err)
		os.Exit(1)
	}
}
