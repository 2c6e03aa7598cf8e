# shellcheck shell=bash
# Helpers for the checkpoint tests (t-ckpt-*.sh, t-g*-*.sh). Source it
# instead of lib.sh:
#
#   . "$(dirname "$0")/ckpt-lib.sh"
#
# It sources lib.sh (read-only; see there for $WORK, swafs_mount, fail...)
# and adds: views that are unmounted before the live mounts at exit, helper
# processes that are stopped first at exit, swactl wrappers and manifests.
#
# Environment: SWACTL (default bin/swactl of this checkout).

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SWACTL=${SWACTL:-$ROOT/bin/swactl}
MANIFEST_PY=$IT_DIR/manifest.py
[ -x "$SWACTL" ] || fail "'$SWACTL' is missing (run make)"

_CKPT_VIEWS=()		# view mountpoints, in mount order
_CKPT_HELPERS=()	# helper processes (writers, readers, samplers)

# ckpt_helper PID: a helper process the EXIT trap kills before unmounting
ckpt_helper() { _CKPT_HELPERS+=("$1"); }

# stop_helper PID: kill one helper (continue it first if stopped), reap it
stop_helper() {
	kill -CONT "$1" 2>/dev/null || true
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

_ckpt_ret() { return "$1"; }

_ckpt_cleanup() {
	local rc=$? i d p
	set +e
	for p in "${_CKPT_HELPERS[@]}"; do
		pid_alive "$p" || continue
		kill -CONT "$p" 2>/dev/null
		kill -KILL "$p" 2>/dev/null
	done
	for p in "${_CKPT_HELPERS[@]}"; do wait "$p" 2>/dev/null; done
	for ((i = ${#_CKPT_VIEWS[@]} - 1; i >= 0; i--)); do
		d=${_CKPT_VIEWS[$i]}
		while is_fuse_mount "$d"; do
			umount -- "$d" 2>/dev/null ||
				fusermount3 -u -q -- "$d" 2>/dev/null ||
				umount -l -- "$d" 2>/dev/null || break
		done
	done
	_ckpt_ret "$rc"
	_cleanup
}
trap _ckpt_cleanup EXIT

# swactl ARGS...: run swactl
swactl() { "$SWACTL" "$@"; }

# ckpt_take MNT NAME [OPTS...]: take a checkpoint, fail the test if that
# does not work; sets CKPT_PAUSE_US from the output
ckpt_take() {
	local mnt=$1 name=$2 out rc=0
	shift 2
	out=$("$SWACTL" checkpoint "$mnt" --name "$name" "$@" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || fail "swactl checkpoint $mnt --name $name $*: exit $rc: $out"
	case $out in
	*pause_us=*) CKPT_PAUSE_US=${out##*pause_us=}; CKPT_PAUSE_US=${CKPT_PAUSE_US%%)*} ;;
	*) fail "swactl checkpoint printed no pause: '$out'" ;;
	esac
	[[ $CKPT_PAUSE_US =~ ^[0-9]+$ ]] || fail "bad pause in '$out'"
}

# view_mount MNT NAME DIR: mount the view of NAME on DIR (created if need
# be); it is unmounted at exit before the live mounts
view_mount() {
	local mnt=$1 name=$2 dir=$3 out rc=0
	mkdir -p -- "$dir"
	dir=$(realpath -- "$dir")
	_CKPT_VIEWS+=("$dir")
	out=$("$SWACTL" mount "$mnt" "$name" "$dir" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || fail "swactl mount $mnt $name $dir: exit $rc: $out"
	wait_until 10 is_fuse_mount "$dir" || fail "view '$dir' not mounted: $out"
}

# view_umount DIR: unmount a view (it must work)
view_umount() {
	umount -- "$1" || fail "umount view '$1' failed"
}

# ckpt_json MNT: swactl list MNT --json
ckpt_json() { "$SWACTL" list "$1" --json; }

# ckpt_field MNT NAME FIELD: one field of checkpoint NAME from list --json,
# booleans as 1 or 0 (prints 'absent' if there is no such checkpoint)
ckpt_field() {
	"$SWACTL" list "$1" --json | "$PYTHON" -c '
import json, sys
name, field = sys.argv[1], sys.argv[2]
for c in json.load(sys.stdin):
    if c["name"] == name:
        v = c[field]
        print(int(v) if isinstance(v, bool) else v); break
else:
    print("absent")' "$2" "$3"
}

# vmrss_kb PID: resident set size of a process in KiB
vmrss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# mfst DIR OUT [make options]: write the manifest of DIR to OUT
mfst() {
	local dir=$1 out=$2
	shift 2
	"$PYTHON" "$MANIFEST_PY" make "$dir" -o "$out" "$@" ||
		fail "manifest of '$dir' failed"
}

# assert_manifest_eq WHAT EXPECTED ACTUAL [--ignore FIELD...]: two
# manifest files are equal; on a difference print the differences
assert_manifest_eq() {
	local what=$1 a=$2 b=$3 out
	shift 3
	out=$("$PYTHON" "$MANIFEST_PY" cmp "$a" "$b" "$@") ||
		fail "$what:
$out"
}

# ckpt_text_eq WHAT FILE_A FILE_B: text files equal, else fail with a diff
ckpt_text_eq() {
	local d
	if ! cmp -s -- "$2" "$3"; then
		d=$(diff -u -- "$2" "$3" | head -n 60)
		fail "$1 differ ($2 vs $3):
$d"
	fi
}

# events_of MNT: the events of the mount (JSON Lines)
events_of() { "$SWACTL" events "$1"; }

# now_ns: CLOCK_REALTIME in nanoseconds
now_ns() { date +%s%N; }

# copy_in_flight SRC DST BACKING_DST: copy the 2 GiB file SRC to DST (both
# through a live tree) with copy_file_range, one long modifying call, in
# the background; returns once it has started (BACKING_DST grows), with
# the copier's pid in CP_PID (stopped by the EXIT trap if still running).
copy_in_flight() {
	rm -f "$3"
	"$PYTHON" -c '
import os, sys
s = os.open(sys.argv[1], os.O_RDONLY)
d = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644)
off = 0
while off < 2 << 30:
    n = os.copy_file_range(s, d, (2 << 30) - off, off, off)
    if n <= 0:
        sys.exit(1)
    off += n' "$1" "$2" &
	CP_PID=$!
	ckpt_helper "$CP_PID"
	_CP_DST=$3	# wait_until evals in its own function: no $3 there
	wait_until 10 eval '[ "$(stat -c %s "$_CP_DST" 2>/dev/null || echo 0)" -gt 0 ]' ||
		fail "copy_file_range did not start"
}

# counter_writer STOP FILE...: in the background, write one increasing
# counter into every FILE in turn (a mount's file each), as fast as the
# mounts allow, until STOP exists; its pid in WRITER_PID (a helper).  At
# any common instant the files hold a state it passed through: equal, or
# a leading run one ahead; instants taken one tree after the other would
# show a skew of several steps.
counter_writer() {
	"$PYTHON" - "$@" <<'EOF' &
import os, sys
stop, *files = sys.argv[1:]
fds = [os.open(f, os.O_WRONLY) for f in files]
i = 0
while i % 256 or not os.path.exists(stop):
    i += 1
    for fd in fds:
        os.pwrite(fd, b'%012d\n' % i, 0)
EOF
	WRITER_PID=$!
	ckpt_helper "$WRITER_PID"
}
