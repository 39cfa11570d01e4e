#!/bin/bash
# Runs go test with the given arguments, its output as it comes, and when
# it fails repeats what failed at the end: the failing tests with their
# messages and, for a test binary that timed out, the tests it was
# running. A CI log is often read from its tail, and a timed-out binary
# ends with thousands of lines of goroutine stacks.
set -u
go=${GO:-go}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
$go test "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
	echo
	echo "=== what failed (go test exited $rc) ==="
	# A failing test's line, the indented messages under it, panics and
	# the "running tests:" list of a timeout with its entries.
	awk '
		/^[ \t]*--- FAIL/ { show = 1; n = 0; print; next }
		show && /^    / { if (++n <= 40) print; next }
		{ show = 0 }
		/^panic: / { print; next }
		/^\trunning tests:/ { running = 1; print; next }
		running && /^\t\t/ { print; next }
		{ running = 0 }
		/^FAIL[ \t]/ { print }
	' "$out"
fi
exit "$rc"
