# shellcheck shell=bash
# shellcheck disable=SC2034  # variables set here are used by the tests
# Helpers for the tests of local attacks (issue 17): two real test users
# made for the test with useradd and removed at exit, and ways to run
# commands as them or as nobody.  Source it instead of ckpt-lib.sh.
# shellcheck source=ckpt-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/ckpt-lib.sh"

SYSPY=/usr/bin/python3	# other uids cannot reach root's python shims
_SEC_USERS=()

# sec_user NAME: create user NAME (no home, no login), removed at exit
sec_user() {
	useradd --system --no-create-home --user-group --shell /usr/sbin/nologin "$1" ||
		fail "cannot create test user $1"
	_SEC_USERS+=("$1")
}

# as_argv UID: AS_ARGV is the command prefix that runs as UID (its own
# group, no others), for commands that cannot run a shell function
as_argv() {
	AS_ARGV=(setpriv --reuid="$1" --regid="$(id -g "$1" 2>/dev/null || echo "$1")"
		--clear-groups)
}

# as UID CMD...: run CMD as UID
as() {
	as_argv "$1"
	shift
	"${AS_ARGV[@]}" "$@"
}

# as_bg UID CMD...: as, in the background, killed at exit (before the users
# go away: a user with processes cannot be removed); its pid in SEC_PID
as_bg() {
	as_argv "$1"
	shift
	"${AS_ARGV[@]}" "$@" &
	SEC_PID=$!
	ckpt_helper "$SEC_PID"
}

# $SWAFS_NOBODY: the daemon with real uid 65534 and effective uid 0, so
# its mount is owned by uid 65534 (/dev/fuse is 0600 here: see t-security)
SWAFS_NOBODY=$WORK/swafs-nobody
cat >"$SWAFS_NOBODY" <<EOF
#!/bin/sh
exec "$SYSPY" -c 'import os, sys
os.setresgid($NOBODY_GID, 0, 0)
os.setresuid($NOBODY_UID, 0, 0)
os.execv(sys.argv[1], sys.argv[1:])' "$SWAFS" "\$@"
EOF
chmod 755 "$SWAFS_NOBODY"

# sec_coord PID: a sync coordinator (no child of ours) to kill at exit
_SEC_COORDS=()
sec_coord() { _SEC_COORDS+=("$1"); }

# helpers first: a user with processes cannot be removed; processes the
# test users left (sync coordinators detach themselves) are the test's too
_sec_cleanup() {
	local rc=$? p u uid
	set +e
	for p in "${_CKPT_HELPERS[@]}"; do stop_helper "$p"; done
	for p in "${_SEC_COORDS[@]}"; do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" != swafs-sync ] ||
			kill -KILL "$p" 2>/dev/null
	done
	for u in "${_SEC_USERS[@]}"; do
		uid=$(id -u "$u") || continue
		for p in $(ps -o pid= -u "$uid"); do kill -KILL "$p" 2>/dev/null; done
		rm -rf "/tmp/swafs-sync-$uid"
		userdel "$u" 2>/dev/null
	done
	_ckpt_ret "$rc"
	_ckpt_cleanup
}
trap _sec_cleanup EXIT

TU1=swafs-ta$$ TU2=swafs-tb$$
sec_user "$TU1"
sec_user "$TU2"
TU1_UID=$(id -u "$TU1") TU2_UID=$(id -u "$TU2")
