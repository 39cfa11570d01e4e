// Command bigimage builds (once) and describes the large benchmark image of
// package examples/bigimage.
//
//	go run ./examples/cmd/bigimage [-dir /var/cache/fcd-bench]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/fcd-dev/fcd/examples/bigimage"
)

func main() {
	dir := flag.String("dir", bigimage.DefaultDir, "cache directory")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	img, err := bigimage.Load(ctx, *dir, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bigimage:", err)
		os.Exit(1)
	}
	d, _ := img.Digest()
	m, _ := img.Manifest()
	fmt.Printf("image %s\n", d)
	for i, l := range m.Layers {
		fmt.Printf("layer %d %s %d bytes\n", i, l.Digest, l.Size)
	}
}
