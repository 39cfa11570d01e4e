package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// footprint is what an fcd named name with data dir dataDir has on the
// host: what a stopped fcd must not leave behind, and what a restarted
// one must clean up.
type footprint struct {
	shims, cgroups, mounts, loops, netns, veths, ips int
	rules, bridge                                    bool
}

func (f footprint) String() string {
	return fmt.Sprintf("%d shims, %d cgroups, %d mounts, %d loop devices, %d netns, %d veths, %d IPs, rules=%v, bridge=%v",
		f.shims, f.cgroups, f.mounts, f.loops, f.netns, f.veths, f.ips, f.rules, f.bridge)
}

// shimPIDs returns the process IDs of the containerd shims of the fcd
// named name.
func shimPIDs(name string) []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, "containerd-shim") && strings.Contains(cmd, "-namespace "+name+" ") {
			if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// hostFootprint measures the footprint of the fcd named name.
func hostFootprint(name, dataDir string) footprint {
	f := footprint{shims: len(shimPIDs(name))}
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/" + name)
	for _, root := range append(roots, "/sys/fs/cgroup/"+name) {
		ents, _ := os.ReadDir(root)
		for _, e := range ents {
			if e.IsDir() {
				f.cgroups++
			}
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mounts), "\n") {
		if strings.Contains(l, dataDir) || strings.Contains(l, "/run/fcd/"+name+"/") {
			f.mounts++
		}
	}
	backing, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, b := range backing {
		if s, err := os.ReadFile(b); err == nil && strings.HasPrefix(string(s), dataDir) {
			f.loops++
		}
	}
	ns, _ := os.ReadDir(filepath.Join("/run/fcd", name, "netns"))
	f.netns = len(ns)
	ports, err := os.ReadDir(filepath.Join("/sys/class/net", name+"0", "brif"))
	f.veths, f.bridge = len(ports), err == nil
	// host-local keeps one file per leased address, named after it.
	leases, _ := filepath.Glob(filepath.Join(dataDir, "cni", "ipam", "*", "*"))
	for _, p := range leases {
		if _, err := netip.ParseAddr(filepath.Base(p)); err == nil {
			f.ips++
		}
	}
	f.rules = exec.Command("nft", "list", "table", "inet", "fcd-"+name).Run() == nil
	return f
}
