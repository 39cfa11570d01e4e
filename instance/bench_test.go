package instance

import (
	"context"
	"math"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/containerd/containerd/images"
	examples "github.com/fcd-dev/fcd/examples/images"
)

// BenchmarkStartEcho measures the start phases of the echo image: cold
// (image removed before each start, so it is pulled and unpacked) and
// warm (image cached). It reports the median of each phase and the median
// and 99th percentile of create→ready (everything after the image is
// prepared); run it with e.g. -benchtime=20x.
//
// warm runs once per runtime, side by side on the same Manager: runc;
// crun compiling the seccomp profile on every create (crun-compile); and
// crun given the filter it compiled for the first start (crun). The crun
// runs are skipped, saying why, where CheckRuntime refuses crun.
func BenchmarkStartEcho(b *testing.B) {
	e := setup(b)
	b.Run("cold", func(b *testing.B) { benchStarts(b, e, true) })
	b.Run("warm", func(b *testing.B) {
		// Run alone, warm must pull the image once first.
		startStop(b, e)
		defer useRuntime(e.mgr, e.mgr.opts.Runtime, e.mgr.seccomp != nil)
		for _, v := range []struct {
			name    string
			runtime string
			filters bool
			keep    bool
		}{
			{"runc", RuntimeRunc, false, false},
			{"crun-compile", RuntimeCrun, false, false},
			{"crun", RuntimeCrun, true, false},
			{"crun-busy", RuntimeCrun, true, true},
		} {
			b.Run(v.name, func(b *testing.B) {
				if err := CheckRuntime(v.runtime); err != nil {
					b.Skip(err)
				}
				if _, err := exec.LookPath(v.runtime); err != nil {
					b.Skip(err)
				}
				useRuntime(e.mgr, v.runtime, v.filters)
				if v.filters {
					// The first start teaches the filter.
					startStop(b, e)
					waitFilter(b, e.mgr)
				}
				if v.keep {
					// Another instance runs meanwhile, as on a busy host:
					// with ShimGroup its shim serves the starts.
					other, err := e.mgr.Start(context.Background(), Spec{Function: "bench-other", Image: e.refs[examples.Echo], MemoryMB: 128})
					if err != nil {
						b.Fatal(err)
					}
					defer other.Stop(context.Background())
				}
				b.ResetTimer()
				benchStarts(b, e, false)
			})
		}
	})
}

// useRuntime switches m, idle between benchmarks, to runtime, with or
// without crun's compiled seccomp filters.
func useRuntime(m *Manager, runtime string, filters bool) {
	m.opts.Runtime = runtime
	m.seccomp = nil
	if filters {
		m.seccomp = newSeccompFilters()
	}
}

// waitFilter waits until m learnt a seccomp filter (in the background,
// after the first start).
func waitFilter(t testing.TB, m *Manager) {
	t.Helper()
	select {
	case <-m.seccomp.first:
	case <-time.After(30 * time.Second):
		t.Fatal("no seccomp filter learnt from the first crun start in 30 s")
	}
}

func startStop(b *testing.B, e *env) {
	inst, err := e.mgr.Start(context.Background(), Spec{Function: "bench", Image: e.refs[examples.Echo], MemoryMB: 128})
	if err != nil {
		b.Fatal(err)
	}
	if err := inst.Stop(context.Background()); err != nil {
		b.Fatal(err)
	}
}

func benchStarts(b *testing.B, e *env, cold bool) {
	var pull, rootfs, network, container, task, taskStart, create, ready, total, toReady []time.Duration
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
		rootfs = append(rootfs, st.Rootfs)
		network = append(network, st.Network)
		create = append(create, st.Create)
		container = append(container, st.Container)
		task = append(task, st.Task)
		taskStart = append(taskStart, st.TaskStart)
		toReady = append(toReady, st.Rootfs+st.Network+st.Create+st.Ready)
		ready = append(ready, st.Ready)
		total = append(total, st.Total)
		b.StopTimer()
		if err := inst.Stop(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(median(pull), "pull-ms")
	b.ReportMetric(median(rootfs), "rootfs-ms")
	b.ReportMetric(median(network), "network-ms")
	b.ReportMetric(median(create), "create+start-ms")
	b.ReportMetric(median(container), "container-ms")
	b.ReportMetric(median(task), "task-ms")
	b.ReportMetric(median(taskStart), "task-start-ms")
	b.ReportMetric(median(ready), "probe-to-ready-ms")
	b.ReportMetric(median(toReady), "create-to-ready-p50-ms")
	b.ReportMetric(percentile(toReady, 0.99), "create-to-ready-p99-ms")
	b.ReportMetric(median(total), "total-ms")
}

func median(d []time.Duration) float64 { return percentile(d, 0.5) }

// percentile returns the nearest-rank p-th percentile of d in ms.
func percentile(d []time.Duration, p float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	k := int(math.Ceil(p*float64(len(s)))) - 1
	return float64(s[max(k, 0)].Microseconds()) / 1000
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
