package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/instance"
	"github.com/fcd-dev/fcd/proxy"
	"github.com/fcd-dev/fcd/puller/accel"
	"github.com/fcd-dev/fcd/scheduler"
	"github.com/fcd-dev/fcd/store"
)

// The adapters here join packages that do not import each other: the
// scheduler starts instances through instance.Manager, and the proxy leases
// them through the scheduler.

// starter starts instances of a function on containerd, with registry
// credentials from the function's role. The puller meters the image pull.
type starter struct {
	manager  *instance.Manager
	platform *platform
	cfg      Config
	log      *slog.Logger
	accel    *accel.Service // nil: images run as given
	lazy     bool           // index-only images can run (lazy pulls are on)
	// local reports whether an image (by manifest digest) is unpacked on
	// this host already; nil: never assumed.
	local func(context.Context, digest.Digest) bool
}

var _ scheduler.Starter = (*starter)(nil)

func (s *starter) Start(ctx context.Context, fn scheduler.Function) (scheduler.Instance, error) {
	f := fn.Config.(*api.Function)
	spec := instanceSpec(f, s.cfg)
	image, err := s.image(ctx, f, spec.Image)
	if err != nil {
		return nil, err
	}
	spec.Image = image
	spec.Credentials = withRegistryAuth(s.platform.registryCredentials(f.Role), f)
	spec.Role = f.Role
	if f.Role != "" && f.InjectsEnv() {
		// DESIGN promises the role's keys in the instance's environment,
		// as FC gives them; the request headers carry fresh ones.
		id, secret, token, err := s.platform.RoleCredentials(ctx, f.Role)
		if err != nil {
			return nil, fmt.Errorf("assume role %s: %w", f.Role, err)
		}
		spec.RoleKeys = instance.Keys{AccessKeyID: id, AccessKeySecret: secret, SecurityToken: token}
	}
	inst, err := s.manager.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	return inst, nil
}

// instanceSpec maps an FC function onto an instance.
func instanceSpec(f *api.Function, cfg Config) instance.Spec {
	spec := instance.Spec{
		Function:  f.FunctionName,
		Env:       f.EnvironmentVariables,
		MemoryMB:  int(f.MemorySize),
		CPU:       float64(f.CPU),
		DiskMB:    int(f.DiskSize),
		Timeout:   time.Duration(f.Timeout) * time.Second,
		Handler:   f.Handler,
		Region:    cfg.Region,
		AccountID: cfg.AccountID,
		Qualifier: "LATEST",
	}
	if f.VersionID != "" {
		// Instances run one version; FC_QUALIFIER names it.
		spec.Qualifier = f.VersionID
	}
	if f.CustomDNS != nil {
		spec.ResolvConf = f.CustomDNS.ResolvConf()
	}
	spec.Offline = f.InternetAccess != nil && !*f.InternetAccess
	if cc := f.CustomContainerConfig; cc != nil {
		spec.Image = cc.Image
		spec.Port = int(cc.Port)
		if len(cc.Entrypoint) > 0 {
			spec.Entrypoint = cc.Entrypoint
		}
		if len(cc.Command) > 0 {
			spec.Command = cc.Command
		}
		if hc := cc.HealthCheckConfig; hc != nil {
			spec.HealthCheck = &instance.HealthCheck{
				HTTPGetURL:       hc.HTTPGetURL,
				InitialDelay:     time.Duration(hc.InitialDelaySeconds) * time.Second,
				Period:           time.Duration(hc.PeriodSeconds) * time.Second,
				Timeout:          time.Duration(hc.TimeoutSeconds) * time.Second,
				FailureThreshold: int(hc.FailureThreshold),
				SuccessThreshold: int(hc.SuccessThreshold),
			}
		}
	}
	if lc := f.InstanceLifecycleConfig; lc != nil {
		if h := lc.Initializer; h != nil && h.Handler != "" {
			spec.Initializer, spec.InitializerTimeout = true, time.Duration(h.Timeout)*time.Second
		}
		if h := lc.PreStop; h != nil && h.Handler != "" {
			spec.PreStop, spec.PreStopTimeout = true, time.Duration(h.Timeout)*time.Second
		}
	}
	return spec
}

// pools is the scheduler as the proxy sees it.
type pools struct {
	s            *scheduler.Scheduler
	maxInstances int
}

var (
	_ proxy.Scheduler        = (*pools)(nil)
	_ proxy.Pools            = (*pools)(nil)
	_ proxy.StartErrors      = (*pools)(nil)
	_ proxy.SessionScheduler = (*pools)(nil)
)

func (p *pools) function(f *api.Function) scheduler.Function {
	rev := strconv.FormatUint(f.Revision, 10)
	if f.VersionID != "" {
		// A published version never changes.
		rev = "v" + f.VersionID
	}
	fn := scheduler.Function{
		Name:         f.FunctionName,
		Version:      f.VersionID,
		Revision:     rev,
		MemoryMB:     int(f.MemorySize),
		Concurrency:  int(f.InstanceConcurrency),
		MaxInstances: p.maxInstances,
		IdleTimeout:  time.Duration(f.IdleTimeout) * time.Second,
		// FC's disableOndemand: provisioned instances only.
		ProvisionedOnly: f.DisableOndemand,
		Config:          f,
	}
	if sc, ok := f.Session(); ok {
		fn.SessionAffinity = true
		fn.SessionIdleTimeout = time.Duration(sc.IdleTimeout) * time.Second
		fn.SessionTTL = time.Duration(sc.TTL) * time.Second
	}
	return fn
}

func (p *pools) AcquireSession(ctx context.Context, f *api.Function, key string) (proxy.Lease, error) {
	l, err := p.s.AcquireSession(ctx, p.function(f), key)
	if err != nil {
		return nil, err
	}
	return lease{l}, nil
}

func (p *pools) Acquire(ctx context.Context, f *api.Function) (proxy.Lease, error) {
	l, err := p.s.Acquire(ctx, p.function(f))
	if err != nil {
		return nil, err
	}
	return lease{l}, nil
}

func (p *pools) Update(f *api.Function)                    { p.s.Update(p.function(f)) }
func (p *pools) Remove(name string)                        { p.s.Remove(name) }
func (p *pools) SetProvisioned(f *api.Function, n int)     { p.s.SetProvisioned(p.function(f), n) }
func (p *pools) Provisioned(name string) (target, cur int) { return p.s.Provisioned(name) }
func (p *pools) StartError(name string) error              { return p.s.StartError(name) }

var _ proxy.VersionPools = (*pools)(nil)

func (p *pools) RemoveVersion(name, version string)     { p.s.RemoveVersion(name, version) }
func (p *pools) SetConcurrencyLimit(name string, n int) { p.s.SetConcurrencyLimit(name, n) }
func (p *pools) ProvisionedVersion(name, version string) (target, cur int) {
	return p.s.ProvisionedVersion(name, version)
}

func (p *pools) Instances(name string) []proxy.InstanceInfo {
	infos := p.s.Instances(name)
	out := make([]proxy.InstanceInfo, len(infos))
	for i, in := range infos {
		out[i] = proxy.InstanceInfo{ID: in.ID, VersionID: in.Version, Created: in.Created, Busy: in.Busy, Draining: in.Draining}
	}
	return out
}

// lease is a scheduler lease as the proxy sees it. Its instances are the
// starter's, *instance.Instance.
type lease struct{ *scheduler.Lease }

func (l lease) Addr() string       { return l.Instance().Addr() }
func (l lease) InstanceID() string { return l.Instance().ID() }

// FirstResponse completes the start record of a cold start's first
// request; for every other request it is one atomic load.
func (l lease) FirstResponse(arrived time.Time) {
	l.Instance().(*instance.Instance).FirstResponse(arrived)
}

// Exited says how the instance's process ended when it did by itself.
func (l lease) Exited(ctx context.Context) error {
	return l.Instance().(*instance.Instance).ExitError(ctx)
}

func (l lease) RequestLog(collect bool) proxy.RequestLog {
	return l.Instance().(*instance.Instance).RequestLog(collect)
}

// The store is the proxy's metadata store.
var (
	_ proxy.FunctionStore  = (*store.Store)(nil)
	_ proxy.ProvisionStore = (*store.Store)(nil)
	_ proxy.VersionStore   = (*store.Store)(nil)
)

// instanceStopping passes the scheduler's stopping instances on to the
// proxy, which exists only once the scheduler does.
type instanceStopping struct{ p atomic.Pointer[proxy.Server] }

func (s *instanceStopping) set(p *proxy.Server) { s.p.Store(p) }

func (s *instanceStopping) notify(id string) {
	if p := s.p.Load(); p != nil {
		p.InstanceStopping(id)
	}
}

// The proxy maps start failures and exits to FC errors by what it
// declares of them.
var (
	_ proxy.StartFailure = (*instance.StartError)(nil)
	_ proxy.InstanceExit = (*instance.ExitError)(nil)
)

// poolCollector exports the scheduler's per-function stats.
type poolCollector struct{ s *scheduler.Scheduler }

var (
	descInstances  = prometheus.NewDesc("fcd_instances", "Ready instances of a function.", []string{"function"}, nil)
	descBusy       = prometheus.NewDesc("fcd_instances_busy", "Instances serving at least one request.", []string{"function"}, nil)
	descStarting   = prometheus.NewDesc("fcd_instances_starting", "Cold starts in flight.", []string{"function"}, nil)
	descQueued     = prometheus.NewDesc("fcd_queue_depth", "Requests waiting for an instance slot.", []string{"function"}, nil)
	descColdStarts = prometheus.NewDesc("fcd_cold_starts_total", "Cold starts begun.", []string{"function"}, nil)
	descColdFails  = prometheus.NewDesc("fcd_cold_start_failures_total", "Cold starts that failed.", []string{"function"}, nil)
	descColdSecs   = prometheus.NewDesc("fcd_cold_start_duration_seconds", "Duration of successful cold starts (pull, container, probe).", []string{"function"}, nil)
	descCanceled   = prometheus.NewDesc("fcd_client_closed_total", "Requests whose client went away while they waited for an instance (ClientClosedRequest).", []string{"function"}, nil)
	descThrottled  = prometheus.NewDesc("fcd_throttled_total", "Requests refused for lack of capacity.", []string{"function"}, nil)
	descEvicted    = prometheus.NewDesc("fcd_instances_evicted_total", "Instances evicted because they died or failed a request.", []string{"function"}, nil)
)

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInstances, descBusy, descStarting, descQueued, descColdStarts, descColdFails, descColdSecs, descCanceled, descThrottled, descEvicted} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.s.Stats() {
		// A published version's pool is labelled function="<name>:<version>".
		label := st.Function
		if st.Version != "" {
			label += ":" + st.Version
		}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, label)
		}
		counter := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, label)
		}
		gauge(descInstances, float64(st.Instances))
		gauge(descBusy, float64(st.Busy))
		gauge(descStarting, float64(st.Starting))
		gauge(descQueued, float64(st.Queued))
		counter(descColdStarts, float64(st.ColdStarts))
		counter(descColdFails, float64(st.ColdStartFailures))
		buckets := make(map[float64]uint64, len(st.ColdStartBuckets))
		for _, b := range st.ColdStartBuckets {
			buckets[b.UpperBound] = b.Count
		}
		ch <- prometheus.MustNewConstHistogram(descColdSecs, st.ColdStartCount, st.ColdStartSeconds, buckets, label)
		counter(descCanceled, float64(st.Canceled))
		counter(descThrottled, float64(st.Throttled))
		counter(descEvicted, float64(st.Evicted))
	}
}

// startCollector exports the instance manager's start phases.
type startCollector struct{ m *instance.Manager }

var descStartPhase = prometheus.NewDesc("fcd_instance_start_phase_seconds",
	"Duration of each phase of successful instance starts: pull (and its steps resolve, auth, index, fetch, mount, prefetch where taken), rootfs, network, container, task, task_start, probe, first_response.",
	[]string{"phase"}, nil)

func (c startCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descStartPhase }

func (c startCollector) Collect(ch chan<- prometheus.Metric) {
	for _, h := range c.m.StartHistograms() {
		ch <- prometheus.MustNewConstHistogram(descStartPhase, h.Count, h.Sum, h.Buckets, h.Phase)
	}
}

// coldStarts serves the instance manager's start records to the proxy.
type coldStarts struct{ m *instance.Manager }

var _ proxy.ColdStartReader = coldStarts{}

func (c coldStarts) ColdStarts(function string, n int) []api.ColdStart {
	recs := c.m.ColdStarts(function, n)
	out := make([]api.ColdStart, 0, len(recs))
	for _, r := range recs {
		cs := api.ColdStart{
			InstanceID:      r.Instance,
			Runtime:         r.Runtime,
			StartedAt:       r.At,
			TotalMs:         millis(r.Stats.Total),
			Cached:          r.Stats.Pull.Cached,
			FetchedBytes:    r.Stats.Pull.BytesFetched,
			FirstResponseMs: millis(r.Stats.FirstResponse),
		}
		for _, p := range r.Stats.Phases() {
			cs.Phases = append(cs.Phases, api.ColdStartPhase{Name: p.Name, AtMs: millis(p.Offset), Ms: millis(p.Duration), Bytes: p.Bytes})
		}
		out = append(out, cs)
	}
	return out
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
