#!/bin/bash
# View mount points (issue 17 item 5): a user who owns a directory on the
# path of `swactl mount MNT NAME DIR` swaps a component between a real
# directory and a symlink to a directory of root's, as fast as it can,
# while the mount is asked for.  (1) root asks on root's mount with DIR
# below another user's directory: refused every time with one line (the
# chain above DIR is not root's), and no view ever lands on root's
# directory; (2) the owner of a user's mount (uid 65534) asks with DIR in
# its own directory: a view lands only on the directory checked (its own,
# under whichever name the swaps gave it since), never on root's; (3) a symlink anywhere in DIR is refused, a relative DIR works.
. "$(dirname "$0")/sec-lib.sh"

B=$WORK/backing M=$WORK/mnt S=$WORK/store T=$WORK/rootdir
mkdir -p "$B" "$M" "$S" "$T/v"
echo data >"$B/f"
TRIES=40

# swapper UID DIR: as UID, exchange DIR/d (a directory, with v inside) and
# DIR/l (a symlink to $T) atomically, in a loop
swapper() {
	mkdir -p "$2/d/v"
	ln -s "$T" "$2/l"
	chown -R "$1" "$2"
	chown -h "$1" "$2/l"
	as_bg "$1" "$SYSPY" -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
d, l = (os.path.join(sys.argv[1], n).encode() for n in ("d", "l"))
while True:
    libc.renameat2(-100, d, -100, l, 2)    # RENAME_EXCHANGE
' "$2"
}

# unmount_under DIR: unmount every view below DIR; true when none is left
unmount_under() {
	local m
	for m in $(fuse_mounts_under "$1"); do umount "$m" 2>/dev/null; done
	[ -z "$(fuse_mounts_under "$1")" ]
}

# tries WHO DIR: ask $TRIES times; count mounts in OK, refusals in NO; fail
# if a view ever lands on $T or a refusal is not one line
tries() {
	local k rc run=()
	[ "$1" = root ] || run=(as "$1")
	OK=0 NO=0
	for ((k = 0; k < TRIES; k++)); do
		rc=0
		"${run[@]}" "$SWACTL" mount "$M" c "$2" >"$WORK/out" 2>"$WORK/err" || rc=$?
		if is_fuse_mount "$T" || is_fuse_mount "$T/v"; then
			fail "$1's view landed on root's directory $T (try $k)"
		fi
		if [ "$rc" -eq 0 ]; then
			# on the directory checked, wherever the swaps moved it since
			OK=$((OK + 1))
			m=$(fuse_mounts_under "$(dirname "$2")")
			[[ $m == "$(dirname "$2")/"[dl] ]] ||
				fail "try $k: mounted, but not on the directory checked: $m"
			wait_until 10 unmount_under "$(dirname "$2")" ||
				fail "cannot unmount the view under $(dirname "$2")"
		else
			NO=$((NO + 1))
			[ "$(awk 'END { print NR }' "$WORK/err")" -eq 1 ] ||
				fail "try $k: not one line: $(cat "$WORK/err")"
			MSG=$(cat "$WORK/err")
		fi
	done
	log "$1 on $2: $OK mounted, $NO refused"
}

# ---- 1. root, DIR below another user's directory -----------------------------------
swafs_mount "$B" "$M" "allow_other,store=$S"
swactl checkpoint "$M" --name c --keep >/dev/null || fail "checkpoint"
mkdir "$WORK/u"
swapper "$TU1_UID" "$WORK/u"
SW1=$SEC_PID
tries root "$WORK/u/d"
assert_eq "root's mounts on $WORK/u/d" 0 "$OK"
[[ $MSG == *"belongs to another user"* ]] || fail "refusal: $MSG"
tries root "$WORK/u/d/v"
assert_eq "root's mounts on $WORK/u/d/v" 0 "$OK"
stop_helper "$SW1"

# ---- 3. symlinks refused, relative DIR ---------------------------------------------
mkdir -p "$WORK/r/v"
ln -s r "$WORK/rl"
rc=0
swactl mount "$M" c "$WORK/rl/v" 2>"$WORK/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "a symlink in the path" "$WORK/err" ||
	fail "DIR through a symlink: exit $rc: $(cat "$WORK/err")"
is_fuse_mount "$WORK/r/v" && fail "mounted through a symlink"
(cd "$WORK/r" && "$SWACTL" mount "$M" c ./x/../v >/dev/null) || fail "relative DIR"
is_fuse_mount "$WORK/r/v" || fail "the relative DIR holds no view"
assert_eq "a file in the view" data "$(cat "$WORK/r/v/f")"
umount "$WORK/r/v"
swactl release "$M" c >/dev/null
swafs_umount "$M"

# ---- 2. the owner of a user's mount, DIR in its own directory --------------------
chown "$NOBODY_UID" "$B"
SWAFS=$SWAFS_NOBODY swafs_mount "$B" "$M" "allow_other,store=$S"
as "$NOBODY_UID" "$SWACTL" checkpoint "$M" --name c --keep >/dev/null ||
	fail "the owner's checkpoint"
mkdir "$WORK/n"
swapper "$NOBODY_UID" "$WORK/n"
tries "$NOBODY_UID" "$WORK/n/d"
[ "$OK" -gt 0 ] || fail "the owner never mounted on its own directory"
[[ $NO -eq 0 || $MSG == *"a symlink in the path"* ]] || fail "refusal: $MSG"
stop_helper "$SEC_PID"
swactl release "$M" c >/dev/null
swafs_umount "$M"
log ok
