#!/bin/sh
# Make crun able to run fcd's instances on a host whose cgroups are in
# hybrid mode (v1 hierarchies under /sys/fs/cgroup, cgroup v2 beside them
# at /sys/fs/cgroup/unified).
#
# crun 1.8 (Debian 12) refuses such a host while its unified hierarchy
# holds a controller: "cgroups in hybrid mode not supported, drop all
# controllers from cgroupv2". A controller sits in the unified hierarchy
# only while no v1 hierarchy has it. systemd's hybrid layout mounts every
# controller as v1, so the unified one is empty; a host set up otherwise
# (an init that mounts only some controllers) leaves the rest in v2. This
# mounts each of them as a v1 hierarchy at /sys/fs/cgroup/<controller>, as
# systemd would. Hosts with cgroup v1 only or v2 only are left alone: crun
# runs on both. Idempotent; run as root (make deps does).
set -eu

root=${CGROUP_ROOT:-/sys/fs/cgroup}
unified=$root/unified/cgroup.controllers
[ -r "$unified" ] || exit 0

for c in $(cat "$unified"); do
	dir=$root/$c
	mkdir -p "$dir"
	# A controller enabled in a v2 subtree is busy and cannot move.
	if ! mount -t cgroup -o "$c" cgroup "$dir"; then
		echo "cgroup-controllers: cannot mount $c as a v1 hierarchy; crun will refuse this host (use runc)" >&2
		exit 1
	fi
	echo "cgroup-controllers: mounted $c at $dir (crun refuses hybrid hosts with controllers in cgroup v2)"
done
