package bigimage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/fcd-dev/fcd/internal/testenv"
	"github.com/fcd-dev/fcd/puller/accel"
	"github.com/fcd-dev/fcd/registry"
)

// BenchmarkAccelerate converts the big image, pushed to fcd's embedded
// registry (distribution, filesystem storage), in both modes, and reports
// side by side the conversion time per GB of uncompressed layers (the
// source's tar bytes) and the accelerated size as a percentage of the
// original's compressed layers. Each iteration converts a fresh tag, so
// nothing is reused. The image is built on first use (see Load);
// FCD_BENCH_DIR overrides its cache directory.
//
//	go test ./examples/bigimage -run '^$' -bench Accelerate -benchtime 1x -timeout 60m
func BenchmarkAccelerate(b *testing.B) {
	ctx := context.Background()
	img, err := Load(ctx, os.Getenv("FCD_BENCH_DIR"), os.Stderr)
	testenv.Require(b, err == nil, fmt.Sprintf("big image: %v", err))
	const id, secret = "BENCHADMIN", "bench-secret"
	reg, err := registry.Start(ctx, registry.Options{Dir: filepath.Join(b.TempDir(), "registry"), AdminAccessKeyID: id, AdminAccessKeySecret: secret})
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close(ctx)
	auth := remote.WithAuth(&authn.Basic{Username: id, Password: secret})
	repo := reg.Addr() + "/bench/python"
	base, _ := name.NewTag(repo+":base", name.Insecure)
	if err := remote.Write(base, img, auth); err != nil {
		b.Fatal(err)
	}
	conv := accel.NewConverter(accel.Options{
		Credentials: func(string) (string, string, error) { return id, secret, nil },
		TempDir:     b.TempDir(),
	})
	type run struct {
		res      accel.Result
		duration time.Duration
	}
	var usize int64
	runs := map[accel.Mode][]run{}
	i := 0
	for b.Loop() {
		for _, mode := range []accel.Mode{accel.ModeIndexOnly, accel.ModeFull} {
			tag, _ := name.NewTag(fmt.Sprintf("%s:%s-%d", repo, mode, i), name.Insecure)
			if err := remote.Tag(tag, img, auth); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			res, err := conv.Convert(ctx, accel.Request{Ref: tag.String(), Mode: mode, Prefetch: []string{"/usr/bin/python3.11", "/usr/lib/python3/dist-packages/numpy/"}})
			if err != nil {
				b.Fatal(err)
			}
			d := time.Since(start)
			if mode == accel.ModeIndexOnly {
				usize = res.UncompressedSize
			}
			runs[mode] = append(runs[mode], run{res, d})
		}
		i++
	}
	gb := float64(usize) / 1e9
	fmt.Printf("\nimage: %.2f GB uncompressed in %d layers, %.2f GB compressed; GOMAXPROCS %d\n",
		gb, layerCount(b, img), float64(runs[accel.ModeFull][0].res.SourceSize)/1e9, runtime.GOMAXPROCS(0))
	fmt.Printf("%-11s %10s %8s %14s %9s\n", "mode", "time", "s/GB", "accelerated", "% orig")
	for _, mode := range []accel.Mode{accel.ModeFull, accel.ModeIndexOnly} {
		for _, r := range runs[mode] {
			pct := 100 * float64(r.res.TargetSize) / float64(r.res.SourceSize)
			spg := r.duration.Seconds() / gb
			fmt.Printf("%-11s %10s %8.2f %11.1f MB %8.2f%%\n", mode, r.duration.Round(10*time.Millisecond), spg, float64(r.res.TargetSize)/1e6, pct)
		}
		last := runs[mode][len(runs[mode])-1]
		b.ReportMetric(last.duration.Seconds()/gb, string(mode)+"-s/GB")
		b.ReportMetric(100*float64(last.res.TargetSize)/float64(last.res.SourceSize), string(mode)+"-%size")
	}
}

func layerCount(b *testing.B, img v1.Image) int {
	m, err := img.Manifest()
	if err != nil {
		b.Fatal(err)
	}
	return len(m.Layers)
}
