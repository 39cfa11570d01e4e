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
// Package instance also supervises a containerd child process (Daemon) and
// removes what an earlier run left behind (Manager.Cleanup). It does not
// decide which instance serves a request or when to start or stop one:
// that is the scheduler's.
package instance
