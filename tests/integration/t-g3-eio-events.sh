#!/bin/bash
# G3: every EIO a view answers writes an integrity-error event naming the
# file (its path, or its inode once it has none) and why: lookup (an entry
# of a captured directory whose object went behind the mount's back), the
# T attributes of a file changed behind the mount's back, readlink,
# readdir, getxattr and open of objects removed behind the mount's back
# once the view's descriptor cache (1,024) let go of them, a read of a file
# released and then changed (also one written through a descriptor still
# open after its last name went), and open and read of released files whose
# last name went after the daemon's budget of kept descriptors was spent
# (started with 400 open files: 50 kept).  The last case also checks that
# the files kept within the budget still read as at T.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/b M=$WORK/m V=$WORK/v EV=$WORK/events
mkdir -p "$B" "$M"
swafs_mount "$B" "$M" "events=$EV,store=$WORK,fd_cache=16"

# expect_eio WHAT CMD...: CMD fails with EIO
expect_eio() {
	local what=$1 out rc=0
	shift
	out=$("$@" 2>&1 >/dev/null) || rc=$?
	[ "$rc" -ne 0 ] || fail "$what: '$*' succeeded; expected EIO"
	[[ $out == *"Input/output error"* ]] ||
		fail "$what: '$*' failed, but not with EIO: $out"
}
# expect_event WHAT REGEX: an integrity-error event whose file matches REGEX
expect_event() {
	wait_until 5 grep -Eq "\"event\":\"integrity-error\".*\"file\":\"$2" "$EV" ||
		fail "$1: no integrity-error event matches '$2': $(grep integrity "$EV" | tail -3)"
}

mkdir "$M/d" "$M/c" "$M/pad"
ln -s target "$M/d/s"
mkdir "$M/d/D"
echo x >"$M/d/D/x"
echo a >"$M/d/x1"
setfattr -n user.k -v v "$M/d/x1"
echo o >"$M/d/o"
echo g >"$M/d/g"
echo y >"$M/c/y"
head -c 300000 /dev/urandom >"$M/h"
head -c 300000 /dev/urandom >"$M/u"
cp "$M/u" "$WORK/u.T"
for i in $(seq 1100); do : >"$M/pad/p$i"; done
declare -A INO
for n in s D x1 o; do INO[$n]=$(stat -c %i "$B/d/$n"); done
ckpt_take "$M" c1 --retain saved
view_mount "$M" c1 "$V"
stat -c %i "$V/d/s" "$V/d/D" "$V/d/x1" "$V/d/o" >/dev/null || fail "first lookups"
cat "$V/h" "$V/u" >/dev/null || fail "first read of h and u"
sleep 0.01

# T attributes of a file changed behind the mount's back
chmod 600 "$B/d/g"
expect_eio "attributes changed behind the back" stat "$V/d/g"
expect_event "getattr" "[^\"]*/d/g \(inode [0-9]+\): changed behind"

# c's T entries are captured (a create through the mount); then the
# object of its entry y and other objects the view looked up go behind the
# mount's back, and both daemons' descriptor caches let go of them (the
# live one holds 16, the view's 1,024), so nothing keeps them in memory
touch "$M/c/new"
rm -r "$B/c/y" "$B/d/s" "$B/d/D" "$B/d/x1" "$B/d/o"
stat "$M"/pad/* "$V"/pad/* >/dev/null || fail "lookups of pad"
expect_eio "lookup of a lost entry" stat "$V/c/y"
expect_event "lookup" "[^\"]*/c \(inode [0-9]+\): entry 'y' \(inode [0-9]+\): cannot be reopened"
expect_eio "readlink" readlink -v "$V/d/s"
expect_event "readlink" "deleted file \(inode ${INO[s]}\): cannot be reopened"
expect_eio "readdir" ls "$V/d/D"
expect_event "readdir" "deleted file \(inode ${INO[D]}\): cannot be reopened"
expect_eio "getxattr" getfattr -n user.k "$V/d/x1"
expect_event "getxattr" "deleted file \(inode ${INO[x1]}\): cannot be reopened"
expect_eio "open" cat "$V/d/o"
expect_event "open" "deleted file \(inode ${INO[o]}\): cannot be reopened"

# read of a file released (read whole and closed above), then changed
wait_until 5 grep -q '"event":"file-released"' "$EV" || fail "h was not released"
dd if=/dev/urandom of="$M/h" bs=4096 count=1 conv=notrunc status=none
expect_eio "read after release and change" dd if="$V/h" of=/dev/null iflag=direct bs=64K
expect_event "read" "[^\"]*/h \(inode [0-9]+\): changed after it was released"

# u, released too, loses its last name while a live descriptor is open:
# the view still reads its T bytes (a kept descriptor), until a write
# through that descriptor changes it
wait_until 5 [ "$(grep -c '"event":"file-released"' "$EV")" -ge 2 ] ||
	fail "u was not released"
exec 7<>"$M/u"
rm "$M/u"
dd if="$V/u" of="$WORK/u.V" iflag=direct bs=64K status=none ||
	fail "u after its last name went"
cmp "$WORK/u.T" "$WORK/u.V" || fail "u after its last name went: not its T bytes"
echo post-T >&7
exec 7>&-
expect_eio "read after unlink and change" dd if="$V/u" of=/dev/null iflag=direct bs=64K
expect_event "read of u" "([^\"]*/u \(deleted\)|deleted file) \(inode [0-9]+\): changed after it was released"
view_umount "$V"
swafs_umount "$M"

# ---- the budget of kept descriptors ------------------------------------------
cat >"$WORK/swafs-400" <<EOF
#!/bin/sh
exec prlimit --nofile=400:400 "$SWAFS" "\$@"
EOF
chmod +x "$WORK/swafs-400"
B=$WORK/b2 M=$WORK/m2 V=$WORK/v2 EV=$WORK/events2
mkdir -p "$B" "$M"
SWAFS=$WORK/swafs-400 swafs_mount "$B" "$M" "events=$EV,store=$WORK"
for i in $(seq 60); do head -c 5000 /dev/urandom >"$M/l$i"; done
sha256sum "$M"/l* | sed "s|$M/||" >"$WORK/T.sha"
ckpt_take "$M" c2 --retain saved --keep
view_mount "$M" c2 "$V"
cat "$V"/l* >/dev/null || fail "first read of l*"
wait_until 10 [ "$(grep -c '"event":"file-released"' "$EV")" -ge 60 ] ||
	fail "not every l* was released: $(grep -c file-released "$EV")"
rm "$M"/l*
n=$(grep -c '"event":"integrity-error".*/l[0-9]* (inode [0-9]*): released, then its last name went' "$EV") || true
assert_eq "files lost past the budget, said at unlink" 10 "$n"
eio=0 ok=0
for i in $(seq 60); do
	if dd if="$V/l$i" of="$WORK/r" iflag=direct bs=64K status=none 2>/dev/null; then
		out=$(sha256sum <"$WORK/r")
		grep -q "^${out%% *}  l$i\$" "$WORK/T.sha" || fail "l$i: not its T bytes"
		ok=$((ok + 1))
	else
		eio=$((eio + 1))
	fi
done
assert_eq "kept files that read as at T" 50 "$ok"
assert_eq "lost files that fail" 10 "$eio"
n=$(grep -c '"event":"integrity-error".*(inode [0-9]*): released, then its last name went when no more' "$EV") || true
[ "$n" -ge 10 ] || fail "only $n view events name a lost file"
view_umount "$V"
swafs_umount "$M"
log ok
