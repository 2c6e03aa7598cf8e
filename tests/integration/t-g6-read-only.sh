#!/bin/bash
# G6 read-only: every modifying call on a view fails with EROFS (open for
# writing, O_TRUNC, create, O_TMPFILE, truncate, mkdir, rmdir, unlink,
# rename and renameat2, link, symlink, mknod, chmod, chown, utime,
# setxattr, removexattr, the f* variants on read-only descriptors); neither
# the view nor the live tree changes. Then root remounts the view
# read-write (if the kernel lets it): the daemon itself must still refuse
# every call with EROFS.
#
# CKPT_SELFTEST=1 expects EPERM instead: the test must then fail.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt S=$WORK/store V=$WORK/view
mkdir -p "$B" "$M" "$S"
swafs_mount "$B" "$M" "events=$WORK/events,store=$S"
mkdir -p "$M/d" "$M/e"
head -c 100000 /dev/urandom >"$M/f"
echo inner >"$M/d/inner"
setfattr -n user.x -v 1 "$M/f"
setfattr -n user.x -v 1 "$M/d"
ln -s f "$M/l"
mkfifo "$M/p"
ln "$M/f" "$M/h"
mfst "$M" "$WORK/T.manifest"
ckpt_take "$M" ro
view_mount "$M" ro "$V"
EXPECT=EROFS
[ "${CKPT_SELFTEST:-0}" = 1 ] && { log "SELFTEST: expecting EPERM"; EXPECT=EPERM; }

out=$("$PYTHON" "$IT_DIR/ckpt_g6ops.py" "$V" --expect "$EXPECT") ||
	fail "modifying calls on the view:
$out"
log "$out"
mfst "$V" "$WORK/view.manifest"
assert_manifest_eq "view after the refused calls vs T" "$WORK/T.manifest" "$WORK/view.manifest"
mfst "$M" "$WORK/live.manifest"
assert_manifest_eq "live tree after the refused calls on the view" "$WORK/T.manifest" "$WORK/live.manifest"

# the daemon, not only the kernel's ro flag, must refuse changes
if mount -i -o remount,rw "$V" 2>"$WORK/remount.err"; then
	log "the view was remounted read-write: checking that the daemon refuses"
	errs=
	out=$("$PYTHON" "$IT_DIR/ckpt_g6ops.py" "$V" --expect "$EXPECT" --rw-remounted) ||
		errs="after 'mount -i -o remount,rw' of the view, modifying calls are not refused with EROFS by the daemon:
$out"
	mount -i -o remount,ro "$V" 2>/dev/null || true
	mfst "$V" "$WORK/view2.manifest"
	out=$("$PYTHON" "$MANIFEST_PY" cmp "$WORK/T.manifest" "$WORK/view2.manifest") ||
		errs="$errs
the view no longer shows T after those calls:
$out"
	mfst "$M" "$WORK/live2.manifest"
	out=$("$PYTHON" "$MANIFEST_PY" cmp "$WORK/T.manifest" "$WORK/live2.manifest") ||
		errs="$errs
the live tree changed through the rw-remounted view:
$out"
	[ -z "$errs" ] || fail "$errs"
else
	log "remount rw refused: $(cat "$WORK/remount.err")"
fi

view_umount "$V"
swafs_umount "$M"
log "ok"
