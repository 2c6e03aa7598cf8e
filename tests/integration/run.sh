#!/usr/bin/env bash
# Run the integration tests: every tests/integration/t-*.sh, or those named
# on the command line (t-cli or t-cli.sh), each under `timeout`, with its own
# TMPDIR below one run directory. Prints PASS/FAIL with the duration of each
# test (and the end of the log of a failed one) and ends with the line
# "N passed, N failed". Exit status 1 if any test failed or if a fuse mount
# or a swafs daemon was left behind under the run directory.
#
# Environment: T_TIMEOUT (seconds per test, default 600), KEEP_LOGS=1 keeps
# the run directory with every test's log.
set -eu

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T_TIMEOUT=${T_TIMEOUT:-600}

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/swafs-it.XXXXXX")
chmod 755 "$RUN_DIR"
LOGS=$RUN_DIR/logs
mkdir "$LOGS"

# fuse mountpoints at or below $1
fuse_mounts_under() {
	MI_PATH=$1 awk '{
		m = ENVIRON["MI_PATH"]
		for (i = 7; i <= NF; i++) if ($i == "-") break
		if (($5 == m || index($5, m "/") == 1) && $(i + 1) ~ /^fuse/)
			print $5
	}' /proc/self/mountinfo
}

# pids of processes whose command line mentions $1
pids_mentioning() {
	local p cmd
	for p in /proc/[0-9]*; do
		[ "${p#/proc/}" != "$$" ] || continue
		cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
		case $cmd in *"$1"*) printf '%s\n' "${p#/proc/}" ;; esac
	done
}

# leftovers: mounts and processes below the run directory
leftovers() {
	local m p
	m=$(fuse_mounts_under "$RUN_DIR")
	p=$(pids_mentioning "$RUN_DIR")
	[ -z "$m$p" ] && return 0
	[ -z "$m" ] || echo "left mounted: $m"
	[ -z "$p" ] || echo "left running: $(for x in $p; do
		printf '%s(%s) ' "$x" "$(tr '\0' ' ' 2>/dev/null <"/proc/$x/cmdline" | cut -c1-80)"
	done)"
	return 1
}

clean_leftovers() {
	local m p
	for m in $(fuse_mounts_under "$RUN_DIR" | sort -r); do
		fusermount3 -u -q -- "$m" 2>/dev/null || umount -l -- "$m" 2>/dev/null || true
	done
	for p in $(pids_mentioning "$RUN_DIR"); do
		kill -KILL "$p" 2>/dev/null || true
	done
}

if [ $# -gt 0 ]; then
	tests=()
	for a in "$@"; do
		a=${a%.sh}
		a=${a##*/}
		[ -f "$IT_DIR/$a.sh" ] || { echo "run.sh: no test '$a'" >&2; exit 2; }
		tests+=("$IT_DIR/$a.sh")
	done
else
	tests=("$IT_DIR"/t-*.sh)
fi

before=$(leftovers) || true
[ -z "$before" ] || echo "run.sh: before the run: $before" >&2

pass=0 failed=0 failures=()
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	mkdir "$RUN_DIR/$name"
	start=$(date +%s%N)
	rc=0
	TMPDIR=$RUN_DIR/$name timeout -k 30 "$T_TIMEOUT" bash "$t" \
		>"$LOGS/$name.log" 2>&1 </dev/null || rc=$?
	end=$(date +%s%N)
	secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	if [ "$rc" -eq 0 ]; then
		pass=$((pass + 1))
		echo "PASS $name (${secs}s)"
	else
		failed=$((failed + 1))
		failures+=("$name")
		why=""
		[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || why=", timed out after ${T_TIMEOUT}s"
		echo "FAIL $name (${secs}s, exit status $rc$why)"
		tail -n 40 "$LOGS/$name.log" | sed 's/^/    | /'
	fi
	if ! left=$(leftovers); then
		echo "FAIL $name left things behind: $left"
		clean_leftovers
		if [ "$rc" -eq 0 ]; then
			pass=$((pass - 1))
			failed=$((failed + 1))
			failures+=("$name")
		fi
	fi
done

# after the run: nothing may be left mounted or running below the run dir
if ! left=$(leftovers); then
	echo "FAIL leftovers after the run: $left"
	clean_leftovers
	failed=$((failed + 1))
fi
if [ "${KEEP_LOGS:-0}" = 1 ] || [ "$failed" -gt 0 ]; then
	echo "logs: $LOGS"
fi
if [ -z "$(fuse_mounts_under "$RUN_DIR")" ] && [ "${KEEP_LOGS:-0}" != 1 ] &&
	[ "$failed" -eq 0 ]; then
	rm -rf -- "$RUN_DIR"
fi
[ "$failed" -eq 0 ] || echo "failed: ${failures[*]}"
echo "$pass passed, $failed failed"
[ "$failed" -eq 0 ]
