package instance

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/contrib/seccomp"
	"github.com/containerd/containerd/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Spec describes one instance of a function: what to run and with which
// limits. The zero value of each optional field means its default.
type Spec struct {
	// ID names the instance; "" means a generated one. IDs must be unique
	// among a Manager's live instances.
	ID string
	// Function is the function's name; required. It selects the log file.
	Function string
	// Image is the image reference; required.
	Image string
	// Entrypoint, when non-nil, replaces the image's ENTRYPOINT; Command,
	// when non-nil, replaces its CMD.
	Entrypoint []string
	Command    []string
	// Env is the function's environment variables, added after the image's
	// and before the FC_* runtime variables, which win.
	Env map[string]string
	// MemoryMB is the memory limit (the process is OOM-killed past it); 0
	// means 512.
	MemoryMB int
	// CPU is the CPU limit in vCPUs; 0 means MemoryMB/1024 (at least 0.05).
	CPU float64
	// DiskMB is the size of the writable layer; 0 means 512.
	DiskMB int
	// Timeout is the function's invocation timeout, passed on in the
	// environment; it does not limit the instance's life.
	Timeout time.Duration
	// Port is the port the function's server listens on; 0 means 9000.
	Port int
	// Handler, Region, AccountID and Qualifier fill FC_* variables.
	Handler   string
	Region    string
	AccountID string
	Qualifier string
	// Initializer, when true, calls POST /initialize once after the probe;
	// its failure fails the start. InitializerTimeout bounds it; 0 means
	// 30 s.
	Initializer        bool
	InitializerTimeout time.Duration
	// PreStop, when true, calls GET /pre-stop before stopping;
	// PreStopTimeout bounds it; 0 means 10 s.
	PreStop        bool
	PreStopTimeout time.Duration
	// HealthCheck, when non-nil, replaces the TCP probe with an HTTP check
	// and keeps checking while the instance runs.
	HealthCheck *HealthCheck
	// RoleKeys are the temporary credentials of the function's role,
	// given to the process as ALIBABA_CLOUD_ACCESS_KEY_ID,
	// ALIBABA_CLOUD_ACCESS_KEY_SECRET and ALIBABA_CLOUD_SECURITY_TOKEN; the
	// zero value (no role) sets none. They expire: a long-lived process
	// gets fresh ones in each request's x-fc-access-key-* headers.
	RoleKeys Keys
	// Credentials returns registry credentials for host; nil means
	// anonymous pulls. It is called again whenever the registry answers 401.
	Credentials func(host string) (user, secret string, err error)
	// Role names the function's role, whose temporary credentials
	// Credentials returns; only for error messages. "" means none.
	Role string
	// ResolvConf, when non-empty, is the text of the instance's
	// /etc/resolv.conf; "" means the host's (FC's customDNS).
	ResolvConf string
	// Offline, when true, keeps the instance from reaching anything
	// beyond fcd's bridge (FC's internetAccess: false; see offline.go);
	// false means it reaches what every instance reaches.
	Offline bool
}

// Keys are temporary credentials issued by STS AssumeRole.
type Keys struct {
	AccessKeyID, AccessKeySecret, SecurityToken string
}

func (s Spec) withDefaults() Spec {
	if s.MemoryMB == 0 {
		s.MemoryMB = DefaultMemoryMB
	}
	if s.CPU == 0 {
		s.CPU = max(float64(s.MemoryMB)/1024, 0.05)
	}
	if s.DiskMB == 0 {
		s.DiskMB = DefaultDiskMB
	}
	if s.Port == 0 {
		s.Port = DefaultPort
	}
	if s.InitializerTimeout == 0 {
		s.InitializerTimeout = DefaultHookTimeout
	}
	if s.PreStopTimeout == 0 {
		s.PreStopTimeout = DefaultPreStopTimeout
	}
	return s
}

// processArgs applies the function's overrides to the image's ENTRYPOINT
// and CMD, each replacing its own half.
func processArgs(s Spec, img ocispec.ImageConfig) []string {
	entrypoint, cmd := img.Entrypoint, img.Cmd
	if s.Entrypoint != nil {
		entrypoint = s.Entrypoint
	}
	if s.Command != nil {
		cmd = s.Command
	}
	return append(append([]string(nil), entrypoint...), cmd...)
}

// environment is the image's env, then the function's (sorted for a stable
// spec), then the runtime's FC_* variables and the role's keys.
func environment(s Spec, img ocispec.ImageConfig) []string {
	env := append([]string(nil), img.Env...)
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+s.Env[k])
	}
	port := strconv.Itoa(s.Port)
	env = append(env,
		"FC_FUNCTION_NAME="+s.Function,
		"FC_FUNCTION_MEMORY_SIZE="+strconv.Itoa(s.MemoryMB),
		"FC_FUNCTION_HANDLER="+s.Handler,
		"FC_FUNCTION_TIMEOUT="+strconv.Itoa(int(s.Timeout/time.Second)),
		"FC_CUSTOM_LISTEN_PORT="+port,
		"FC_SERVER_PORT="+port,
		"FC_INSTANCE_ID="+s.ID,
		"FC_REGION="+s.Region,
		"FC_ACCOUNT_ID="+s.AccountID,
		"FC_QUALIFIER="+s.Qualifier,
	)
	if k := s.RoleKeys; k.AccessKeyID != "" {
		env = append(env,
			"ALIBABA_CLOUD_ACCESS_KEY_ID="+k.AccessKeyID,
			"ALIBABA_CLOUD_ACCESS_KEY_SECRET="+k.AccessKeySecret,
			"ALIBABA_CLOUD_SECURITY_TOKEN="+k.SecurityToken,
		)
	}
	return env
}

// ociSpec builds the runtime spec of an instance whose root filesystem is
// mounted at rootPath and whose network namespace is netnsPath.
func ociSpec(ctx context.Context, name string, s Spec, img ocispec.ImageConfig, rootPath, netnsPath string) (*specs.Spec, error) {
	args := processArgs(s, img)
	if len(args) == 0 {
		return nil, fmt.Errorf("image has no ENTRYPOINT or CMD and the function sets neither")
	}
	cwd := img.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	memory := uint64(s.MemoryMB) << 20
	period := uint64(100_000)
	opts := []oci.SpecOpts{
		oci.WithRootFSPath(rootPath),
		oci.WithProcessArgs(args...),
		oci.WithEnv(environment(s, img)),
		oci.WithProcessCwd(cwd),
		oci.WithHostname(s.ID),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netnsPath}),
		oci.WithCgroup(cgroupPath(name, s.ID)),
		oci.WithMemoryLimit(memory),
		oci.WithCPUShares(uint64(math.Max(2, s.CPU*1024))),
		oci.WithCPUCFS(int64(s.CPU*float64(period)), period),
		oci.WithPidsLimit(DefaultPidsLimit),
		oci.WithNoNewPrivileges,
		// A raw socket on the shared bridge could spoof or sniff other
		// instances' traffic; device nodes have no use in a function.
		oci.WithDroppedCapabilities(droppedCapabilities),
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err == nil {
		// Without swap accounting the limit is memory alone; with it,
		// swap must not stretch the limit.
		opts = append(opts, withMemorySwap(int64(memory)))
	}
	if s.ResolvConf != "" {
		// Beside the rootfs, in the instance's directory, discarded with it.
		p := filepath.Join(filepath.Dir(rootPath), "resolv.conf")
		if err := os.WriteFile(p, []byte(s.ResolvConf), 0o644); err != nil {
			return nil, fmt.Errorf("resolv.conf: %w", err)
		}
		opts = append(opts, withResolvConf(p))
	} else if _, err := os.Stat("/etc/resolv.conf"); err == nil {
		opts = append(opts, withResolvConf("/etc/resolv.conf"))
	}
	if img.User != "" {
		opts = append(opts, oci.WithUser(img.User))
	}
	// Last: the profile allows the syscalls the final capability set
	// needs, and no more.
	opts = append(opts, seccomp.WithDefaultProfile())
	spec, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: s.ID}, opts...)
	if err != nil {
		return nil, fmt.Errorf("oci spec: %w", err)
	}
	return spec, nil
}

// droppedCapabilities are taken from containerd's default set (which
// already omits NET_ADMIN, SYS_ADMIN and the like).
var droppedCapabilities = []string{"CAP_NET_RAW", "CAP_MKNOD"}

// withResolvConf bind-mounts path read-only at /etc/resolv.conf.
func withResolvConf(path string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		s.Mounts = append(s.Mounts, specs.Mount{
			Destination: "/etc/resolv.conf",
			Type:        "bind",
			Source:      path,
			Options:     []string{"rbind", "ro"},
		})
		return nil
	}
}

func withMemorySwap(limit int64) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux.Resources.Memory == nil {
			s.Linux.Resources.Memory = &specs.LinuxMemory{}
		}
		s.Linux.Resources.Memory.Swap = &limit
		return nil
	}
}

// cgroupPath is the cgroup of instance id of the Manager name.
func cgroupPath(name, id string) string { return "/" + name + "/" + id }

// memoryCgroupDirs returns the directory of instance id's memory cgroup
// on a cgroup v1 host and on a v2 host.
func memoryCgroupDirs(name, id string) (v1, v2 string) {
	p := cgroupPath(name, id)
	return filepath.Join(cgroupRoot, "memory", p), filepath.Join(cgroupRoot, p)
}
