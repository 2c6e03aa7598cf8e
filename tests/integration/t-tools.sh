#!/usr/bin/env bash
# Real tools read and write through the mount exactly as in BACKING:
#  - tar (pax, xattrs, ACLs, sparse, numeric owners) of the mount and of
#    BACKING give byte-identical archives;
#  - cp -a and rsync -aHAX from the mount and from BACKING give identical
#    trees (names, types, modes, owners, sizes, holes, hard links, symlinks,
#    xattrs, ACLs, all mtimes, contents);
#  - tar -x, cp -a and rsync -aHAX into the mount give the same trees as
#    into a plain directory;
#  - diff -r and getfacl -R agree.
. "$(dirname "$0")/lib.sh"

B=$WORK/backing M=$WORK/mnt P=$WORK/plain
mkdir "$B" "$M" "$P"
swafs_mount "$B" "$M"

# a varied tree, made through the mount
S=$M/src
"$PYTHON" - "$S" <<'PYEOF' || fail "populating the tree failed"
import os, sys
s = sys.argv[1]
os.makedirs(s + '/dir/sub/deeper')
os.mkdir(s + '/empty')
for i, size in enumerate((0, 1, 4095, 4096, 4097, 65536 + 3, 1 << 20)):
    with open('%s/dir/f%d' % (s, i), 'wb') as f:
        f.write(os.urandom(size))
with open(s + '/sparse', 'wb') as f:
    f.write(b'head')
    f.seek(10 << 20)
    f.write(b'middle')
    f.seek(100 << 20)
    f.write(b'tail')
with open(s + '/sparse-end', 'wb') as f:
    f.write(b'x')
    f.truncate(5 << 20)
with open(s + '/linked', 'wb') as f:
    f.write(b'hard linked')
os.link(s + '/linked', s + '/dir/linked2')
os.link(s + '/linked', s + '/dir/sub/linked3')
os.symlink('linked', s + '/sym')
os.symlink('../../sparse', s + '/dir/sub/relsym')
os.symlink('/nonexistent/target', s + '/dangling')
os.symlink('dir', s + '/dirsym')
os.mkfifo(s + '/fifo')
os.mknod(s + '/chardev', 0o20600, os.makedev(1, 7))
for n in ('sp ace', 'new\nline', 'ü', 'x' * 255, '-lead', '.hidden'):
    with open(os.path.join(s, 'dir', n), 'wb') as f:
        f.write(n.encode())
with open(s + '/suid', 'wb') as f:
    f.write(b'#!/bin/sh\n')
os.chmod(s + '/suid', 0o4755)
os.chmod(s + '/dir/sub', 0o2750)
os.chmod(s + '/empty', 0o1777)
os.chmod(s + '/dir/f1', 0o600)
os.chown(s + '/dir/f2', 4242, 4243)
os.chown(s + '/dir/sub/deeper', 4242, 4243)
os.chown(s + '/dangling', 4242, 4243, follow_symlinks=False)
os.setxattr(s + '/dir/f3', 'user.one', b'1')
os.setxattr(s + '/dir/f3', 'user.bin', bytes(range(256)))
os.setxattr(s + '/dir', 'user.dir', b'on a directory')
os.setxattr(s + '/linked', 'user.hard', b'via hard link')
for p, t in (('dir/f4', 10**9 + 5), ('dir/sub', 123456789), ('sym', 42),
             ('empty', 2**33)):
    os.utime(os.path.join(s, p), ns=(t * 10**9 + 7, t * 10**9 + 123),
             follow_symlinks=False)
PYEOF
setfacl -m u:4242:rw,g:4243:r "$S/dir/f5" || fail "setfacl on a file"
setfacl -d -m u:4242:rwx "$S/dir/sub/deeper" || fail "setfacl -d on a directory"
setfacl -m u:4242:rx "$S/dir/sub/deeper" || fail "setfacl on a directory"
touch -h -d '2001-02-03 04:05:06.789' "$S/dir/sub/relsym"
touch -d '1999-12-31 23:59:59.5' "$S/dir/sub" "$S/dir"

# the mount and BACKING show the same tree
assert_trees_eq "$S" "$B/src" --all-mtimes
diff -r --no-dereference -x fifo -x chardev "$S" "$B/src" >"$WORK/diff" 2>&1 ||
	fail "diff -r mount vs BACKING: $(head -20 "$WORK/diff")"
(cd "$S" && getfacl -R -p -n .) >"$WORK/acl.mnt" 2>&1
(cd "$B/src" && getfacl -R -p -n .) >"$WORK/acl.back" 2>&1
assert_text_eq "getfacl -R" "$WORK/acl.back" "$WORK/acl.mnt"
grep -q 'user:4242:rw-' "$WORK/acl.mnt" || fail "ACL not visible through the mount"

# tar: byte-identical archives
# shellcheck disable=SC2054  # the commas are in option values
TAR=(tar --format=posix --numeric-owner --sort=name --sparse --sparse-version=0.0 --acls
	--xattrs --xattrs-include='*'
	--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime)
"${TAR[@]}" -cf "$WORK/mnt.tar" -C "$M" src || fail "tar of the mount failed"
"${TAR[@]}" -cf "$WORK/back.tar" -C "$B" src || fail "tar of BACKING failed"
cmp "$WORK/mnt.tar" "$WORK/back.tar" ||
	fail "tar archives differ: $(diff <(tar -tvf "$WORK/back.tar") <(tar -tvf "$WORK/mnt.tar") | head)"
tar --sparse -tvf "$WORK/mnt.tar" >/dev/null || fail "archive of the mount unreadable"

# tar -x into the mount and into a plain directory
mkdir "$M/tarx" "$P/tarx"
"${TAR[@]}" -xf "$WORK/mnt.tar" -C "$M/tarx" || fail "tar -x into the mount failed"
"${TAR[@]}" -xf "$WORK/mnt.tar" -C "$P/tarx" || fail "tar -x into plain failed"
assert_trees_eq "$P/tarx/src" "$M/tarx/src" --all-mtimes
assert_trees_eq "$P/tarx/src" "$S" --all-mtimes

# cp -a from the mount and from BACKING; cp -a into the mount
cp -a "$S" "$P/cp-from-mnt" || fail "cp -a from the mount failed"
cp -a "$B/src" "$P/cp-from-back" || fail "cp -a from BACKING failed"
assert_trees_eq "$P/cp-from-back" "$P/cp-from-mnt" --all-mtimes
cp -a "$P/cp-from-back" "$M/cp-into" || fail "cp -a into the mount failed"
cp -a "$P/cp-from-back" "$P/cp-into" || fail "cp -a into plain failed"
assert_trees_eq "$P/cp-into" "$M/cp-into" --all-mtimes
(cd "$P/cp-into" && getfacl -R -p -n .) >"$WORK/acl.cp.plain" 2>&1
(cd "$M/cp-into" && getfacl -R -p -n .) >"$WORK/acl.cp.mnt" 2>&1
assert_text_eq "getfacl -R after cp -a" "$WORK/acl.cp.plain" "$WORK/acl.cp.mnt"

# rsync -aHAX from the mount and from BACKING; into the mount
RS=(rsync -aHAX --numeric-ids --sparse)
"${RS[@]}" "$S/" "$P/rs-from-mnt/" || fail "rsync from the mount failed"
"${RS[@]}" "$B/src/" "$P/rs-from-back/" || fail "rsync from BACKING failed"
assert_trees_eq "$P/rs-from-back" "$P/rs-from-mnt" --all-mtimes
"${RS[@]}" "$P/rs-from-back/" "$M/rs-into/" || fail "rsync into the mount failed"
"${RS[@]}" "$P/rs-from-back/" "$P/rs-into/" || fail "rsync into plain failed"
assert_trees_eq "$P/rs-into" "$M/rs-into" --all-mtimes
# a second rsync finds nothing to do
out=$("${RS[@]}" -i "$P/rs-from-back/" "$M/rs-into/") || fail "second rsync failed"
[ -z "$out" ] || fail "second rsync into the mount changed things: $(echo "$out" | head)"
out=$("${RS[@]}" -i -n -c "$S/" "$B/src/") || fail "rsync -c mount vs BACKING failed"
[ -z "$out" ] || fail "rsync -c sees differences between mount and BACKING: $(echo "$out" | head)"

pid_alive "$SWAFS_PID" || fail "daemon died"
swafs_umount "$M"
# after unmounting, BACKING holds what the mount showed
assert_trees_eq "$P/tarx/src" "$B/src" --all-mtimes
assert_trees_eq "$P/cp-into" "$B/cp-into" --all-mtimes
log ok
