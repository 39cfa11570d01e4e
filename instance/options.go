package instance

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults for Options and Spec fields left zero.
const (
	DefaultName           = "fcd"
	DefaultCNIPluginDir   = "/usr/lib/cni"
	DefaultStartTimeout   = 120 * time.Second
	DefaultStopGrace      = 10 * time.Second
	DefaultLogMaxSize     = 16 << 20
	DefaultLogMaxFiles    = 4
	DefaultPort           = 9000
	DefaultMemoryMB       = 512
	DefaultDiskMB         = 512
	DefaultPidsLimit      = 1024
	DefaultHookTimeout    = 30 * time.Second
	DefaultPreStopTimeout = 10 * time.Second
	DefaultNetPool        = 2
	DefaultDiskPool       = 2
)

// DefaultSubnet is the bridge subnet used when Options.Subnet is zero.
var DefaultSubnet = netip.MustParsePrefix("10.86.0.0/16")

var validName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,11}$`)

// Options configures a Manager. The zero value of each field means its
// default, except DataDir, which is required.
type Options struct {
	// Name prefixes everything the Manager creates on the host: containerd
	// namespace, bridge (<Name>0), netns directory (/run/fcd/<Name>),
	// cgroup parent (/<Name>), CNI network name. Cleanup touches only
	// what carries this name, so several fcds can share a host. Lower
	// case letters, digits and '-', at most 12 bytes; "" means "fcd".
	Name string
	// DataDir holds instances' disk files, logs and CNI state. Required.
	DataDir string
	// Subnet is the bridge's IPv4 subnet; the zero value means
	// DefaultSubnet. NewManager refuses one that overlaps a host route.
	Subnet netip.Prefix
	// CNIPluginDir holds the bridge, host-local and loopback plugins; ""
	// means /usr/lib/cni.
	CNIPluginDir string
	// StartTimeout bounds the image's Prepare, and then the wait for an
	// instance to accept on its port; 0 means 120 s.
	StartTimeout time.Duration
	// StopGrace is the time between SIGTERM and SIGKILL on Stop; 0 means
	// 10 s.
	StopGrace time.Duration
	// LogMaxSize is the size at which a function's log file is rotated; 0
	// means 16 MiB. LogMaxFiles rotated files are kept; 0 means 4.
	LogMaxSize  int64
	LogMaxFiles int
	// DenyOutbound, when true, keeps instances from reaching anything
	// beyond the host; false lets them reach the outside world. Either
	// way they never reach the host, one another, or link-local and
	// metadata addresses (see firewall).
	DenyOutbound bool
	// TotalPids caps the processes of all instances together (pids.max of
	// their parent cgroup; each instance has DefaultPidsLimit of its
	// own); 0 means half of the host's kernel.pid_max.
	TotalPids int
	// MaxImageSize limits an image's uncompressed size; 0 means 10 GiB.
	MaxImageSize int64
	// Images prepares the images instances run on (package puller's
	// Puller, or a lazy one). Required.
	Images Images
	// Runtime is the OCI runtime binary the runc v2 shim runs containers
	// with: "runc", "crun", or a path to a compatible one. "" means
	// DefaultRuntime: crun when it is installed and this host's cgroups
	// let it run, else runc, and the Manager logs why crun was passed
	// over. crun creates and starts a container in a fraction of runc's
	// time (issue 17 measured 19 ms against 75 ms for a bare run), and
	// with crun the Manager hands each create the seccomp filter crun
	// compiled for the first instance (see seccompFilters). A runtime
	// named here is never replaced: NewManager fails when it is missing
	// or CheckRuntime refuses it (crun 1.8, Debian 12, refuses hosts with
	// cgroups in hybrid mode whose unified hierarchy holds a controller).
	// crun does not know runtime-spec 1.2 (see crunOCIVersion).
	Runtime string
	// ShimGroup, when true, runs instances ShimGroupSize at a time under
	// one runc v2 shim process instead of one shim each, which saves
	// spawning a shim per start while the group has a live instance; a
	// shim crash then takes its group's instances with it. false means
	// one shim per instance.
	ShimGroup bool
	// ShimGroupSize bounds how many live instances share a shim with
	// ShimGroup; 0 means DefaultShimGroupSize.
	ShimGroupSize int
	// NetPool is how many network namespaces are kept attached to the
	// bridge ahead of starts, each used by one instance only; 0 means
	// DefaultNetPool, a negative value none. The pool fills from the first
	// Start on and is emptied by Close.
	NetPool int
	// DiskPool is how many formatted writable-layer disk files of each
	// disk size in use are kept ready under <DataDir>/disks, so a start
	// skips mkfs.ext4; 0 means DefaultDiskPool, a negative value none.
	// The pool fills from the first Start on; its files outlive the
	// Manager and serve the next one.
	DiskPool int
	// Logger receives the Manager's records; nil means silence.
	Logger *slog.Logger
}

// Runtimes known by name; any other Options.Runtime must be a path.
const (
	RuntimeRunc = "runc"
	RuntimeCrun = "crun"
)

func (o Options) withDefaults() (Options, error) {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if !validName.MatchString(o.Name) {
		return o, fmt.Errorf("instance: invalid name %q: want %s", o.Name, validName)
	}
	if o.DataDir == "" {
		return o, errors.New("instance: Options.DataDir is required")
	}
	if !o.Subnet.IsValid() {
		o.Subnet = DefaultSubnet
	}
	if !o.Subnet.Addr().Is4() || o.Subnet.Bits() > 28 {
		return o, fmt.Errorf("instance: subnet %s: want an IPv4 prefix of at most /28", o.Subnet)
	}
	o.Subnet = o.Subnet.Masked()
	if o.CNIPluginDir == "" {
		o.CNIPluginDir = DefaultCNIPluginDir
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.StopGrace == 0 {
		o.StopGrace = DefaultStopGrace
	}
	if o.LogMaxSize == 0 {
		o.LogMaxSize = DefaultLogMaxSize
	}
	if o.LogMaxFiles == 0 {
		o.LogMaxFiles = DefaultLogMaxFiles
	}
	if o.Images == nil {
		return o, errors.New("instance: Options.Images is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Runtime == "" {
		var passed error
		if o.Runtime, passed = DefaultRuntime(); passed != nil {
			o.Logger.Warn("instances run with runc: crun passed over", "reason", passed)
		} else {
			o.Logger.Info("instances run with crun")
		}
	}
	if _, err := exec.LookPath(o.Runtime); err != nil {
		return o, fmt.Errorf("instance: runtime %q: %w", o.Runtime, err)
	}
	if err := CheckRuntime(o.Runtime); err != nil {
		return o, fmt.Errorf("instance: runtime %q: %w", o.Runtime, err)
	}
	if o.DiskPool == 0 {
		o.DiskPool = DefaultDiskPool
	}
	if o.ShimGroupSize <= 0 {
		o.ShimGroupSize = DefaultShimGroupSize
	}
	if o.NetPool == 0 {
		o.NetPool = DefaultNetPool
	}
	if o.TotalPids == 0 {
		o.TotalPids = defaultTotalPids()
	}
	return o, nil
}

// defaultTotalPids is half of kernel.pid_max, so instances together can
// never take the last process IDs the host needs; 16384 when it cannot be
// read.
func defaultTotalPids() int {
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		return 16384
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 2 {
		return 16384
	}
	return n / 2
}
