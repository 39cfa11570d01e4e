package instance

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/containerd/containerd/images"
	examples "github.com/fcd-dev/fcd/examples/images"
)

// BenchmarkStartEcho measures the start phases of the echo image: cold
// (image removed before each start, so it is pulled and unpacked) and
// warm (image cached). It reports the median of each phase; run it with
// e.g. -benchtime=5x.
func BenchmarkStartEcho(b *testing.B) {
	e := setup(b)
	for _, cold := range []bool{true, false} {
		name := "warm"
		if cold {
			name = "cold"
		}
		b.Run(name, func(b *testing.B) {
			var pull, create, ready, total []time.Duration
			for range b.N {
				if cold {
					b.StopTimer()
					removeImages(b, e)
					b.StartTimer()
				}
				inst, err := e.mgr.Start(context.Background(), Spec{Function: "bench", Image: e.refs[examples.Echo], MemoryMB: 128})
				if err != nil {
					b.Fatal(err)
				}
				st := inst.StartStats()
				if st.Pull.Cached == cold {
					b.Fatalf("Pull.Cached: got %v, want %v", st.Pull.Cached, !cold)
				}
				pull = append(pull, st.Pull.Duration)
				create = append(create, st.Rootfs+st.Network+st.Create)
				ready = append(ready, st.Ready)
				total = append(total, st.Total)
				b.StopTimer()
				if err := inst.Stop(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(median(pull), "pull-ms")
			b.ReportMetric(median(create), "create+start-ms")
			b.ReportMetric(median(ready), "probe-to-ready-ms")
			b.ReportMetric(median(total), "total-ms")
		})
	}
}

func median(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2].Microseconds()) / 1000
}

func removeImages(b *testing.B, e *env) {
	ctx := e.mgr.nsCtx(context.Background())
	is := e.client.ImageService()
	list, err := is.List(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for i, img := range list {
		var opts []images.DeleteOpt
		if i == len(list)-1 {
			opts = append(opts, images.SynchronousDelete())
		}
		if err := is.Delete(ctx, img.Name, opts...); err != nil {
			b.Fatal(err)
		}
	}
}
