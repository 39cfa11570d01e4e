package instance

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// shimGroupAnnotation makes the runc v2 shim serve every container whose
// spec carries the same value from one shim process: containerd still
// runs "containerd-shim-runc-v2 start" for each container, but that finds
// the group's socket and returns, instead of spawning a new daemon. The
// shim stays while any container of the group lives and exits with the
// last one's delete.
const shimGroupAnnotation = "io.containerd.runc.v2.group"

// crunOCIVersion is the newest runtime-spec version crun 1.8 accepts;
// it refuses "1.2.x" with "unknown version specified". fcd's specs use
// nothing newer.
const crunOCIVersion = "1.1.0"

// runtimeSpec adapts instance i's spec s to the Manager's runtime and
// shim grouping. With crun it hands over the compiled seccomp filter when
// one is known, else notes in i.teach that i's process should teach it
// (see learnSeccomp). With ShimGroup it puts i in a group (i.shimGroup),
// which release leaves.
func (m *Manager) runtimeSpec(i *Instance, s *specs.Spec) {
	if filepath.Base(m.opts.Runtime) == RuntimeCrun {
		s.Version = crunOCIVersion
		if m.seccomp != nil && !m.seccomp.annotate(s) {
			i.teach = s
		}
	}
	if m.groups != nil {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		// Groups are per Manager: a shim an earlier process left, which
		// its clean-up kills, must never take in a new instance.
		i.shimGroup = m.groups.join()
		s.Annotations[shimGroupAnnotation] = i.shimGroup
	}
}

// learnSeccomp reads, in the background, the seccomp filter crun compiled
// for the ready instance i from spec s, for the next starts of that
// profile. A failure only costs those starts the compilation.
func (m *Manager) learnSeccomp(i *Instance, s *specs.Spec) {
	pid := int(i.task.Pid())
	m.watch(func() {
		if m.seccomp.known(s) || isClosed(i.exited) {
			return
		}
		if err := m.seccomp.learn(s, pid, cgroupPath(m.opts.Name, i.spec.ID)); err != nil {
			m.log.Debug("read compiled seccomp filter", "instance", i.spec.ID, "err", err)
		}
	})
}

// unifiedControllers lists the controllers of the cgroup v2 hierarchy of
// a hybrid host (v1 hierarchies with cgroup v2 beside them at
// /sys/fs/cgroup/unified).
const unifiedControllers = cgroupRoot + "/unified/cgroup.controllers"

// CheckRuntime returns an error when runtime cannot run instances on this
// host, saying why and how to fix it; nil otherwise. crun 1.8 (Debian 12)
// refuses a host whose cgroups are in hybrid mode while its unified
// hierarchy holds a controller (every create fails with "cgroups in
// hybrid mode not supported, drop all controllers from cgroupv2"). A
// controller sits there only while no v1 hierarchy has it: systemd's
// hybrid layout mounts each one as v1, a host set up otherwise may not;
// scripts/cgroup-controllers.sh, run by make deps, mounts them.
func CheckRuntime(runtime string) error {
	if filepath.Base(runtime) != RuntimeCrun {
		return nil
	}
	return checkUnified(unifiedControllers)
}

// DefaultRuntime returns the runtime an empty Options.Runtime stands for:
// crun when it is installed and CheckRuntime accepts it, because it
// creates and starts an instance in a fraction of runc's time (issue 17:
// create to ready 44 ms against 119 ms for the echo image); runc
// otherwise, with passed saying why crun was passed over. passed is nil
// when crun is chosen.
func DefaultRuntime() (runtime string, passed error) {
	return chooseRuntime(exec.LookPath, unifiedControllers)
}

// chooseRuntime is DefaultRuntime with the lookup of programs and the
// unified hierarchy's controller list as parameters.
func chooseRuntime(lookPath func(string) (string, error), unified string) (string, error) {
	if _, err := lookPath(RuntimeCrun); err != nil {
		return RuntimeRunc, fmt.Errorf("crun is not installed (Debian package crun, which make deps installs): %w", err)
	}
	if err := checkUnified(unified); err != nil {
		return RuntimeRunc, err
	}
	return RuntimeCrun, nil
}

func checkUnified(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		// Not hybrid: cgroup v1 only or v2 only, both of which crun runs on.
		return nil
	}
	if c := strings.Fields(string(b)); len(c) > 0 {
		return fmt.Errorf("%w: crun cannot run instances here: cgroups are in hybrid mode and the unified hierarchy holds %s; mount them as v1 hierarchies (scripts/cgroup-controllers.sh) or use runc",
			ErrMissingDependency, strings.Join(c, ", "))
	}
	return nil
}
