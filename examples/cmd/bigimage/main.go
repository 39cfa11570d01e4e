// Command bigimage builds (once) and describes the large benchmark images
// of package examples/bigimage: the function image named by -image
// (python or node) and the cached image under it.
//
//	go run ./examples/cmd/bigimage [-dir /var/cache/fcd-bench] [-image python]
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
	name := flag.String("image", bigimage.Python, "function image: python or node")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	img, err := bigimage.Function(ctx, *name, *dir, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bigimage:", err)
		os.Exit(1)
	}
	d, _ := img.Digest()
	m, _ := img.Manifest()
	fmt.Printf("image %s\n", d)
	var total int64
	for i, l := range m.Layers {
		fmt.Printf("layer %d %s %d bytes\n", i, l.Digest, l.Size)
		total += l.Size
	}
	fmt.Printf("compressed %d bytes\n", total)
}
