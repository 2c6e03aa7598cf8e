# shellcheck shell=bash
# shellcheck disable=SC2034  # variables set here are used by the tests
# Common helpers for the swafs integration tests. Source it first:
#
#   . "$(dirname "$0")/lib.sh"
#
# It gives the test a private work dir ($WORK, removed at exit), mount and
# unmount helpers that track what the test mounted and which daemons it
# started, an EXIT trap that cleans all of that up even when the test fails,
# and assertions that say what differed.
#
# Environment: SWAFS (daemon binary, default bin/swafs of this checkout),
# PYTHON (default python3), MOUNT_TIMEOUT (seconds, default 15),
# KEEP_WORK=1 keeps the work dir for a post-mortem (mounts are still undone).
set -eu

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$IT_DIR/../.." && pwd)
SWAFS=${SWAFS:-$ROOT/bin/swafs}
PYTHON=${PYTHON:-python3}
MOUNT_TIMEOUT=${MOUNT_TIMEOUT:-15}
T_NAME=$(basename "$0" .sh)

# uids/gids used for unprivileged cases; they need no passwd entries
NOBODY_UID=65534
NOBODY_GID=65534
OTHER_UID=4242
OTHER_GID=4243
EXTRA_GID=4244

WORK=$(mktemp -d "${TMPDIR:-/tmp}/swafs-$T_NAME.XXXXXX")
# other uids must be able to reach mounts and dirs below $WORK
chmod 755 "$WORK"

_MOUNTS=()	# mountpoints this test mounted, in order
_PIDS=()	# daemon and helper pids this test started
_NMOUNT=0
SWAFS_PID=	# pid of the daemon of the last swafs_mount

log() { printf '%s: %s\n' "$T_NAME" "$*" >&2; }

fail() {
	printf 'FAIL: %s: %s\n' "$T_NAME" "$*" >&2
	exit 1
}

# track_pid PID: have the EXIT trap kill PID if it is still running then
track_pid() { _PIDS+=("$1"); }

pid_gone() { ! pid_alive "$1"; }

# is_our_child PID: PID is a child of this test's shell (guards against
# killing a process that reused the pid of one of ours)
is_our_child() {
	local ppid
	ppid=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f2) || return 1
	[ "$ppid" = "$$" ]
}

pid_alive() {
	local st
	[ -r "/proc/$1/stat" ] || return 1
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# mountinfo escapes these characters in paths
_mi_escape() {
	local p=$1
	p=${p//\\/\\134}
	p=${p// /\\040}
	p=${p//	/\\011}
	printf '%s' "$p"
}

# fuse_mount_count DIR: how many fuse mounts sit exactly on DIR
fuse_mount_count() {
	MI_PATH=$(_mi_escape "$1") awk '{
		for (i = 7; i <= NF; i++) if ($i == "-") break
		if ($5 == ENVIRON["MI_PATH"] && $(i + 1) ~ /^fuse/) c++
	} END { print c + 0 }' /proc/self/mountinfo
}

is_fuse_mount() { [ "$(fuse_mount_count "$1")" -gt 0 ]; }

# fuse_mounts_under DIR: every fuse mountpoint at or below DIR
fuse_mounts_under() {
	MI_PATH=$(_mi_escape "$1") awk '{
		m = ENVIRON["MI_PATH"]
		for (i = 7; i <= NF; i++) if ($i == "-") break
		if (($5 == m || index($5, m "/") == 1) && $(i + 1) ~ /^fuse/)
			print $5
	}' /proc/self/mountinfo
}

# opath_fds PID: how many O_PATH descriptors (flag 010000000) PID holds
opath_fds() {
	local fd flags n=0
	for fd in /proc/"$1"/fdinfo/*; do
		flags=$(awk '/^flags:/ { print $2 }' "$fd" 2>/dev/null) || continue
		[ -n "$flags" ] || continue
		(((8#$flags & 8#10000000) != 0)) && n=$((n + 1))
	done
	echo "$n"
}

# wait_until SECS CMD...: poll CMD every 50 ms until it succeeds or SECS pass
wait_until() {
	local secs=$1 end
	shift
	end=$(($(date +%s%N) + secs * 1000000000))
	until "$@"; do
		[ "$(date +%s%N)" -lt "$end" ] || return 1
		sleep 0.05
	done
}

# swafs_mount BACKING MNT [OPT...]: mount with the daemon in the foreground
# (-f) as a background job of this shell, so $! is the daemon; wait until the
# mount is up. Each OPT is either passed as is when it starts with '-'
# (e.g. "-o" "ro") or given to -o (e.g. "allow_other,timeout=1").
# Sets SWAFS_PID. Fails the test if the daemon exits or the mount does not
# appear in time. The daemon's output goes to $WORK/daemon.N.log.
swafs_mount() {
	local backing=$1 mnt=$2 before pid rc a args=() dlog
	shift 2
	for a in "$@"; do
		case $a in
		-*) args+=("$a") ;;
		*) args+=(-o "$a") ;;
		esac
	done
	[ -x "$SWAFS" ] || fail "daemon binary '$SWAFS' is missing (run make)"
	mnt=$(realpath -- "$mnt")
	before=$(fuse_mount_count "$mnt")
	_NMOUNT=$((_NMOUNT + 1))
	dlog=$WORK/daemon.$_NMOUNT.log
	"$SWAFS" "$backing" "$mnt" "${args[@]}" -f >"$dlog" 2>&1 &
	pid=$!
	_PIDS+=("$pid")
	_MOUNTS+=("$mnt")
	local end=$(($(date +%s%N) + MOUNT_TIMEOUT * 1000000000))
	until [ "$(fuse_mount_count "$mnt")" -gt "$before" ]; do
		if ! pid_alive "$pid"; then
			rc=0
			wait "$pid" || rc=$?
			fail "daemon exited with status $rc before '$mnt' was mounted: $(head -c 2000 "$dlog")"
		fi
		[ "$(date +%s%N)" -lt "$end" ] ||
			fail "'$mnt' not mounted after ${MOUNT_TIMEOUT}s: $(head -c 2000 "$dlog")"
		sleep 0.05
	done
	# the control socket comes up just after the mount: wait for it too
	wait_until "$MOUNT_TIMEOUT" _ctl_ready "$mnt" ||
		fail "'$mnt' is mounted but its control socket does not answer"
	SWAFS_PID=$pid
	_set_pid_of "$mnt" "$pid"
}

_ctl_ready() { "$ROOT/bin/swactl" list "$1" >/dev/null 2>&1; }

# pid bookkeeping per mountpoint: a plain list of "pid mnt" lines
_PIDMAP=$WORK/.pidmap
: >"$_PIDMAP"
_set_pid_of() { printf '%s %s\n' "$2" "$1" >>"$_PIDMAP"; }
# daemon_pid MNT: the pid of the last daemon this test mounted on MNT
daemon_pid() {
	MI_PATH=$(realpath -- "$1") awk '{
		p = $1; sub(/^[0-9]+ /, ""); if ($0 == ENVIRON["MI_PATH"]) r = p
	} END { if (r == "") exit 1; print r }' "$_PIDMAP"
}

# swafs_umount MNT: unmount and require the daemon to exit with status 0
swafs_umount() {
	local mnt pid rc=0
	mnt=$(realpath -- "$1")
	pid=$(daemon_pid "$mnt") || pid=
	fusermount3 -u -- "$mnt" || fail "fusermount3 -u '$mnt' failed"
	[ -n "$pid" ] || return 0
	wait_until 10 pid_gone "$pid" ||
		fail "daemon $pid still running 10s after '$mnt' was unmounted"
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ] || fail "daemon for '$mnt' exited with status $rc after unmount"
}

# daemon_fd_count PID: number of open fds of a process
daemon_fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# pids of processes running the swafs binary whose command line mentions
# DIR (used for daemons that daemonized themselves, e.g. via mount(8));
# the work dir path is unique, so this cannot match anyone else's process
swafs_pids_for() {
	local p cmd exe want
	want=$(realpath -- "$SWAFS" 2>/dev/null) || want=$SWAFS
	for p in /proc/[0-9]*; do
		exe=$(readlink "$p/exe" 2>/dev/null) || continue
		[ "$exe" = "$want" ] || continue
		cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
		case $cmd in *"$1"*) printf '%s\n' "${p#/proc/}" ;; esac
	done
}

# no_daemon_for DIR: no swafs daemon mentions DIR any more
no_daemon_for() { [ -z "$(swafs_pids_for "$1")" ]; }

_cleanup() {
	local rc=$? m i pid left
	set +e
	trap - EXIT INT TERM HUP
	# unmount in reverse order, plus anything else left under $WORK
	for ((i = ${#_MOUNTS[@]} - 1; i >= 0; i--)); do
		m=${_MOUNTS[$i]}
		while is_fuse_mount "$m"; do
			fusermount3 -u -q -- "$m" 2>/dev/null ||
				umount -- "$m" 2>/dev/null ||
				umount -l -- "$m" 2>/dev/null || break
		done
	done
	for m in $(fuse_mounts_under "$WORK" | sort -r); do
		fusermount3 -u -q -- "$m" 2>/dev/null || umount -l -- "$m" 2>/dev/null
	done
	for pid in "${_PIDS[@]}"; do
		is_our_child "$pid" && pid_alive "$pid" && kill -TERM "$pid" 2>/dev/null
	done
	# daemons started through mount(8) are not our children: they are
	# known by the swafs binary and the unique work dir in their arguments
	for pid in "${_PIDS[@]}" $(swafs_pids_for "$WORK"); do
		pid_alive "$pid" || continue
		is_our_child "$pid" || swafs_pids_for "$WORK" | grep -qx "$pid" ||
			continue
		kill -TERM "$pid" 2>/dev/null
		wait_until 5 pid_gone "$pid" || kill -KILL "$pid" 2>/dev/null
	done
	left=$(fuse_mounts_under "$WORK")
	if [ -n "$left" ]; then
		printf '%s: WARNING: mounts left, not removing %s: %s\n' \
			"$T_NAME" "$WORK" "$left" >&2
		[ "$rc" -ne 0 ] || rc=1
	elif [ "${KEEP_WORK:-0}" = 1 ]; then
		printf '%s: work dir kept: %s\n' "$T_NAME" "$WORK" >&2
	else
		# the work dir may hold files other uids made read-only
		chmod -R u+rwX "$WORK" 2>/dev/null
		rm -rf -- "$WORK"
	fi
	exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---- assertions -----------------------------------------------------------

# assert_eq WHAT EXPECTED ACTUAL
assert_eq() {
	[ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
}

# assert_status WHAT EXPECTED CMD...: CMD must exit with status EXPECTED
assert_status() {
	local what=$1 want=$2 rc=0
	shift 2
	"$@" || rc=$?
	[ "$rc" -eq "$want" ] || fail "$what: expected exit status $want, got $rc from: $*"
}

# assert_files_eq A B: same bytes; on a difference report the first one
assert_files_eq() {
	local out
	out=$(cmp -- "$1" "$2" 2>&1) || fail "files differ: $out"
}

# assert_text_eq WHAT FILE_A FILE_B: text files equal, else show a diff
assert_text_eq() {
	local d rc=0
	d=$(diff -u -- "$2" "$3") || rc=$?
	[ "$rc" -eq 0 ] || fail "$1 differ ($2 vs $3):
$(printf '%s\n' "$d" | head -n 60)"
}

# manifest DIR [--all-mtimes]: one line per object below DIR with what a
# faithful copy must preserve (see helpers.py)
manifest() { "$PYTHON" "$IT_DIR/helpers.py" manifest "$@"; }

# assert_trees_eq A B [--all-mtimes]: manifests of A and B are identical
assert_trees_eq() {
	local a=$1 b=$2 ma mb
	shift 2
	ma=$(mktemp "$WORK/manifest.XXXXXX")
	mb=$(mktemp "$WORK/manifest.XXXXXX")
	manifest "$a" "$@" >"$ma" || fail "cannot list '$a'"
	manifest "$b" "$@" >"$mb" || fail "cannot list '$b'"
	assert_text_eq "trees '$a' and '$b'" "$ma" "$mb"
}
