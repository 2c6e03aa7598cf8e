#!/usr/bin/env bash
# swafs benchmark: the same workloads on a plain directory ("native") and on a
# swafs mount whose backing directory sits on the same disk, then one table
# with native, swafs, the ratio swafs/native and the target from the issue.
#
#   make bench                      (builds, then runs this script as root)
#   BENCH_SIZE=256M BENCH_RUNTIME=5 bash scripts/bench.sh
#
# Knobs (environment):
#   BENCH_DIR      where the data goes; must be a real disk, not tmpfs
#                  (default /var/tmp/swafs-bench.$$; an existing directory
#                  gets a private subdirectory; only what we made is removed)
#   BENCH_SIZE     size of the big file for the sequential/random runs (1G)
#   BENCH_RUNTIME  seconds of each random 4 KiB run (20)
#   BENCH_FILES    number of 4 KiB files in the small-file tree (20000)
#   BENCH_DIRS     directories they are spread over (100)
#   BENCH_OPTS     extra -o options for swafs, e.g. "block_size=64k"
#   BENCH_OUT      also write the table here (default build/bench-last.txt)
#   BENCH_ONLY     run only these workloads, e.g. "create stat" (default all)
#   BENCH_STRICT   1: exit 1 when a target is missed (default 0: report only)
#   SWAFS          daemon binary (default bin/swafs of this tree)
#   BENCH_BLOCK_SIZES  block sizes compared by ckpt_write (default "16K 64K 256K")
#   BENCH_THROTTLE_STORE  store_mem,store_max of the throttle row (default 8M,32M)
#
# The checkpoint rows compare two swafs runs in the same table: "native" is
# then the baseline named in the row (no checkpoint, the live mount, ...).
#
# Adding a workload: write bench_NAME(), which measures with on_native /
# on_swafs and reports with `row`, and append NAME to WORKLOADS below. Helpers:
# cold SIDE (drop caches; swafs also gets a fresh mount), settle (sync),
# need_bigfile / need_tree (untimed setup), swafs_mount / swafs_umount.
# shellcheck disable=SC2317  # functions reached only through traps/indirection
set -eu
set -o pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LIB=$ROOT/scripts/bench-lib
SWAFS=${SWAFS:-$ROOT/bin/swafs}
SIZE=${BENCH_SIZE:-1G}
RUNTIME=${BENCH_RUNTIME:-20}
NFILES=${BENCH_FILES:-20000}
NDIRS=${BENCH_DIRS:-100}
OPTS=${BENCH_OPTS:-}
OUT=${BENCH_OUT:-$ROOT/build/bench-last.txt}
STRICT=${BENCH_STRICT:-0}
FILESIZE=4096

SWACTL=${SWACTL:-$ROOT/bin/swactl}
BLOCK_SIZES=${BENCH_BLOCK_SIZES:-16K 64K 256K}
THROTTLE_STORE=${BENCH_THROTTLE_STORE:-8M,32M}

WORKLOADS="seq_write seq_read rand_write rand_read create stat tar"
WORKLOADS="$WORKLOADS ckpt_pause ckpt_write view_tar view_dd store_peak btrfs"
WORKLOADS="$WORKLOADS ckpt_load throttle view_seek save"
# shellcheck disable=SC2116,SC2086  # squeeze white space
ONLY=" $(echo ${BENCH_ONLY:-$WORKLOADS}) "

# ---------------------------------------------------------------- utilities

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }
now() { printf '%s\n' "$EPOCHREALTIME"; }
fs_type() { { findmnt -n -o FSTYPE -T "$1" 2>/dev/null || stat -f -c %T "$1"; } | tail -n 1; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }

# ------------------------------------------------------------ state, cleanup

WORK=			# everything we create on disk lives under here
WORK_OWNED=0		# 1: we created $WORK and may remove it
TMP=			# logs, fio JSON, the table being built
MNT='' BACKING='' NATIVE=''
SWAFS_PID=		# the daemon we started, if running
BTRFS_MNT='' BTRFS_LOOP=''	# the btrfs anchor's mount and loop device
EXTRA_MNTS=() EXTRA_PIDS=()	# ckpt_load's other live trees and their daemons
LOAD_PIDS=()			# ckpt_load's writers
MOUNTED=0
DROP_WARNED=0
T_START=$(now)

is_mounted() {
	awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/self/mounts
}

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM HUP
	if [ -n "$MNT" ] && is_mounted "$MNT"; then
		fusermount3 -u "$MNT" 2>/dev/null ||
			{ sleep 1; fusermount3 -u "$MNT" 2>/dev/null; } ||
			umount -l "$MNT" 2>/dev/null
	fi
	if [ -n "$SWAFS_PID" ]; then
		stop_daemon
	fi
	btrfs_down
	load_down
	if [ "$rc" -ne 0 ] && [ -n "$TMP" ] && [ -s "$TMP/swafs.log" ]; then
		say "last lines of the swafs log:"
		tail -n 20 "$TMP/swafs.log" >&2
	fi
	if [ -n "$MNT" ] && is_mounted "$MNT"; then
		say "warning: '$MNT' is still mounted; leaving '$WORK' in place"
	else
		if [ "$WORK_OWNED" = 1 ]; then
			rm -rf "$WORK"
		fi
		[ -n "$TMP" ] && rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Wait for our daemon to exit after an unmount; kill it (by PID) if it hangs.
stop_daemon() {
	local _
	for _ in $(seq 50); do
		kill -0 "$SWAFS_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$SWAFS_PID" 2>/dev/null; then
		say "warning: swafs (pid $SWAFS_PID) did not exit after unmount; killing it"
		kill "$SWAFS_PID" 2>/dev/null
		sleep 1
		kill -9 "$SWAFS_PID" 2>/dev/null
	fi
	wait "$SWAFS_PID" 2>/dev/null
	SWAFS_PID=
}

# ------------------------------------------------------------ swafs control

swafs_mount() {
	local _
	[ "$MOUNTED" = 0 ] || die "swafs_mount: already mounted"
	# shellcheck disable=SC2086
	"$SWAFS" "$BACKING" "$MNT" ${OPTS:+-o "$OPTS"} -f >>"$TMP/swafs.log" 2>&1 &
	SWAFS_PID=$!
	for _ in $(seq 100); do
		if awk -v m="$MNT" '$2 == m && $3 == "fuse.swafs" { f = 1 }
				END { exit !f }' /proc/self/mounts; then
			MOUNTED=1
			return 0
		fi
		if ! kill -0 "$SWAFS_PID" 2>/dev/null; then
			wait "$SWAFS_PID" 2>/dev/null || true
			SWAFS_PID=
			die "swafs exited before the mount appeared (see log above)"
		fi
		sleep 0.1
	done
	die "'$MNT' did not show up as fuse.swafs within 10 s"
}

swafs_umount() {
	[ "$MOUNTED" = 1 ] || return 0
	fusermount3 -u "$MNT" || { sleep 1; fusermount3 -u "$MNT"; } ||
		die "cannot unmount '$MNT'"
	MOUNTED=0
	stop_daemon
}

# ------------------------------------------------------ cache and run helpers

settle() { sync; }

drop_caches() {
	sync
	if ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
		if [ "$DROP_WARNED" = 0 ]; then
			say "warning: cannot drop caches (not root?): 'cold' rows are not cold"
			DROP_WARNED=1
		fi
	fi
}

# cold native|swafs: page cache, dentries and inodes dropped; for swafs also a
# fresh mount, so the kernel's FUSE attribute/entry caches and the daemon's own
# state start empty.
cold() {
	if [ "$1" = swafs ]; then
		swafs_umount
		drop_caches
		swafs_mount
	else
		drop_caches
	fi
}

# on_native FN ARGS... / on_swafs FN ARGS...: run FN SIDE DIR ARGS..., where DIR
# is the directory to work in on that side, and leave what FN printed (one
# number per line) in R. Not via $(...): FN may remount, and a subshell would
# lose track of the daemon it started.
R=
on_native() { on_side native "$NATIVE" "$@"; }
on_swafs() {
	[ "$MOUNTED" = 1 ] || swafs_mount
	on_side swafs "$MNT" "$@"
}
on_side() {
	local side=$1 dir=$2 fn=$3
	shift 3
	"$fn" "$side" "$dir" "$@" >"$TMP/result"
	R=$(cat "$TMP/result")
}

# fio_run NAME FILE DDIR METRIC FIO-ARGS...: one psync job, prints the metric
fio_run() {
	local name=$1 file=$2 ddir=$3 metric=$4
	shift 4
	fio --name="$name" --filename="$file" --ioengine=psync --numjobs=1 \
		--output-format=json --output="$TMP/$name.json" "$@" >/dev/null ||
		die "fio '$name' failed on '$file'"
	python3 "$LIB/tree.py" fio "$TMP/$name.json" "$ddir" "$metric"
}

# need_bigfile SIDE DIR: the BENCH_SIZE file exists (made untimed if missing)
need_bigfile() {
	[ -f "$2/big.dat" ] && return 0
	say "  laying out $SIZE file on $1"
	fio_run layout "$2/big.dat" write bw --rw=write --bs=1M --size="$SIZE" \
		--end_fsync=1 >/dev/null
}

# need_tree SIDE DIR: the small-file tree exists (made untimed if missing)
need_tree() {
	[ -d "$2/tree" ] && return 0
	say "  creating the $NFILES-file tree on $1"
	mkdir "$2/tree"
	python3 "$LIB/tree.py" create "$2/tree" "$NDIRS" "$NFILES" "$FILESIZE" >/dev/null
	settle
}

# -------------------------------------------------------------- the table

# row NAME NATIVE SWAFS UNIT KIND TARGET
#   KIND tput: throughput, higher is better, met when swafs/native >= TARGET
#   KIND time: a duration, lower is better, met when swafs/native <= TARGET
#   TARGET "-" for a row that is only reported
row() {
	local name=$1 nat=$2 sw=$3 unit=$4 kind=$5 target=$6
	awk -v name="$name" -v nat="$nat" -v sw="$sw" -v unit="$unit" \
	    -v kind="$kind" -v target="$target" 'BEGIN {
		ratio = (nat + 0 > 0) ? sprintf("%.2f", sw / nat) : "n/a"
		if (target == "-") { tgt = "-"; res = "-" }
		else if (ratio == "n/a") { tgt = target; res = "n/a" }
		else if (kind == "tput") {
			tgt = ">= " target; res = (sw / nat >= target) ? "met" : "MISSED"
		} else {
			tgt = "<= " target; res = (sw / nat <= target) ? "met" : "MISSED"
		}
		printf "%-30s %-5s %10s %10s %7s  %-4s %8s  %s\n",
			name, unit, nat, sw, ratio, kind, tgt, res
	}' >>"$TMP/rows"
	say "  $(tail -n 1 "$TMP/rows")"
}

print_table() {
	local kernel fstype dev rev
	kernel=$(uname -r)
	fstype=$(fs_type "$WORK")
	dev=$(df -P "$WORK" | awk 'NR == 2 { print $1 }')
	rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)
	if [ "$rev" != none ] && ! git -C "$ROOT" diff --quiet HEAD 2>/dev/null; then
		rev="$rev+dirty"
	fi
	cat <<EOF
swafs benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')  rev $rev  kernel $kernel  cpus $(nproc)
data: $WORK ($fstype on $dev; native dir and swafs backing dir side by side)
BENCH_SIZE=$SIZE BENCH_RUNTIME=$RUNTIME BENCH_FILES=$NFILES BENCH_DIRS=$NDIRS BENCH_OPTS='$OPTS'
ratio = swafs / native on every row.
  kind tput: throughput (MB/s, IOPS), higher is better; target is a minimum ratio.
  kind time: seconds, lower is better; target is a maximum ratio.
fio: psync, one job, buffered; seq rows use 1 MiB requests (write includes the
end fsync), rand rows 4 KiB for ${RUNTIME} s (rand read without fadvise hints,
which FUSE cannot pass on). "cold": caches dropped and, for
swafs, a fresh mount. create/stat/tar: ${NFILES} x 4 KiB files in ${NDIRS} dirs,
one process, no fsync in the timed part; tar is "tar -cf - | cat >/dev/null".

EOF
	printf '%-30s %-5s %10s %10s %7s  %-4s %8s  %s\n' \
		workload unit native swafs ratio kind target result
	cat "$TMP/rows"
	echo
	awk '$NF == "met" { m++ } $NF == "MISSED" { x++ }
		END { printf "targets: %d met, %d missed\n", m, x }' "$TMP/rows"
}

# -------------------------------------------------------------- workloads

m_seq_write() {
	rm -f "$2/big.dat"
	settle
	fio_run seqwrite "$2/big.dat" write bw --rw=write --bs=1M --size="$SIZE" \
		--end_fsync=1
}
bench_seq_write() {
	local n s
	on_native m_seq_write
	n=$R
	on_swafs m_seq_write
	s=$R
	row "seq write 1M ($SIZE)" "$n" "$s" MB/s tput 0.9
}

m_seq_read() {
	need_bigfile "$1" "$2"
	cold "$1"
	fio_run seqread "$2/big.dat" read bw --rw=read --bs=1M --size="$SIZE"
}
bench_seq_read() {
	local n s
	on_native m_seq_read
	n=$R
	on_swafs m_seq_read
	s=$R
	row "seq read 1M, cold ($SIZE)" "$n" "$s" MB/s tput 0.9
}

m_rand_write() {
	need_bigfile "$1" "$2"
	settle
	fio_run randwrite "$2/big.dat" write iops --rw=randwrite --bs=4k \
		--size="$SIZE" --time_based --runtime="$RUNTIME"
}
bench_rand_write() {
	local n s
	on_native m_rand_write
	n=$R
	on_swafs m_rand_write
	s=$R
	row "rand write 4K (${RUNTIME}s)" "$n" "$s" IOPS tput 0.10
}

m_rand_read() {
	need_bigfile "$1" "$2"
	cold "$1"
	# --fadvise_hint=0: FUSE does not pass fio's POSIX_FADV_RANDOM on to the
	# backing file, so with the hint native alone would lose readahead
	fio_run randread "$2/big.dat" read iops --rw=randread --bs=4k \
		--size="$SIZE" --time_based --runtime="$RUNTIME" --fadvise_hint=0
}
bench_rand_read() {
	local n s
	on_native m_rand_read
	n=$R
	on_swafs m_rand_read
	s=$R
	row "rand read 4K, cold (${RUNTIME}s)" "$n" "$s" IOPS tput 0.8
	# the big files are not needed any more: free the disk for what follows
	rm -f "$NATIVE/big.dat" "$BACKING/big.dat"
}

m_create() {
	local t
	rm -rf "$2/tree"
	settle
	mkdir "$2/tree"
	t=$(python3 "$LIB/tree.py" create "$2/tree" "$NDIRS" "$NFILES" "$FILESIZE")
	settle
	echo "$t"
}
bench_create() {
	local n s
	on_native m_create
	n=$R
	on_swafs m_create
	s=$R
	row "create $NFILES x 4K files" "$n" "$s" s time 3
}

m_stat() {
	need_tree "$1" "$2"
	cold "$1"
	python3 "$LIB/tree.py" stat "$2/tree"		# cold
	python3 "$LIB/tree.py" stat "$2/tree"		# warm
}
bench_stat() {
	local n s
	on_native m_stat
	n=$R
	on_swafs m_stat
	s=$R
	# shellcheck disable=SC2086
	set -- $n $s
	row "stat all, cold" "$1" "$3" s time -
	row "stat all, warm" "$2" "$4" s time 1.5
}

# tar_once DIR: seconds for tar -cf - DIR | cat (GNU tar skips reading file
# data when it writes straight to /dev/null, hence the cat)
tar_once() {
	local t0 t1 rc=0
	t0=$(now)
	tar -C "$1" -cf - tree 2>"$TMP/tar.err" | cat >/dev/null || rc=$?
	t1=$(now)
	if [ "$rc" -eq 1 ]; then
		say "warning: tar exit 1 in '$1': $(head -n 1 "$TMP/tar.err")"
	elif [ "$rc" -ne 0 ]; then
		cat "$TMP/tar.err" >&2
		die "tar failed in '$1'"
	fi
	elapsed "$t0" "$t1"
}
m_tar() {
	need_tree "$1" "$2"
	cold "$1"
	tar_once "$2"		# cold
	tar_once "$2"		# warm
}
bench_tar() {
	local n s
	on_native m_tar
	n=$R
	on_swafs m_tar
	s=$R
	# shellcheck disable=SC2086
	set -- $n $s
	row "tar tree, cold" "$1" "$3" s time 2
	row "tar tree, warm" "$2" "$4" s time 2
}

# ------------------------------------------------------ checkpoint workloads

# pause_stats N: median and max pause (us) of N checkpoints of the live tree
pause_stats() {
	local k out
	: >"$TMP/pauses"
	for k in $(seq "$1"); do
		out=$("$SWACTL" checkpoint "$MNT" --name "p$k" --keep) ||
			die "swactl checkpoint failed: $out"
		printf '%s\n' "$out" | sed -n 's/.*pause_us=\([0-9]*\).*/\1/p' >>"$TMP/pauses"
		"$SWACTL" release "$MNT" "p$k"
	done
	sort -n "$TMP/pauses" | awk '{ v[NR] = $1 } END {
		printf "%d %d\n", v[int((NR + 1) / 2)], v[NR] }'
}

# fill_backing N: N small files in BACKING/pause (made behind the mount: the
# daemon never walks the tree, so this only has to exist)
fill_backing() {
	rm -rf "$BACKING/pause"
	mkdir "$BACKING/pause"
	python3 "$LIB/tree.py" create "$BACKING/pause" 100 "$1" 0 >/dev/null
}

bench_ckpt_pause() {
	local small big
	[ "$MOUNTED" = 1 ] || swafs_mount
	fill_backing 1000
	small=$(pause_stats 20)
	fill_backing 100000
	big=$(pause_stats 20)
	rm -rf "$BACKING/pause"
	# shellcheck disable=SC2086
	set -- $small $big
	row "ckpt pause median, 1k/100k" "$1" "$3" us time -
	row "ckpt pause max, 1k/100k" "$2" "$4" us time -
	say "  pause targets: median <= 1000 us at both sizes; no growth with tree size"
}

# rand_write_run DIR: IOPS of random 4 KiB overwrites of DIR/big.dat
rand_write_run() {
	fio_run rw "$1/big.dat" write iops --rw=randwrite --bs=4k \
		--size="$SIZE" --time_based --runtime="$RUNTIME"
}

# store_line NAME: "captured_bytes" of checkpoint NAME from swactl list --json
ckpt_field() {
	"$SWACTL" list "$MNT" --json | python3 -c '
import json, sys
for c in json.load(sys.stdin):
    if c["name"] == sys.argv[1]:
        print(c[sys.argv[2]])' "$1" "$2"
}

bench_ckpt_write() {
	local base with bs saved_opts=$OPTS
	for bs in $BLOCK_SIZES; do
		swafs_umount
		OPTS="${saved_opts:+$saved_opts,}block_size=$bs"
		swafs_mount
		need_bigfile swafs "$MNT"
		base=$(rand_write_run "$MNT")
		"$SWACTL" checkpoint "$MNT" --name w --keep >/dev/null
		with=$(rand_write_run "$MNT")
		say "  block_size=$bs: captured $(ckpt_field w captured_bytes) bytes"
		"$SWACTL" release "$MNT" w
		row "rand write 4K after ckpt, bs $bs" "$base" "$with" IOPS tput 0.7
	done
	swafs_umount
	OPTS=$saved_opts
}

# view_cmd KIND VIEWDIR: timed copy out of a tree (tar of the tree, or dd of
# the big file), seconds
copy_time() {
	local t0 t1
	t0=$(now)
	case $1 in
	tar) tar -C "$2" -cf - tree | cat >/dev/null ;;
	dd) dd if="$2/big.dat" of=/dev/null bs=1M status=none ;;
	esac
	t1=$(now)
	elapsed "$t0" "$t1"
}

# view_vs_live KIND NAME TARGET: the same copy from the live mount and from a
# view of a checkpoint of it, both cold; reported as throughput ratio
view_vs_live() {
	local kind=$1 live view vdir=$WORK/view
	mkdir -p "$vdir"
	[ "$MOUNTED" = 1 ] || swafs_mount
	if [ "$kind" = tar ]; then need_tree swafs "$MNT"; else need_bigfile swafs "$MNT"; fi
	cold swafs
	live=$(copy_time "$kind" "$MNT")
	"$SWACTL" checkpoint "$MNT" --name v >/dev/null
	drop_caches
	"$SWACTL" mount "$MNT" v "$vdir" >/dev/null
	view=$(copy_time "$kind" "$vdir")
	umount "$vdir"
	# throughput ratio: live time / view time, reported as 1/s rates
	row "$2, view vs live (cold)" \
		"$(awk -v t="$live" 'BEGIN { printf "%.3f", 1 / t }')" \
		"$(awk -v t="$view" 'BEGIN { printf "%.3f", 1 / t }')" 1/s tput "$3"
}

bench_view_tar() { view_vs_live tar "tar of the tree" 0.95; }
bench_view_dd() { view_vs_live dd "dd of the $SIZE file" 0.9; }

# save_time ARGS...: seconds of one cold `swactl save MNT --name ARGS...`
# (checkpoint, private view, the save, unmount, release); its output
# goes to $WORK/saveout, emptied first
save_time() {
	local t0 t1
	rm -rf "$WORK/saveout"
	mkdir -p "$WORK/saveout"
	cold swafs
	t0=$(now)
	"$SWACTL" save "$MNT" --name "$@" >/dev/null || die "swactl save $* failed"
	t1=$(now)
	elapsed "$t0" "$t1"
}

# built-in save (pax written by swactl, uncompressed) vs tar -cf of the same
# view through `save --`: the big file and the small-file tree, both cold
bench_save() {
	local tar one two
	[ "$MOUNTED" = 1 ] || swafs_mount
	need_bigfile swafs "$MNT"
	need_tree swafs "$MNT"
	tar=$(save_time bt -- tar -cf "$WORK/saveout/x.tar" -C {} .)
	one=$(save_time b1 --compress none --to "$WORK/saveout")
	two=$(save_time b2 --compress none --streams 2 --to "$WORK/saveout")
	rm -rf "$WORK/saveout"
	row "save vs tar -cf, 1 stream" \
		"$(awk -v t="$tar" 'BEGIN { printf "%.3f", 1 / t }')" \
		"$(awk -v t="$one" 'BEGIN { printf "%.3f", 1 / t }')" 1/s tput 1.0
	row "save vs tar -cf, 2 streams" \
		"$(awk -v t="$tar" 'BEGIN { printf "%.3f", 1 / t }')" \
		"$(awk -v t="$two" 'BEGIN { printf "%.3f", 1 / t }')" 1/s tput -
}

# peak_run RETAIN [READER]: store peak while READER (dd: dd bs=1M, the
# default; tar: tar's 10 KiB reads) copies the big file out of a view and a
# random writer overwrites it; prints "peak captured"
peak_run() {
	local vdir=$WORK/view writer peak
	swafs_umount
	swafs_mount
	need_bigfile swafs "$MNT"
	"$SWACTL" checkpoint "$MNT" --name s --retain "$1" >/dev/null
	"$SWACTL" mount "$MNT" s "$vdir" >/dev/null
	fio --name=pw --filename="$MNT/big.dat" --ioengine=psync --rw=randwrite \
		--bs=4k --size="$SIZE" --time_based --runtime=3600 \
		--output=/dev/null >/dev/null 2>&1 &
	writer=$!
	# the reader starts once the writer captures (fio takes a while to start)
	for _ in $(seq 100); do
		[ "$(ckpt_field s captured_bytes)" = 0 ] || break
		sleep 0.1
	done
	case ${2:-dd} in
	tar) tar -C "$vdir" -cf - big.dat | cat >/dev/null ;;
	*) dd if="$vdir/big.dat" of=/dev/null bs=1M status=none ;;
	esac
	kill "$writer"
	wait "$writer" 2>/dev/null || true
	umount "$vdir"
	# the daemon releases the checkpoint once the view's session ends
	for _ in $(seq 100); do
		peak=$("$SWACTL" events "$MNT" | python3 -c '
import json, sys
for l in sys.stdin:
    e = json.loads(l)
    if e["event"] == "released":
        print(e["peak_store_bytes"], e["captured_bytes"])')
		[ -z "$peak" ] || break
		sleep 0.1
	done
	echo "${peak:-0 0}"
}

bench_store_peak() {
	local saved all tar
	mkdir -p "$WORK/view"
	saved=$(peak_run saved)
	all=$(peak_run all)
	tar=$(peak_run saved tar)
	# shellcheck disable=SC2086
	set -- $saved $all $tar
	say "  retain saved: peak $1 of $2 captured; retain all: peak $3 of $4 captured"
	say "  retain saved, tar's 10 KiB reads: peak $5 of $6 captured"
	row "store peak, retain saved/all" "$3" "$1" bytes time 0.5
	row "store peak / captured, saved" "$2" "$1" bytes time 1
	# a reader whose requests split capture blocks saves as dd does; the
	# peak also follows the reader's speed (tar is slower), so no target
	row "store peak, tar 10K/dd 1M" "$1" "$5" bytes time -
}

# Undo the btrfs anchor's mount and loop device (also from the EXIT trap).
btrfs_down() {
	if [ -n "$BTRFS_MNT" ] && is_mounted "$BTRFS_MNT"; then
		umount "$BTRFS_MNT" 2>/dev/null || umount -l "$BTRFS_MNT"
	fi
	[ -n "$BTRFS_LOOP" ] && losetup -d "$BTRFS_LOOP" 2>/dev/null
	BTRFS_MNT='' BTRFS_LOOP=''
}

# btrfs: the kernel's own copy-on-write snapshot of the same workload, on a
# loop-mounted btrfs, where the machine allows it (root, loop, btrfs-progs)
bench_btrfs() {
	local img=$WORK/btrfs.img mnt=$WORK/btrfs t0 t1 base with pause
	if ! command -v mkfs.btrfs >/dev/null || [ ! -e /dev/loop-control ] ||
	   [ "$(id -u)" != 0 ]; then
		say "  btrfs anchor skipped: needs root, loop devices and btrfs-progs"
		return 0
	fi
	# room for the file, its copy-on-write copy and 4 KiB-extent metadata
	truncate -s "$(( $(numfmt --from=iec "$SIZE") * 5 ))" "$img"
	mkfs.btrfs -q -m single -d single "$img" >/dev/null
	mkdir -p "$mnt"
	BTRFS_LOOP=$(losetup -f --show "$img")
	mount "$BTRFS_LOOP" "$mnt" || { btrfs_down; say "  btrfs mount failed"; return 0; }
	BTRFS_MNT=$mnt
	btrfs -q subvolume create "$mnt/vol" >/dev/null
	fio_run layout "$mnt/vol/big.dat" write bw --rw=write --bs=1M --size="$SIZE" \
		--end_fsync=1 >/dev/null
	base=$(fio_run brw "$mnt/vol/big.dat" write iops --rw=randwrite --bs=4k \
		--size="$SIZE" --time_based --runtime="$RUNTIME")
	sync
	t0=$(now)
	btrfs -q subvolume snapshot -r "$mnt/vol" "$mnt/snap" >/dev/null
	t1=$(now)
	pause=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", (b - a) * 1e6 }')
	with=$(fio_run brw2 "$mnt/vol/big.dat" write iops --rw=randwrite --bs=4k \
		--size="$SIZE" --time_based --runtime="$RUNTIME")
	btrfs_down
	rm -f "$img"
	row "btrfs snapshot: pause (us)" "$pause" "$pause" us time -
	row "btrfs rand write after snapshot" "$base" "$with" IOPS tput -
}

# Stop ckpt_load's writers and unmount its extra trees (also from the trap).
load_down() {
	local p m
	for p in "${LOAD_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	LOAD_PIDS=()
	for m in "${EXTRA_MNTS[@]}"; do
		if is_mounted "$m"; then
			fusermount3 -u "$m" 2>/dev/null || umount -l "$m" || true
		fi
	done
	for p in "${EXTRA_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	EXTRA_MNTS=() EXTRA_PIDS=()
}

# load_writers DIR N: N fio jobs overwriting 4 KiB blocks of files in DIR
load_writers() {
	fio --name=load --directory="$1" --numjobs="$2" --ioengine=psync \
		--rw=randwrite --bs=4k --size=64M --time_based --runtime=3600 \
		--output=/dev/null >/dev/null 2>&1 &
	LOAD_PIDS+=($!)
}

# pauses N MNT...: N checkpoints of the trees at one instant; per
# checkpoint the longest pause any tree reported; prints "median p99"
pauses() {
	local n=$1 k out
	shift
	: >"$TMP/pauses"
	for k in $(seq "$n"); do
		out=$("$SWACTL" checkpoint "$@" --name "l$k" --keep) ||
			die "swactl checkpoint failed: $out"
		printf '%s\n' "$out" | sed -n 's/.*pause_us=\([0-9]*\).*/\1/p' |
			sort -n | tail -n 1 >>"$TMP/pauses"
		for m in "$@"; do "$SWACTL" release "$m" "l$k"; done
		sleep 0.05
	done
	sort -n "$TMP/pauses" | awk '{ v[NR] = $1 } END {
		p = int(NR * 0.99 + 0.999); if (p < 1) p = 1
		printf "%d %d\n", v[int((NR + 1) / 2)], v[p] }'
}

# Pause with 8 writer threads hammering the mount, and the pause of one
# instant across 4 mounts (each with 2 writers) against one of them alone.
bench_ckpt_load() {
	local quiet hammer single common k
	[ "$MOUNTED" = 1 ] || swafs_mount
	quiet=$(pauses 20 "$MNT")
	mkdir -p "$MNT/load"
	load_writers "$MNT/load" 8
	sleep 2
	hammer=$(pauses 20 "$MNT")
	load_down
	for k in 2 3 4; do
		mkdir -p "$WORK/b$k" "$WORK/m$k"
		"$SWAFS" "$WORK/b$k" "$WORK/m$k" -o "store=$WORK" -f \
			>>"$TMP/swafs.log" 2>&1 &
		EXTRA_PIDS+=($!)
		EXTRA_MNTS+=("$WORK/m$k")
	done
	for m in "${EXTRA_MNTS[@]}"; do
		for _ in $(seq 100); do is_mounted "$m" && break; sleep 0.1; done
		is_mounted "$m" || die "extra mount '$m' did not appear"
	done
	for m in "$MNT/load" "${EXTRA_MNTS[@]}"; do
		mkdir -p "$m"
		load_writers "$m" 2
	done
	sleep 2
	single=$(pauses 20 "$MNT")
	common=$(pauses 20 "$MNT" "${EXTRA_MNTS[@]}")
	load_down
	rm -rf "$MNT/load"
	# shellcheck disable=SC2086
	set -- $quiet $hammer $single $common
	row "ckpt pause median, quiet/8 writers" "$1" "$3" us time -
	row "ckpt pause p99, quiet/8 writers" "$2" "$4" us time -
	say "  target: p99 with 8 writers <= 5000 us (it is $4 us)"
	row "pause median, 1 vs 4 trees (writers)" "$5" "$7" us time 2
	row "pause p99, 1 vs 4 trees (writers)" "$6" "$8" us time 2
}

# saved_write_run OPTS: remount with OPTS added; the random writer's IOPS
# while a saver reads a view of a checkpoint at a pace that outlasts the
# writer (so every timed write happens during the save); with no OPTS, the
# writer alone with no checkpoint
saved_write_run() {
	local saver full warn vdir=$WORK/view saved_opts=$OPTS rate
	swafs_umount
	OPTS="${saved_opts:+$saved_opts${1:+,}}$1"
	swafs_mount
	OPTS=$saved_opts
	need_bigfile swafs "$MNT"
	if [ -z "$1" ]; then
		rand_write_run "$MNT"
		return
	fi
	mkdir -p "$vdir"
	"$SWACTL" checkpoint "$MNT" --name t >/dev/null
	"$SWACTL" mount "$MNT" t "$vdir" >/dev/null
	rate=$(($(numfmt --from=iec "$SIZE") * 4 / 5 / RUNTIME))
	fio --name=saver --filename="$vdir/big.dat" --ioengine=psync --rw=read \
		--bs=1M --rate="$rate" --output=/dev/null >/dev/null 2>&1 &
	saver=$!
	rand_write_run "$MNT"
	wait "$saver" || say "  warning: the saver failed (see the events)"
	umount "$vdir"
	warn=$("$SWACTL" events "$MNT" | grep -c '"event":"store-warn"' || true)
	full=$("$SWACTL" events "$MNT" | grep -c '"event":"store-full"' || true)
	say "  -o $1: saver $((rate >> 20)) MiB/s; store-warn $warn, store-full $full"
	[ "$full" = 0 ] || say "  warning: the store ran full: that run measures an invalidated checkpoint"
}

# throttle: a random writer during a save under on_full=throttle with a
# store far smaller than what it changes, against the same writer with no
# checkpoint (the whole cost), and with a checkpoint whose store never
# binds (the share of the throttle alone)
bench_throttle() {
	local none big thr
	# not via $(...): the runs remount (see on_side)
	saved_write_run "" >"$TMP/result"
	none=$(cat "$TMP/result")
	saved_write_run "store_mem=256M,store_max=16G" >"$TMP/result"
	big=$(cat "$TMP/result")
	saved_write_run "on_full=throttle,store_mem=${THROTTLE_STORE%,*},store_max=${THROTTLE_STORE#*,}" >"$TMP/result"
	thr=$(cat "$TMP/result")
	row "rand write 4K, throttle+saver" "$none" "$thr" IOPS tput -
	row "  same, vs unbound store+saver" "$big" "$thr" IOPS tput -
	swafs_umount
}

# view_seek: SEEK_DATA/SEEK_HOLE walks over a 1 TiB sparse file (16
# extents) through a view of a checkpoint after a few of its blocks were
# written into holes and next to data (so the view corrects the live
# answers by captured blocks), against the same walks over an unchanged
# twin of the file through the live mount; 1000 walks each, the best of 3
# alternating rounds (one walk costs microseconds: noise dominates)
bench_view_seek() {
	local f=$MNT/sparse.dat vdir=$WORK/view live=0 view=0 k t
	mkdir -p "$vdir"
	[ "$MOUNTED" = 1 ] || swafs_mount
	python3 "$LIB/tree.py" sparse "$f" $((1 << 40)) 16
	python3 "$LIB/tree.py" sparse "$MNT/twin.dat" $((1 << 40)) 16
	"$SWACTL" checkpoint "$MNT" --name seek >/dev/null
	for k in 1 5 9 13; do
		dd if=/dev/urandom of="$f" bs=4k count=1 conv=notrunc status=none \
			seek=$(((k << 36) / 4096 + 20))
		dd if=/dev/urandom of="$f" bs=4k count=1 conv=notrunc status=none \
			seek=$(((k << 34) / 4096))
	done
	"$SWACTL" mount "$MNT" seek "$vdir" >/dev/null
	for k in 1 2 3; do
		t=$(python3 "$LIB/tree.py" seek "$MNT/twin.dat" 1000)
		live=$(awk -v a="$live" -v b="$t" 'BEGIN { print (a == 0 || b < a) ? b : a }')
		t=$(python3 "$LIB/tree.py" seek "$vdir/sparse.dat" 1000)
		view=$(awk -v a="$view" -v b="$t" 'BEGIN { print (a == 0 || b < a) ? b : a }')
	done
	umount "$vdir"
	rm -f "$f" "$MNT/twin.dat"
	swafs_umount
	row "SEEK_DATA over a 1 TiB sparse file, view vs live" "$live" "$view" s time 2
}

# -------------------------------------------------------------- checks, setup

preflight() {
	local w
	# shellcheck disable=SC2086
	for w in $ONLY; do
		case " $WORKLOADS " in
		*" $w "*) ;;
		*) die "BENCH_ONLY: unknown workload '$w' (known: $WORKLOADS)" ;;
		esac
	done
	[ -x "$SWAFS" ] || die "no daemon at '$SWAFS': run 'make' first"
	[ -x "$SWACTL" ] || die "no swactl at '$SWACTL': run 'make' first"
	for w in fio python3 tar fusermount3 awk; do
		command -v "$w" >/dev/null ||
			die "'$w' not found: run 'make deps' (scripts/install-deps.sh)"
	done
	[ -e /dev/fuse ] || die "/dev/fuse is missing: FUSE is not available here"
	case "$RUNTIME" in
	'' | *[!0-9]*) die "BENCH_RUNTIME must be whole seconds, not '$RUNTIME'" ;;
	esac
	case "$NFILES$NDIRS" in
	*[!0-9]*) die "BENCH_FILES and BENCH_DIRS must be numbers" ;;
	esac
	[ "$NDIRS" -gt 0 ] || die "BENCH_DIRS must be at least 1"
	numfmt --from=iec "$SIZE" >/dev/null 2>&1 ||
		die "BENCH_SIZE '$SIZE' is not a size like 1G or 256M"
}

setup_dirs() {
	local base=${BENCH_DIR:-/var/tmp/swafs-bench.$$} fstype
	case "$base" in
	*[[:space:]]*) die "BENCH_DIR must not contain white space: '$base'" ;;
	esac
	if [ -e "$base" ]; then
		[ -d "$base" ] || die "BENCH_DIR '$base' is not a directory"
		WORK=$(mktemp -d "$base/swafs-bench.XXXXXX")
	else
		mkdir -p "$base"
		WORK=$(cd "$base" && pwd)
	fi
	WORK_OWNED=1
	TMP=$WORK/tmp
	NATIVE=$WORK/native
	BACKING=$WORK/backing
	MNT=$WORK/mnt
	mkdir "$TMP" "$NATIVE" "$BACKING" "$MNT"
	: >"$TMP/rows"

	fstype=$(fs_type "$WORK")
	case "$fstype" in
	tmpfs | ramfs | fuse* | overlayfs | nfs*)
		die "'$WORK' is on $fstype; point BENCH_DIR at a local disk (e.g. /var/tmp)" ;;
	esac
	check_space
}

# Both sides keep their big file until the random-read run, then their trees:
# 2 x size + 2 x files x (data + inode/dirent overhead) + 512 MiB of slack.
check_space() {
	local size need avail
	size=$(numfmt --from=iec "$SIZE")
	need=$((2 * size + 2 * NFILES * (FILESIZE + 4096) + 512 * 1024 * 1024))
	avail=$(df -P -B1 "$WORK" | awk 'NR == 2 { print $4 }')
	if [ "$avail" -lt "$need" ]; then
		die "not enough free space in '$WORK': need $(numfmt --to=iec "$need"), have $(numfmt --to=iec "$avail") (lower BENCH_SIZE/BENCH_FILES or set BENCH_DIR)"
	fi
	say "data in '$WORK' ($(fs_type "$WORK"), $(numfmt --to=iec "$avail") free, need $(numfmt --to=iec "$need"))"
}

# -------------------------------------------------------------- main

preflight
setup_dirs
swafs_mount
for w in $WORKLOADS; do
	case "$ONLY" in
	*" $w "*) ;;
	*) continue ;;
	esac
	say "$w"
	"bench_$w"
done
swafs_umount

mkdir -p "$(dirname "$OUT")"
print_table | tee "$OUT"
say "table written to '$OUT'; took $(elapsed "$T_START" "$(now)" | cut -d. -f1) s"
if [ "$STRICT" = 1 ] && grep -q 'MISSED$' "$TMP/rows"; then
	exit 1
fi
exit 0
