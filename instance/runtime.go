package instance

import (
	"path/filepath"

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

// runtimeSpec adapts an instance's spec to the Manager's runtime and shim
// grouping.
func (m *Manager) runtimeSpec(s *specs.Spec) {
	if filepath.Base(m.opts.Runtime) == RuntimeCrun {
		s.Version = crunOCIVersion
	}
	if m.opts.ShimGroup {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		// One group per Manager: a shim an earlier process left, which
		// its clean-up kills, must never take in a new instance.
		s.Annotations[shimGroupAnnotation] = m.opts.Name + "-" + m.generation
	}
}
