package bigimage

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sirupsen/logrus"

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
	// distribution logs every request through logrus at info.
	logrus.SetLevel(logrus.WarnLevel)
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
		Logger:      benchLogger(),
	})
	type run struct {
		res           accel.Result
		duration, cpu time.Duration
	}
	var usize int64
	runs := map[accel.Mode][]run{}
	i := 0
	for b.Loop() {
		for _, mode := range benchModes() {
			tag, _ := name.NewTag(fmt.Sprintf("%s:%s-%d", repo, mode, i), name.Insecure)
			if err := remote.Tag(tag, img, auth); err != nil {
				b.Fatal(err)
			}
			start, cpu0 := time.Now(), cpuTime()
			res, err := conv.Convert(ctx, accel.Request{Ref: tag.String(), Mode: mode, Prefetch: benchPrefetch()})
			if err != nil {
				b.Fatal(err)
			}
			d, cpu := time.Since(start), cpuTime()-cpu0
			if mode == accel.ModeIndexOnly {
				usize = res.UncompressedSize
			}
			runs[mode] = append(runs[mode], run{res, d, cpu})
		}
		i++
	}
	if usize == 0 {
		usize = tarSize(b, img)
	}
	gb := float64(usize) / 1e9
	m, _ := img.Manifest()
	var csize int64
	for _, l := range m.Layers {
		csize += l.Size
	}
	fmt.Printf("\nimage: %.2f GB uncompressed in %d layers, %.2f GB compressed; GOMAXPROCS %d\n",
		gb, len(m.Layers), float64(csize)/1e9, runtime.GOMAXPROCS(0))
	fmt.Printf("%-11s %10s %8s %12s %14s %9s\n", "mode", "time", "s/GB", "CPU-s/GB", "accelerated", "% orig")
	for _, mode := range []accel.Mode{accel.ModeFull, accel.ModeIndexOnly} {
		if len(runs[mode]) == 0 {
			continue
		}
		for _, r := range runs[mode] {
			pct := 100 * float64(r.res.TargetSize) / float64(r.res.SourceSize)
			spg := r.duration.Seconds() / gb
			fmt.Printf("%-11s %10s %8.2f %12.2f %11.1f MB %8.2f%%\n", mode, r.duration.Round(10*time.Millisecond), spg, r.cpu.Seconds()/gb, float64(r.res.TargetSize)/1e6, pct)
		}
		last := runs[mode][len(runs[mode])-1]
		b.ReportMetric(last.duration.Seconds()/gb, string(mode)+"-s/GB")
		b.ReportMetric(100*float64(last.res.TargetSize)/float64(last.res.SourceSize), string(mode)+"-%size")
	}
}

// tarSize is the sum of img's layers' uncompressed sizes, read whole.
func tarSize(b *testing.B, img v1.Image) int64 {
	layers, err := img.Layers()
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			b.Fatal(err)
		}
		k, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			b.Fatal(err)
		}
		n += k
	}
	return n
}

// benchModes are the modes to run: FCD_BENCH_MODES ("full", "index-only"),
// default both. Index-only goes first: it measures the source's tar size.
func benchModes() []accel.Mode {
	switch os.Getenv("FCD_BENCH_MODES") {
	case "full":
		return []accel.Mode{accel.ModeFull}
	case "index-only":
		return []accel.Mode{accel.ModeIndexOnly}
	}
	return []accel.Mode{accel.ModeIndexOnly, accel.ModeFull}
}

// benchLogger logs the converter's stages to stderr when FCD_BENCH_LOG is
// set.
func benchLogger() *slog.Logger {
	if os.Getenv("FCD_BENCH_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// benchPrefetch is the prefetch list: a few start-up paths of the Python
// image, or none when FCD_BENCH_PREFETCH=none (full mode then streams
// layers instead of reordering them from a file).
func benchPrefetch() []string {
	if os.Getenv("FCD_BENCH_PREFETCH") == "none" {
		return nil
	}
	return []string{"/usr/bin/python3.11", "/usr/lib/python3/dist-packages/numpy/"}
}

// cpuTime is the CPU time (user and system) of this process so far: the
// converter and the registry it talks to, without other processes on the
// shared machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
