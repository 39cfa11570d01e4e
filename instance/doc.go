// Package instance runs function instances on containerd: one container per
// instance, with its own network namespace and address on fcd's bridge, a
// root filesystem of the image's read-only layers under a writable layer
// limited to the function's disk size, memory, CPU and pids limits, and the
// process's output collected into per-function log files.
//
// The lifecycle of an instance:
//
//	m.Start(ctx, spec)  image (Options.Images), writable layer, netns + CNI,
//	                    OCI spec, container + task start, then readiness:
//	                    TCP connect to <ip>:<port> (or the HTTP health
//	                    check) with back-off until it accepts, the process
//	                    exits (CAExited) or StartTimeout passes
//	                    (FunctionNotStarted); then POST /initialize.
//	<-inst.Done()       the process exited (inst.Exit says how, OOM
//	                    included) or the health check failed.
//	inst.Stop(ctx)      GET /pre-stop, SIGTERM, grace, SIGKILL, then
//	                    remove container, mounts, disk file, netns, address.
//
// The sandbox of every instance: containerd's default seccomp profile, its
// default capability set less NET_RAW and MKNOD, NoNewPrivileges, masked
// /proc paths and a read-only /proc/sys, a pids limit per instance and one
// for all of them (Options.TotalPids, on the parent cgroup /<Name>). On the
// network, an instance reaches the outside world (unless
// Options.DenyOutbound, or Spec.Offline for its function) but not the host, not another instance and not
// link-local or metadata addresses: the bridge's ports are isolated and an
// nftables table named fcd-<Name> (see firewall) filters the rest. The
// Manager installs it before its first instance and removes it on Close.
//
// Package instance also supervises a containerd child process (Daemon),
// adopting the one an earlier run left when it still answers, and removes
// what an earlier run left behind: containers and, found by its name
// rather than through containerd, shim processes, cgroups, mounts,
// network namespaces, address leases and firewall rules. Manager.Leftovers
// lists them before the first Start, so Leftovers.Remove can run in the
// background, in parallel, while new instances start (Manager.Cleanup
// does both and waits). It does not
// decide which instance serves a request or when to start or stop one:
// that is the scheduler's.
package instance
