package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/fcd-dev/fcd/internal/fsutil"
	"github.com/fcd-dev/fcd/puller/gzindex"
)

const imageUsage = `usage:
  fcctl image index LAYER.tar.gz [-o FILE] [-span BYTES] [-max-span BYTES]
      build the index-only acceleration index of a gzip layer
      (default output LAYER.tar.gz.gzindex)
  fcctl image cat --index FILE --blob LAYER.tar.gz [--digest sha256:HEX] PATH
      print one file of the layer, read through the index
`

// runImage runs "fcctl image ..." with args after "image".
func runImage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, imageUsage)
		return errors.New("image: missing subcommand")
	}
	switch args[0] {
	case "index":
		return runImageIndex(ctx, args[1:], stdout, stderr)
	case "cat":
		return runImageCat(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, imageUsage)
		return nil
	}
	fmt.Fprint(stderr, imageUsage)
	return fmt.Errorf("image: unknown subcommand %q", args[0])
}

// parseInterspersed parses flags that may come before or after the
// positional arguments, which it returns.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func runImageIndex(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("image index", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "index file to write (default LAYER.gzindex)")
	span := fs.Int64("span", 0, "file-start span in compressed bytes (0: default, -1: off)")
	maxSpan := fs.Int64("max-span", 0, "fixed span in compressed bytes (0: default, -1: off)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fmt.Fprint(stderr, imageUsage)
		return errors.New("image index: want exactly one layer file")
	}
	layer := pos[0]
	if *out == "" {
		*out = layer + ".gzindex"
	}
	f, err := os.Open(layer)
	if err != nil {
		return err
	}
	defer f.Close()
	start := time.Now()
	x, err := gzindex.Build(ctx, f, gzindex.Options{Span: *span, MaxSpan: *maxSpan})
	if err != nil {
		return fmt.Errorf("index %s: %w", layer, err)
	}
	took := time.Since(start)
	data, err := x.MarshalBinary()
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(*out, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n  digest       %s\n  entries      %d\n  checkpoints  %d\n  index        %d bytes (%.3f%% of %d uncompressed, %.3f%% of %d compressed)\n  built in     %v (%.0f MB/s uncompressed)\n",
		*out, x.Digest, len(x.Entries), x.Checkpoints(), len(data),
		100*float64(len(data))/float64(max(x.Size, 1)), x.Size,
		100*float64(len(data))/float64(max(x.CompressedSize, 1)), x.CompressedSize,
		took.Round(time.Millisecond), float64(x.Size)/1e6/took.Seconds())
	return nil
}

func runImageCat(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("image cat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	indexFile := fs.String("index", "", "index file made by fcctl image index")
	blob := fs.String("blob", "", "the layer blob the index was built from")
	digest := fs.String("digest", "", "the blob's digest (default: computed from --blob)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *indexFile == "" || *blob == "" {
		fmt.Fprint(stderr, imageUsage)
		return errors.New("image cat: want --index, --blob and one path")
	}
	data, err := os.ReadFile(*indexFile)
	if err != nil {
		return err
	}
	f, err := os.Open(*blob)
	if err != nil {
		return err
	}
	defer f.Close()
	if *digest == "" {
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return fmt.Errorf("hash %s: %w", *blob, err)
		}
		*digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
	}
	x, err := gzindex.Load(data, *digest)
	if err != nil {
		return fmt.Errorf("load %s: %w", *indexFile, err)
	}
	e, ok := x.Lookup(pos[0])
	if !ok {
		return fmt.Errorf("image cat: %s: no such file in the layer", pos[0])
	}
	r := gzindex.NewReader(x, gzindex.FileFetcher(f))
	b, err := r.ReadFile(ctx, e)
	if err != nil {
		return err
	}
	_, err = stdout.Write(b)
	return err
}
