#!/usr/bin/env bash
# The command line: refusals (exit status 1, exactly one line on stderr, no
# mount), --help/--version, the documented options (ro, fsname, timeout,
# fd_cache, allow_other), daemonizing without -f, mounting over BACKING
# itself, and mounting with mount(8) as "fuse.swafs" from the command line
# and from an fstab file.
. "$(dirname "$0")/lib.sh"

B=$WORK/data M=$WORK/mnt
mkdir -p "$B/sub/deeper" "$M/inner"
echo file >"$WORK/file"
echo hello >"$B/hello"
ln -s "$B/sub" "$WORK/link-into-backing"

# refuse WHAT ARGS...: swafs ARGS must exit 1 with one line on stderr
refuse() {
	local what=$1 rc=0 lines nl
	shift
	timeout 30 "$SWAFS" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
	[ "$rc" -eq 1 ] ||
		fail "$what: exit status $rc, expected 1 (stderr: '$(cat "$WORK/err")')"
	nl=$(wc -l <"$WORK/err")
	lines=$(awk 'END { print NR }' "$WORK/err")
	if [ "$nl" -ne 1 ] || [ "$lines" -ne 1 ] ||
		[ -z "$(tr -d '[:space:]' <"$WORK/err")" ]; then
		fail "$what: expected exactly one line on stderr, got: '$(cat "$WORK/err")'"
	fi
	[ -z "$(fuse_mounts_under "$WORK")" ] || fail "$what: something got mounted"
	[ -z "$(swafs_pids_for "$WORK")" ] || fail "$what: a daemon is running"
	log "refused ($what): $(cat "$WORK/err")"
}

refuse "missing BACKING" "$WORK/nonexistent" "$M"
refuse "BACKING is a file" "$WORK/file" "$M"
refuse "MOUNTPOINT inside BACKING" "$B" "$B/sub"
refuse "MOUNTPOINT deep inside BACKING" "$B" "$B/sub/deeper"
refuse "BACKING inside MOUNTPOINT" "$M/inner" "$M"
refuse "MOUNTPOINT inside BACKING via a symlink" "$B" "$WORK/link-into-backing"
refuse "MOUNTPOINT inside BACKING via .." "$B/sub/.." "$B/sub"
refuse "unknown option" "$B" "$M" -o bogus
refuse "unknown option in a list" "$B" "$M" -o allow_other,bogus
refuse "timeout=abc" "$B" "$M" -o timeout=abc
refuse "timeout=1x" "$B" "$M" -o timeout=1x
refuse "timeout=-1" "$B" "$M" -o timeout=-1
refuse "fd_cache=-1" "$B" "$M" -o fd_cache=-1
refuse "fd_cache=abc" "$B" "$M" -o fd_cache=abc
refuse "fd_cache=" "$B" "$M" -o fd_cache=
refuse "fd_cache=10x" "$B" "$M" -o fd_cache=10x
refuse "unknown option with -f" "$B" "$M" -f -o bogus

# relative paths
(cd "$WORK" && refuse "relative MOUNTPOINT inside BACKING" data data/sub)
(cd "$B" && refuse "relative BACKING inside MOUNTPOINT" . ..)

# not listed as one-line refusals, but must fail and mount nothing
for args in "" "$B" "$B $WORK/nonexistent" "$B $WORK/file"; do
	rc=0
	# shellcheck disable=SC2086  # word splitting wanted
	timeout 30 "$SWAFS" $args >/dev/null 2>&1 || rc=$?
	[ "$rc" -ne 0 ] || fail "'swafs $args' succeeded"
	[ -z "$(fuse_mounts_under "$WORK")" ] || fail "'swafs $args' mounted something"
done

# --help and --version
for a in --help --version; do
	rc=0
	out=$(timeout 10 "$SWAFS" "$a" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || fail "swafs $a: exit status $rc"
	[ -n "$out" ] || fail "swafs $a printed nothing"
done
timeout 10 "$SWAFS" --version | grep -q '[0-9]' || fail "--version shows no version"
timeout 10 "$SWAFS" --help | grep -q 'fd_cache' || fail "--help does not document fd_cache"

# a sibling whose name starts with BACKING's is not inside it
mkdir "$WORK/data2"
swafs_mount "$B" "$WORK/data2"
assert_eq "file through sibling mount" hello "$(cat "$WORK/data2/hello")"
swafs_umount "$WORK/data2"

# without -f: daemonizes and returns only once the mount is up
rc=0
timeout 30 "$SWAFS" "$B" "$M" -o timeout=0 || rc=$?
[ "$rc" -eq 0 ] || fail "daemonizing mount: exit status $rc"
_MOUNTS+=("$M")
is_fuse_mount "$M" || fail "swafs returned before '$M' was mounted"
[ -n "$(swafs_pids_for "$WORK")" ] || fail "no daemon process after daemonizing"
assert_eq "read through daemonized mount" hello "$(cat "$M/hello")"
echo new >"$M/new"
assert_eq "write-through" new "$(cat "$B/new")"
fusermount3 -u "$M" || fail "fusermount3 -u after daemonized mount"
wait_until 10 no_daemon_for "$WORK" ||
	fail "daemon still running after unmount"
rm "$B/new"

# mount over BACKING itself
echo before >"$B/before"
swafs_mount "$B" "$B"
assert_eq "old file through self-mount" before "$(cat "$B/before")"
echo during >"$B/during"
mkdir "$B/d"
ln "$B/during" "$B/d/hard"
[ "$(stat -c %i "$B/during")" = "$(stat -c %i "$B/d/hard")" ] ||
	fail "hard links differ in st_ino on the self-mount"
is_fuse_mount "$B" || fail "'$B' is not the swafs mount"
swafs_umount "$B"
is_fuse_mount "$B" && fail "'$B' still mounted"
assert_eq "written during self-mount" during "$(cat "$B/during")"
assert_eq "hard link after self-mount" 2 "$(stat -c %h "$B/during")"
rm -r "$B/during" "$B/d" "$B/before"

# -o ro
swafs_mount "$B" "$M" ro
assert_eq "read on ro mount" hello "$(cat "$M/hello")"
(echo x >"$M/hello") 2>"$WORK/err" && fail "write on a ro mount succeeded"
grep -q 'Read-only' "$WORK/err" || fail "write on ro mount: $(cat "$WORK/err")"
mkdir "$M/x" 2>/dev/null && fail "mkdir on a ro mount succeeded"
touch "$M/hello" 2>/dev/null && fail "touch on a ro mount succeeded"
assert_eq "backing after ro mount" hello "$(cat "$B/hello")"
swafs_umount "$M"

# -o fsname=NAME shows in the mount table
swafs_mount "$B" "$M" fsname=swafs-cli-test
src=$(awk -v m="$M" '$5 == m { for (i = 7; $i != "-"; i++); print $(i + 2) }' /proc/self/mountinfo)
assert_eq "mount source with fsname" swafs-cli-test "$src"
swafs_umount "$M"

# allow_other: other users may use the mount only with it
swafs_mount "$B" "$M"
setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups \
	cat "$M/hello" >/dev/null 2>&1 && fail "uid $NOBODY_UID could read without allow_other"
swafs_umount "$M"
swafs_mount "$B" "$M" allow_other
out=$(setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups \
	cat "$M/hello") || fail "uid $NOBODY_UID cannot read with allow_other"
assert_eq "read by nobody" hello "$out"
chmod 600 "$M/hello"
setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups \
	cat "$M/hello" >/dev/null 2>&1 &&
	fail "allow_other without permission checks: nobody read a 0600 file"
chmod 644 "$M/hello"
setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups \
	touch "$M/by-nobody" 2>/dev/null && fail "nobody created a file in a 0755 root dir"
swafs_umount "$M"

# fd_cache=N: at most about N cached O_PATH descriptors
swafs_mount "$B" "$M" fd_cache=16,default_permissions
"$PYTHON" - "$M" <<'EOF'
import os, sys
m = sys.argv[1]
os.mkdir(m + '/many')
for i in range(500):
    with open('%s/many/f%d' % (m, i), 'w') as f:
        f.write(str(i))
for i in range(500):
    os.stat('%s/many/f%d' % (m, i))
EOF
n=$(opath_fds "$SWAFS_PID")
log "daemon holds $n O_PATH fds with fd_cache=16"
[ "$n" -le 20 ] || fail "fd_cache=16 but the daemon holds $n O_PATH fds"
for i in 0 250 499; do
	assert_eq "f$i after eviction" "$i" "$(cat "$M/many/f$i")"
done
rm -r "$M/many"
swafs_umount "$M"

# mount(8) runs /sbin/mount.fuse3 for type fuse.swafs, which runs "swafs
# BACKING MNT -o OPTS" through /bin/sh. mount(8) drops PATH for its helpers,
# so the helper is run here directly, with bin/ on PATH, as mount(8) would
# run it for an installed swafs.
[ -x /sbin/mount.fuse3 ] || fail "/sbin/mount.fuse3 missing"
PATH="$(dirname "$SWAFS"):$PATH" /sbin/mount.fuse3 "$B" "$M" -t fuse.swafs \
	-o rw,allow_other,timeout=1 || fail "mount.fuse3 -t fuse.swafs failed"
_MOUNTS+=("$M")
mounted_helper_ok() {
	local what=$1 type=$2
	is_fuse_mount "$M" || fail "$what did not mount"
	grep -q " $M $type " /proc/mounts ||
		fail "$what: type is not $type: $(grep " $M " /proc/mounts)"
	assert_eq "read via $what" hello "$(cat "$M/hello")"
	echo "$what" >"$M/helper"
	umount "$M" || fail "umount after $what"
	wait_until 10 no_daemon_for "$WORK" ||
		fail "daemon still running after umount ($what)"
	assert_eq "written via $what" "$what" "$(cat "$B/helper")"
	rm "$B/helper"
}
mounted_helper_ok "mount.fuse3 -t fuse.swafs" fuse.swafs

# mount(8) itself, with the program named in the source (fstab syntax
# "/path/to/swafs#BACKING MNT fuse OPTS")
mount -t fuse "$SWAFS#$B" "$M" -o allow_other,timeout=1 ||
	fail "mount -t fuse $SWAFS#$B failed"
mounted_helper_ok "mount -t fuse" fuse.swafs

# the same from an fstab file (mount -T FILE MOUNTPOINT)
printf '%s#%s %s fuse allow_other,default_permissions,timeout=2 0 0\n' \
	"$SWAFS" "$B" "$M" >"$WORK/fstab"
mount -T "$WORK/fstab" "$M" || fail "mount from an fstab file failed"
mounted_helper_ok "fstab" fuse.swafs

# fstab, over BACKING itself: the documented setup
printf '%s#%s %s fuse allow_other 0 0\n' "$SWAFS" "$B" "$B" >"$WORK/fstab"
mount -T "$WORK/fstab" "$B" || fail "self mount from fstab failed"
_MOUNTS+=("$B")
is_fuse_mount "$B" || fail "fstab self mount did not mount"
assert_eq "read via fstab self mount" hello "$(cat "$B/hello")"
echo self >"$B/self"
umount "$B" || fail "umount after fstab self mount"
wait_until 10 no_daemon_for "$WORK" ||
	fail "daemon still running after umount"
is_fuse_mount "$B" && fail "'$B' still mounted"
assert_eq "written via fstab self mount" self "$(cat "$B/self")"
log "ok"
