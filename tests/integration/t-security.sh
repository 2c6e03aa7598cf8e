#!/bin/bash
# Security: (1) on a mount made by root with allow_other, another uid may
# learn how many checkpoints there are and which events happened (not
# their names or sizes) but not change (checkpoint, prepare, mount,
# release: exit 1, one line "permission denied"), and nothing is created; (2) a view
# enforces the permissions as at T (default_permissions), not the live
# ones; (3) symlinks are served as symlinks and never followed by the
# daemon, in the live tree and in views, also when a directory is swapped
# for a symlink behind the mount's back; (4) a mount owned by a non-root
# user: its owner may change checkpoints, another uid may not.
#
# (4) runs the daemon with real uid 65534 and effective uid 0: /dev/fuse is
# 0600 here, so a true user mount (fusermount3) cannot be made without
# changing the machine; the daemon's owner is its real uid either way and
# the kernel mount carries user_id=65534 as fusermount3 would give it.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/deep/mnt S=$WORK/store V=$WORK/views
mkdir -p "$B" "$M" "$S" "$V" "$WORK/outside"
chmod 755 "$WORK/deep" "$V"
as_nobody() { setpriv --reuid=$NOBODY_UID --regid=$NOBODY_GID --clear-groups "$@"; }
as_other() { setpriv --reuid=$OTHER_UID --regid=$OTHER_GID --clear-groups "$@"; }
names() { swactl list "$1" --json | "$PYTHON" -c '
import json, sys
print(" ".join(sorted(c["name"] for c in json.load(sys.stdin))))'; }

# denied CMD...: exit 1, nothing on stdout, one line "permission denied"
denied() {
	local rc=0
	"$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
	[ "$rc" -eq 1 ] || fail "'$*': exit $rc, expected 1: $(cat "$WORK/err")"
	[ ! -s "$WORK/out" ] || fail "'$*': printed on stdout: $(cat "$WORK/out")"
	[ "$(awk 'END { print NR }' "$WORK/err")" -eq 1 ] ||
		fail "'$*': not one line: $(cat "$WORK/err")"
	grep -q "permission denied" "$WORK/err" ||
		fail "'$*': not refused for permission: $(cat "$WORK/err")"
}
# other uids cannot reach root's python shims
SYSPY=/usr/bin/python3
# raw_as WHO LINE: send one raw request line as user WHO, print the reply
raw_as() {
	"$1" "$SYSPY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
sys.stdout.write(s.makefile().readline())' "$SOCK" "$2"
}

# ---- 1. root's mount: other uids read, never change ---------------------------
swafs_mount "$B" "$M" "allow_other,events=$WORK/events,store=$S"
SOCK=/run/swafs/$(stat -c '%Hd:%Ld' "$M").sock
[ -S "$SOCK" ] || fail "no control socket $SOCK"
echo data >"$M/f"
swactl checkpoint "$M" --name c0 >/dev/null || fail "root's checkpoint"
out=$(as_nobody "$SWACTL" list "$M") || fail "uid $NOBODY_UID cannot list: $out"
[ -z "$out" ] || fail "uid $NOBODY_UID sees the checkpoints: '$out'"
as_nobody "$SWACTL" events "$M" | grep -q '"event":"reached"}' ||
	fail "uid $NOBODY_UID does not see the events' kinds alone"
mkdir "$WORK/vn" "$WORK/vr"
chown "$NOBODY_UID:$NOBODY_GID" "$WORK/vn"
denied as_nobody "$SWACTL" checkpoint "$M" --name evil
denied as_nobody "$SWACTL" mount "$M" c0 "$WORK/vn"
denied as_nobody "$SWACTL" release "$M" c0
denied as_other "$SWACTL" checkpoint "$M" --name evil2
denied as_other "$SWACTL" release "$M" c0
for req in "prepare evil4 saved 0 nomax" "checkpoint evil5 all 1 0" \
	"mount c0 $WORK/vn" "release c0"; do
	got=$(raw_as as_nobody "$req")
	[[ $got == "err 1 permission denied"* ]] ||
		fail "raw '$req' as uid $NOBODY_UID: '$got'"
done
assert_eq "checkpoints after the refused changes" c0 "$(names "$M")"
is_fuse_mount "$WORK/vn" && fail "a view was mounted for uid $NOBODY_UID"

# ---- 2. a view enforces the permissions as at T ---------------------------------
echo closed-at-T >"$M/secret"
chmod 600 "$M/secret"
echo open-at-T >"$M/open"
chmod 644 "$M/open"
swactl checkpoint "$M" --name c1 >/dev/null || fail "checkpoint c1"
view_mount "$M" c1 "$V/v1"
chmod 644 "$M/secret"
chmod 600 "$M/open"
assert_eq "live secret, now 0644, as uid $NOBODY_UID" closed-at-T "$(as_nobody cat "$M/secret")"
as_nobody cat "$M/open" >/dev/null 2>&1 && fail "live open, now 0600, readable by uid $NOBODY_UID"
assert_eq "mode of secret in the view" 600 "$(stat -c %a "$V/v1/secret")"
if as_nobody cat "$V/v1/secret" >"$WORK/out" 2>"$WORK/err"; then
	fail "uid $NOBODY_UID read a file that was 0600 at T through the view: $(cat "$WORK/out")"
fi
grep -q "Permission denied" "$WORK/err" || fail "view secret: $(cat "$WORK/err")"
assert_eq "view open (0644 at T) as uid $NOBODY_UID" open-at-T "$(as_nobody cat "$V/v1/open")"
as_nobody sh -c "echo x >>'$V/v1/open'" 2>/dev/null && fail "uid $NOBODY_UID wrote to a view"
view_umount "$V/v1"

# ---- 3. symlinks are never followed by the daemon ---------------------------------
# From BACKING, ../outside is $WORK/outside; from the mount or a view (one
# level deeper) it is a directory that does not exist.  Serving
# $WORK/outside's content would mean the daemon resolved the link itself.
echo SECRET-OUTSIDE >"$WORK/outside/secret"
ln -s ../outside "$B/dl"
ln -s ../outside/secret "$B/fl"
mkdir "$B/d"
echo inside >"$B/d/secret"
swactl checkpoint "$M" --name c2 >/dev/null || fail "checkpoint c2"
view_mount "$M" c2 "$V/v2"
for t in "$M" "$V/v2"; do
	assert_eq "type of $t/dl" "symbolic link" "$(stat -c %F "$t/dl")"
	assert_eq "target of $t/dl" ../outside "$(readlink "$t/dl")"
	assert_eq "target of $t/fl" ../outside/secret "$(readlink "$t/fl")"
	for p in "$t/fl" "$t/dl/secret"; do
		got=$(cat "$p" 2>&1) && fail "'$p' was readable: $got"
		[[ $got != *SECRET* ]] || fail "'$p' exposed the target outside: $got"
	done
	ls "$t/dl/" >/dev/null 2>&1 && fail "'$t/dl/' lists a directory"
	assert_eq "file under d in $t" inside "$(cat "$t/d/secret")"
done
# a directory swapped for a symlink behind the mount's back
rm -r "$B/d"
ln -s ../outside "$B/d"
got=$(cat "$M/d/secret" 2>&1) || true
[[ $got != *SECRET* ]] || fail "the live tree followed a symlink swapped in behind its back: $got"
got=$(cat "$V/v2/d/secret" 2>&1) || true
[[ $got != *SECRET* ]] || fail "the view followed a symlink swapped in behind its back: $got"
rc=0
"$SWACTL" checkpoint "$M" --name c3 --path dl >/dev/null 2>"$WORK/err" || rc=$?
[ "$rc" -eq 2 ] && grep -q symlink "$WORK/err" ||
	fail "--path through a symlink: exit $rc: $(cat "$WORK/err")"
view_umount "$V/v2"
for c in c0 c1 c2; do swactl release "$M" "$c" >/dev/null 2>&1 || true; done
swafs_umount "$M"

# ---- 4. a mount owned by uid 65534: the owner changes, others do not ----------------
cat >"$WORK/swafs-ruid" <<EOF
#!/bin/sh
exec "$SYSPY" -c 'import os, sys
os.setresgid($NOBODY_GID, 0, 0)
os.setresuid($NOBODY_UID, 0, 0)
os.execv(sys.argv[1], sys.argv[1:])' "$SWAFS" "\$@"
EOF
chmod 755 "$WORK/swafs-ruid"
chown "$NOBODY_UID:$NOBODY_GID" "$B"
SWAFS=$WORK/swafs-ruid swafs_mount "$B" "$M" "allow_other,store=$S"
grep -F " $M " /proc/self/mountinfo | grep -q "user_id=$NOBODY_UID" ||
	fail "the mount is not owned by uid $NOBODY_UID: $(grep -F " $M " /proc/self/mountinfo)"
as_nobody "$SWACTL" checkpoint "$M" --name mine --keep >/dev/null ||
	fail "the owner (uid $NOBODY_UID) cannot take a checkpoint"
denied as_other "$SWACTL" checkpoint "$M" --name theirs
denied as_other "$SWACTL" release "$M" mine
denied as_other "$SWACTL" mount "$M" mine "$WORK/vn"
rc=0
as_nobody "$SWACTL" mount "$M" mine "$WORK/vr" 2>"$WORK/err" || rc=$?
[ "$rc" -eq 1 ] || fail "the owner mounted a view on root's directory: exit $rc"
is_fuse_mount "$WORK/vr" && fail "view mounted on root's directory"
_CKPT_VIEWS+=("$WORK/vn")
as_nobody "$SWACTL" mount "$M" mine "$WORK/vn" >/dev/null ||
	fail "the owner cannot mount a view on its own directory"
wait_until 10 is_fuse_mount "$WORK/vn" || fail "the owner's view is not mounted"
view_umount "$WORK/vn"
swactl checkpoint "$M" --name roots >/dev/null || fail "root cannot take a checkpoint on a user's mount"
assert_eq "checkpoints on the user's mount" "mine roots" "$(names "$M")"
as_nobody "$SWACTL" release "$M" roots || fail "the owner cannot release"
swactl release "$M" mine 2>/dev/null || true
swafs_umount "$M"
log ok
