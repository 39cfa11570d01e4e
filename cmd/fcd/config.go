package main

import (
	"bufio"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fcd-dev/fcd/api"
	"github.com/fcd-dev/fcd/instance"
	"github.com/fcd-dev/fcd/proxy"
	"github.com/fcd-dev/fcd/puller"
	"github.com/fcd-dev/fcd/puller/accel"
	"github.com/fcd-dev/fcd/puller/lazy"
)

// Config is everything fcd can be told at start.
type Config struct {
	DataDir  string
	Listen   string
	LogLevel slog.Level
	// Region and AccountID name functions' ARNs and reach instances as
	// FC_REGION / FC_ACCOUNT_ID.
	Region, AccountID string
	// AccessKeyID and AccessKeySecret, when both set, replace the admin key
	// that fcd otherwise creates on first start.
	AccessKeyID, AccessKeySecret string
	ShutdownTimeout              time.Duration

	// Name prefixes everything fcd creates on the host (containerd
	// namespace, bridge, netns, cgroups), so several fcds can share it.
	Name                 string
	ContainerdAddress    string
	Subnet               string
	CNIPluginDir         string
	InstanceStartTimeout time.Duration
	// IdleTimeout is how long an on-demand instance may sit idle.
	IdleTimeout time.Duration
	// MemoryBudgetMB caps the memory of all running instances; 0 or less
	// is none. The -memory-budget flag defaults to the host's memory less
	// a reserve (defaultMemoryBudgetMB), so that a flood of requests meets
	// ResourceExhausted, not the host's OOM killer.
	MemoryBudgetMB int
	// DenyOutbound keeps instances from reaching anything beyond the
	// host. They never reach the host, each other, or link-local and
	// metadata addresses.
	DenyOutbound bool
	// MaxInstances caps the instances of one function; 0 is none beyond
	// the memory budget.
	MaxInstances int
	// Domain routes HTTP triggers by Host: <function>.<Domain>.
	Domain string
	// RegistryAddress is where the embedded registry listens; empty
	// disables it.
	RegistryAddress string
	// RegistryAddresses says which addresses fcd's registry connections
	// may not reach (-registry-refuse) and the exceptions
	// (-registry-allow); run allows the embedded registry too
	// (registryAddresses). No Refused: no check.
	RegistryAddresses puller.AddressPolicy
	// RegistryCredentials is a JSON file of logins for other registries.
	RegistryCredentials string
	// STSEndpoint is an STS-compatible service to assume roles at; empty
	// serves fcd's own on loopback.
	STSEndpoint string
	// DebugAddress, when set, serves net/http/pprof there (like
	// containerd's debug address); keep it on loopback.
	DebugAddress string
	// RegistryTimeout bounds a registry's silence during a pull or an
	// acceleration: the wait for response headers, and a body read's wait
	// for a byte (puller.BoundTransport). The whole pull is bounded by
	// InstanceStartTimeout.
	RegistryTimeout time.Duration
	// QueueSlack is how much longer than an instance start a request may
	// wait for a slot before it is throttled.
	QueueSlack time.Duration
	// AsyncWorkers and AsyncPerFunction bound the async events running
	// at once, host-wide and per function: async's fair share.
	AsyncWorkers, AsyncPerFunction int
	// RegistryHostsDir is a containerd hosts directory (certs.d layout)
	// for mirrors, plain HTTP and CAs; empty means HTTPS, and plain HTTP
	// to loopback registries.
	RegistryHostsDir string
	// Lazy starts accelerated images lazily over FUSE; LazyBackground
	// fetches the rest of a lazily mounted layer after its start-up
	// files; ChunkCacheMB is the budget of verified chunks on the host;
	// LazyRecordSettle is how long an image's first lazy start is
	// recorded after it is ready (its start-up record, in fcd.db).
	Lazy             bool
	LazyBackground   bool
	ChunkCacheMB     int
	LazyRecordSettle time.Duration
	// AccelRebakeDelay is how long after an image's first start-up record
	// its full-mode accelerated form is converted again with the record
	// baked into its prefetch order (negative: never).
	AccelRebakeDelay time.Duration
	// Runtime is the OCI runtime instances run with (runc, crun or a
	// path; "" lets instance.DefaultRuntime choose); ShimGroup runs them ShimGroupSize at a time under one
	// containerd shim; NetPool is how many network namespaces are attached
	// ahead of starts. See instance.Options.
	Runtime       string
	ShimGroup     bool
	ShimGroupSize int
	NetPool       int
	// GOMAXPROCS is how many OS threads run fcd's Go code at once; 0
	// leaves Go's default (the CPUs fcd may use, or $GOMAXPROCS).
	GOMAXPROCS int
	// Edge bounds what clients can make the frontend hold; SignedMetrics
	// requires /metrics to be signed (edgeflags.go).
	Edge          proxy.Limits
	SignedMetrics bool

	// listener, when set, is served instead of listening on Listen; tests
	// use it to learn the address before fcd starts.
	listener net.Listener
	// ready, when set, is closed once fcd serves.
	ready chan struct{}
	// noRuntime serves the control API only, without containerd; tests of
	// the API use it where root is not available.
	noRuntime bool
	// wrapConverter, when set, wraps the image converter; tests use it to
	// hold a conversion.
	wrapConverter func(accel.Converts) accel.Converts
}

// parseConfig reads flags from args and the FCD_* variables through getenv.
func parseConfig(args []string, getenv func(string) string) (Config, error) {
	var cfg Config
	fs := flag.NewFlagSet("fcd", flag.ContinueOnError)
	fs.StringVar(&cfg.DataDir, "data-dir", api.DefaultDataDir(), "directory for fcd's state (store, credentials, containerd, logs)")
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "address of the API and invoke endpoint")
	fs.StringVar(&cfg.Region, "region", "local", "region reported in ARNs and to instances")
	fs.StringVar(&cfg.AccountID, "account-id", "1000000000000000", "account id reported in ARNs and to instances")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a graceful shutdown may take")
	fs.StringVar(&cfg.Name, "name", "fcd", "name of this fcd on the host: prefixes its containerd namespace, bridge, netns and cgroups")
	fs.StringVar(&cfg.ContainerdAddress, "containerd-address", "", "use the containerd at this socket instead of supervising one")
	fs.StringVar(&cfg.Subnet, "subnet", "10.86.0.0/16", "IPv4 subnet of fcd's instance bridge")
	fs.StringVar(&cfg.CNIPluginDir, "cni-plugin-dir", "/usr/lib/cni", "directory of the CNI bridge, host-local and loopback plugins")
	fs.DurationVar(&cfg.InstanceStartTimeout, "instance-start-timeout", 120*time.Second, "how long an instance may take to accept on its port")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", 5*time.Minute, "idle time after which an on-demand instance is stopped")
	fs.IntVar(&cfg.MemoryBudgetMB, "memory-budget", 0, "MB of memory all instances together may use (0: the host's memory less max(1 GiB, 10%); -1: no limit)")
	fs.BoolVar(&cfg.DenyOutbound, "deny-outbound", false, "keep instances from reaching anything beyond this host (they never reach the host itself, each other, or metadata addresses)")
	fs.IntVar(&cfg.MaxInstances, "max-instances", 0, "instances one function may run at once (0: no limit but the memory budget)")
	fs.StringVar(&cfg.RegistryAddress, "registry-address", "127.0.0.1:5000", "address of the embedded registry (empty: none)")
	fs.StringVar(&cfg.RegistryCredentials, "registry-credentials", "", `JSON file of logins for other registries: {"host:port": {"username": "...", "password": "..."}}`)
	fs.StringVar(&cfg.STSEndpoint, "sts-endpoint", "", "URL of an STS-compatible AssumeRole service (empty: fcd's own, on loopback)")
	fs.StringVar(&cfg.DebugAddress, "debug-address", "", "serve /debug/pprof on this address (e.g. 127.0.0.1:6060); empty: off")
	fs.DurationVar(&cfg.RegistryTimeout, "registry-timeout", 30*time.Second, "how long a registry may stay silent during a pull or an acceleration (response headers, or a body read waiting for a byte)")
	fs.DurationVar(&cfg.QueueSlack, "queue-slack", 60*time.Second, "how much longer than -instance-start-timeout a request may wait for an instance slot")
	fs.IntVar(&cfg.AsyncWorkers, "async-workers", 16, "async events running at once, host-wide")
	fs.IntVar(&cfg.AsyncPerFunction, "async-per-function", 4, "async events of one function running at once (the rest of its slots stay for sync requests)")
	fs.StringVar(&cfg.RegistryHostsDir, "registry-hosts-dir", "", "containerd hosts directory (certs.d layout: <dir>/<host>/hosts.toml) for mirrors, plain HTTP, CAs; empty: HTTPS, plain HTTP on loopback")
	fs.BoolVar(&cfg.Lazy, "lazy", true, "start accelerated images (<tag>_accelerated) lazily over FUSE; false pulls every image whole")
	fs.BoolVar(&cfg.LazyBackground, "lazy-background", true, "after a lazily mounted layer's start-up files, fetch the rest of it in the background")
	fs.IntVar(&cfg.ChunkCacheMB, "chunk-cache-size", 20480, "MB of verified image chunks kept on the host for lazy pulls")
	fs.DurationVar(&cfg.LazyRecordSettle, "lazy-record-settle", lazy.DefaultRecordSettle, "how long the first lazy start of an image is recorded after it is ready; later cold starts prefetch what it read (negative: until ready)")
	fs.DurationVar(&cfg.AccelRebakeDelay, "accel-rebake-delay", accel.DefaultRebakeDelay, "how long after an image's first start-up record its full-mode accelerated image is converted again with the record put first, for hosts without the record (negative: never)")
	fs.StringVar(&cfg.Runtime, "runtime", "", "OCI runtime of instances: crun, runc or a path; empty: crun when it is installed and can run here (it starts instances 2-3x faster), else runc, logging why. A runtime named here that cannot run on this host (crun 1.8 refuses hybrid cgroup hosts with controllers in cgroup v2: run scripts/cgroup-controllers.sh) stops fcd at start-up")
	fs.BoolVar(&cfg.ShimGroup, "shim-group", true, "run instances -shim-group-size at a time under one containerd shim process (saves a shim spawn per start; a shim crash ends its group)")
	fs.IntVar(&cfg.ShimGroupSize, "shim-group-size", instance.DefaultShimGroupSize, "live instances per containerd shim with -shim-group")
	fs.IntVar(&cfg.NetPool, "net-pool", instance.DefaultNetPool, "network namespaces attached ahead of instance starts (0: none)")
	fs.IntVar(&cfg.GOMAXPROCS, "gomaxprocs", 0, "OS threads running fcd's Go code at once (0: Go's default, the CPUs fcd may use)")
	fs.StringVar(&cfg.Domain, "domain", "fcd.localhost", "HTTP triggers answer at <function>.<domain>")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	edge := cfg.edgeFlags(fs)
	registryAddrs := cfg.registryAddressFlags(fs)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if err := edge(); err != nil {
		return cfg, err
	}
	if err := registryAddrs(); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.RegistryTimeout <= 0 {
		return cfg, fmt.Errorf("-registry-timeout %s: want more than 0", cfg.RegistryTimeout)
	}
	if cfg.GOMAXPROCS < 0 {
		return cfg, fmt.Errorf("-gomaxprocs %d: want 0 (Go's default) or more", cfg.GOMAXPROCS)
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(*level)); err != nil {
		return cfg, fmt.Errorf("-log-level: %w", err)
	}
	if cfg.MemoryBudgetMB == 0 {
		b, err := os.ReadFile("/proc/meminfo")
		if err != nil {
			return cfg, fmt.Errorf("-memory-budget: read the host's memory: %w (set the flag)", err)
		}
		if cfg.MemoryBudgetMB, err = defaultMemoryBudgetMB(string(b)); err != nil {
			return cfg, fmt.Errorf("-memory-budget: %w (set the flag)", err)
		}
	}
	cfg.AccessKeyID = getenv("FCD_ACCESS_KEY_ID")
	cfg.AccessKeySecret = getenv("FCD_ACCESS_KEY_SECRET")
	if (cfg.AccessKeyID == "") != (cfg.AccessKeySecret == "") {
		return cfg, fmt.Errorf("set both FCD_ACCESS_KEY_ID and FCD_ACCESS_KEY_SECRET, or neither")
	}
	return cfg, nil
}

// defaultMemoryBudgetMB is the memory instances may use together unless
// told otherwise: the host's MemTotal (from meminfo, /proc/meminfo's
// text) less a reserve for the host, containerd, shims and fcd itself of
// 10% or 1 GiB, whichever is more. At least 128 MB, FC's smallest
// function, remains.
func defaultMemoryBudgetMB(meminfo string) (int, error) {
	s := bufio.NewScanner(strings.NewReader(meminfo))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 2 || f[0] != "MemTotal:" {
			continue
		}
		kb, err := strconv.Atoi(f[1])
		if err != nil || len(f) > 2 && f[2] != "kB" {
			return 0, fmt.Errorf("meminfo: bad MemTotal line %q", s.Text())
		}
		total := kb >> 10
		reserve := max(1024, total/10)
		return max(total-reserve, 128), nil
	}
	return 0, fmt.Errorf("meminfo: no MemTotal")
}
