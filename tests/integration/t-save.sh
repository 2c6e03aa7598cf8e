#!/bin/bash
# swactl save, verify and restore while an application keeps changing the
# live tree (ckpt_churn.py): the application is stopped (SIGSTOP) only
# around the manifest of MNT at T and the save's own checkpoint, and runs
# while the save reads the view.  Checked:
# - a full save with 1 stream (uncompressed) and with 3 streams x 2 copies
#   (zstd): verify passes on each copy (and against a --retain all
#   checkpoint of the same instant), and the restored tree (or a subset
#   of it, a hard link out of the subset named) equals the
#   manifest at T (contents, holes, modes, owners, times, xattrs, hard
#   links, symlinks, fifos, a device) and keeps an ACL;
# - one byte changed in a file's data makes verify exit 1 naming the file;
# - a copy target that runs out of room mid-save (a small tmpfs) ends in
#   exit 4 naming it, and the other copy verifies and restores whole;
# - --dry-run prints the plan and takes no checkpoint; a progress line is
#   drawn on a terminal only;
# - save -- CMD: {} and SWAFS_VIEW name a view in a 0700 directory, CMD's
#   status is swactl's, and neither a failing CMD nor SIGTERM to swactl
#   leaves a mount or a checkpoint behind, nor does a daemon that dies
#   under it; tar through save -- works;
# - verify against a used --retain saved checkpoint says why a changed
#   file cannot be compared;
# - objects the saver may not read at T are each named, exit 4.
. "$(dirname "$0")/ckpt-lib.sh"

unset XDG_RUNTIME_DIR	# private view directories under our TMPDIR
B=$WORK/backing M=$WORK/mnt S=$WORK/store TINY=$WORK/tiny
mkdir -p "$B" "$M" "$S" "$TINY"

_t_cleanup() {
	local rc=$?
	set +e
	mountpoint -q "$TINY" && umount -l "$TINY"
	_ckpt_ret "$rc"
	_ckpt_cleanup
}
trap _t_cleanup EXIT

dd if=/dev/urandom of="$B/big" bs=1M count=48 status=none
"$PYTHON" - "$B" <<'EOF2'
import os, random, stat, sys
b = sys.argv[1]
r = random.Random(12)
def put(p, data, mode=0o644):
    p = os.path.join(b, p)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, 'wb') as f:
        f.write(data)
    os.chmod(p, mode)
for i in range(200):
    put('tree/d%d/e%d/f%03d' % (i % 5, i % 3, i), r.randbytes(r.randrange(0, 120000)))
for i in range(12):
    put('top%02d' % i, r.randbytes(r.randrange(1, 200000)))
put('empty', b'')
put('keep/acl', b'acl')
put('modes/suid', b'x', 0o4755)
put('modes/none', b'y', 0o000)
os.chmod(os.path.join(b, 'modes'), 0o711)
with open(os.path.join(b, 'keep/sparse'), 'wb') as f:
    f.seek(3 << 20); f.write(r.randbytes(9000))
    f.seek(17 << 20); f.write(r.randbytes(50000))
    f.truncate(40 << 20)
with open(os.path.join(b, 'keep/allhole'), 'wb') as f:
    f.truncate(5 << 20)
os.link(os.path.join(b, 'top00'), os.path.join(b, 'tree/link-to-top00'))
os.link(os.path.join(b, 'top00'), os.path.join(b, 'tree/d1/link2'))
os.symlink('top01', os.path.join(b, 'sym'))
os.symlink('../nowhere', os.path.join(b, 'tree/dangling'))
os.mkfifo(os.path.join(b, 'fifo'))
os.mknod(os.path.join(b, 'null'), stat.S_IFCHR | 0o600, os.makedev(1, 3))
for i in range(0, 12, 3):
    os.setxattr(os.path.join(b, 'top%02d' % i), 'user.k%d' % i, r.randbytes(i * 10 + 1))
os.setxattr(os.path.join(b, 'tree/d1'), 'user.dir', b'on a dir')
os.chown(os.path.join(b, 'top05'), 4242, 4243)
os.chown(os.path.join(b, 'tree/d4'), 4242, 4243)
os.lchown(os.path.join(b, 'sym'), 4242, 4243)
os.utime(os.path.join(b, 'top06'), ns=(10**9, 10**9 + 5))
EOF2
setfacl -m u:4242:r-x,g:4243:rw- "$B/keep/acl"
ACL_T=$(getfacl -n --omit-header "$B/keep/acl")

swafs_mount "$B" "$M" "events=$WORK/events,store=$S"
"$PYTHON" "$IT_DIR/ckpt_churn.py" "$M" --big big --seed 9 2>"$WORK/churn.err" &
CPID=$!
ckpt_helper "$CPID"
sleep 1
pid_alive "$CPID" || fail "the application died: $(cat "$WORK/churn.err")"

# no view of a save is mounted, and checkpoint NAME is gone
nothing_left() {
	local m
	m=$(grep -c 'swactl-save\.' /proc/self/mountinfo || true)
	[ "$m" -eq 0 ] || fail "$1: a save's view is still mounted: $(grep 'swactl-save\.' /proc/self/mountinfo)"
	[ "$(ckpt_field "$M" "$2" name)" = absent ] ||
		fail "$1: checkpoint $2 is still there"
	no_private_dir "$1"
}

# no_private_dir WHAT: no view directory of a save is left in $TMPDIR
no_private_dir() {
	local d
	d=$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'swactl-save.*')
	[ -z "$d" ] || fail "$1: left its private directory: $d"
}

# save_at_T NAME ARGS...: the manifest of MNT at the save's T in
# $WORK/T.NAME, the save's exit code in SAVE_RC, its output in
# $WORK/NAME.out and .err; the application runs while the save reads.
# With AGAINST set, checkpoint $AGAINST (--retain all --keep) is taken at
# the same instant.
save_at_T() {
	local name=$1
	shift
	kill -STOP "$CPID"
	wait_until 5 grep -q '^State:.*T (stopped)' "/proc/$CPID/status" ||
		fail "application did not stop"
	mfst "$M" "$WORK/T.$name"
	[ -z "${AGAINST:-}" ] || ckpt_take "$M" "$AGAINST" --retain all --keep
	"$SWACTL" save "$M" --name "$name" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
	local sp=$!
	_SP=$sp
	wait_until 30 eval '[ "$(ckpt_field "$M" "'"$name"'" name)" = "'"$name"'" ] || pid_gone $_SP' ||
		fail "save $name took no checkpoint: $(cat "$WORK/$name.err")"
	kill -CONT "$CPID"
	SAVE_RC=0
	wait "$sp" || SAVE_RC=$?
	pid_alive "$CPID" || fail "the application died during save $name: $(cat "$WORK/churn.err")"
	log "save $name: exit $SAVE_RC: $(cat "$WORK/$name.out")"
}

# restored_eq WHAT DIR T-MANIFEST: DIR equals the tree at T, holes kept
restored_eq() {
	local what=$1 dir=$2 alloc
	mfst "$dir" "$WORK/$what.restored"
	assert_manifest_eq "$what: restored tree vs the tree at T" "$3" "$WORK/$what.restored"
	alloc=$(du -k "$dir/keep/sparse" | cut -f1)
	[ "$alloc" -lt 1024 ] || fail "$what: sparse file restored with $alloc KiB allocated (holes lost)"
	[ "$(du -k "$dir/keep/allhole" | cut -f1)" -lt 64 ] || fail "$what: all-hole file restored filled"
	[ "$(getfacl -n --omit-header "$dir/keep/acl")" = "$ACL_T" ] ||
		fail "$what: ACL not restored: $(getfacl -n --omit-header "$dir/keep/acl")"
}

# 1 stream, uncompressed
mkdir -p "$WORK/a1" "$WORK/r1"
AGAINST=all1 save_at_T s1 --compress none --to "$WORK/a1"
[ "$SAVE_RC" -eq 0 ] || fail "save s1: exit $SAVE_RC: $(cat "$WORK/s1.err")"
nothing_left "save s1" s1
out=$("$SWACTL" verify "$WORK/a1/s1.0.pax" --manifest "$WORK/a1/s1.manifest" 2>&1) ||
	fail "verify s1 failed: $out"
out=$("$SWACTL" verify "$WORK/a1/s1.0.pax" --against "$M" all1 2>&1) ||
	fail "verify s1 against a living checkpoint of its instant failed: $out"
"$SWACTL" release "$M" all1
"$SWACTL" restore "$WORK/a1/s1.0.pax" --to "$WORK/r1" >/dev/null || fail "restore s1 failed"
restored_eq s1 "$WORK/r1" "$WORK/T.s1"

# a subset: keep/ and tree/d1/ as at T; tree/d1/link2, a hard link to a
# name outside them, is named and skipped (exit 4)
mkdir -p "$WORK/r1s"
rc=0
"$SWACTL" restore "$WORK/a1/s1.0.pax" --to "$WORK/r1s" keep ./tree/d1/ >/dev/null 2>"$WORK/r1s.err" || rc=$?
[ "$rc" -eq 4 ] || fail "restore of a subset with a hard link out of it: exit $rc, want 4: $(cat "$WORK/r1s.err")"
grep -q "not restored 'tree/d1/link2': a hard link to a name not restored" "$WORK/r1s.err" ||
	fail "restore did not name the skipped hard link: $(cat "$WORK/r1s.err")"
[ ! -e "$WORK/r1s/top00" ] && [ ! -e "$WORK/r1s/tree/d2" ] || fail "restore of a subset restored more"
mfst "$WORK/r1s" "$WORK/r1s.all"
sub() { awk -F'\t' '$1 ~ /^(keep|tree\/d1)(\/|$)/ && $1 != "tree/d1/link2"' "$1" >"$2"; }
sub "$WORK/T.s1" "$WORK/T.s1.sub"
sub "$WORK/r1s.all" "$WORK/r1s.sub"
[ "$(wc -l <"$WORK/T.s1.sub")" -gt 10 ] || fail "the subset at T is too small to say anything"
assert_manifest_eq "restored subset vs the tree at T" "$WORK/T.s1.sub" "$WORK/r1s.sub"

# 3 streams x 2 copies, zstd
mkdir -p "$WORK/a2" "$WORK/a3" "$WORK/r2"
save_at_T s3 --streams 3 --copies 2 --to "$WORK/a2" "$WORK/a3"
[ "$SAVE_RC" -eq 0 ] || fail "save s3: exit $SAVE_RC: $(cat "$WORK/s3.err")"
nothing_left "save s3" s3
for t in a2 a3; do
	n=$(ls "$WORK/$t"/s3.*.pax.zst | wc -l)
	[ "$n" -eq 3 ] || fail "save s3: $n archives in $t, want 3"
	out=$("$SWACTL" verify "$WORK/$t"/s3.*.pax.zst --manifest "$WORK/$t/s3.manifest" 2>&1) ||
		fail "verify s3 (copy in $t) failed: $out"
done
# stream 0 (the directories) not named first: restore reads it first anyway
"$SWACTL" restore "$WORK/a3/s3.1.pax.zst" "$WORK/a3/s3.0.pax.zst" "$WORK/a3/s3.2.pax.zst" \
	--to "$WORK/r2" >/dev/null || fail "restore s3 failed"
restored_eq s3 "$WORK/r2" "$WORK/T.s3"
"$PYTHON" "$MANIFEST_PY" cmp "$WORK/T.s1" "$WORK/T.s3" >/dev/null &&
	fail "the live tree did not change between the saves"

# one byte of big's data changed: verify names big
cp "$WORK/a1/s1.0.pax" "$WORK/bad.pax"
"$PYTHON" - "$WORK/bad.pax" <<'EOF2'
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    off = t.getmember('big').offset_data + 12345
with open(sys.argv[1], 'r+b') as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0xff]))
EOF2
rc=0
out=$("$SWACTL" verify "$WORK/bad.pax" --manifest "$WORK/a1/s1.manifest" 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "verify of a damaged archive: exit $rc, want 1: $out"
printf '%s\n' "$out" | grep -q '^big: contents' || fail "verify did not name big: $out"

# a copy target that runs out of room mid-save
mount -t tmpfs -o size=8m tmpfs "$TINY"
mkdir -p "$WORK/a4" "$WORK/r4"
save_at_T s4 --compress none --copies 2 --to "$WORK/a4" "$TINY"
[ "$SAVE_RC" -eq 4 ] || fail "save s4 with a full copy target: exit $SAVE_RC, want 4: $(cat "$WORK/s4.err")"
grep -q "copy 2 of stream 0 failed.*$TINY/s4.0.pax" "$WORK/s4.err" ||
	fail "save s4 did not name the failed copy: $(cat "$WORK/s4.err")"
[ ! -e "$TINY/s4.0.pax" ] || fail "the failed copy was left in $TINY"
nothing_left "save s4" s4
out=$("$SWACTL" verify "$WORK/a4/s4.0.pax" --manifest "$WORK/a4/s4.manifest" 2>&1) ||
	fail "verify of the good copy of s4 failed: $out"
"$SWACTL" restore "$WORK/a4/s4.0.pax" --to "$WORK/r4" >/dev/null || fail "restore s4 failed"
restored_eq s4 "$WORK/r4" "$WORK/T.s4"
umount "$TINY"

# a dry run takes nothing
mkdir -p "$WORK/a5"
out=$("$SWACTL" save "$M" --name dry --streams 2 --to "$WORK/a5" --dry-run 2>&1) ||
	fail "dry run failed: $out"
printf '%s\n' "$out" | grep -q 'no checkpoint taken' || fail "dry run printed no plan: $out"
printf '%s\n' "$out" | grep -q 'stream 1: .* objects' || fail "dry run printed no streams: $out"
[ -z "$(ls -A "$WORK/a5")" ] || fail "dry run wrote into its target: $(ls "$WORK/a5")"
grep -q '"name":"dry"' "$WORK/events" && fail "dry run took a checkpoint"
nothing_left "dry run" dry

# progress on a terminal only
mkdir -p "$WORK/a6"
script -qfec "$SWACTL save $M --name p1 --compress none --to $WORK/a6" /dev/null >"$WORK/p1.out" 2>&1 ||
	fail "save on a terminal failed: $(cat "$WORK/p1.out")"
grep -q 'save p1: 100% .* objects, .*/s' "$WORK/p1.out" || fail "no progress line on a terminal: $(cat "$WORK/p1.out")"
grep -q 'objects, .*/s, ETA' "$WORK/s1.err" && fail "progress drawn off a terminal: $(cat "$WORK/s1.err")"
nothing_left "save on a terminal" p1

# save -- CMD: the view, its private directory, CMD's status
rc=0
"$SWACTL" save "$M" --name c1 -- sh -c \
	'[ "$SWAFS_VIEW" = "$1" ] && [ -f "$1/big" ] && stat -c %a "${1%/*}" >"$2"; exit 7' \
	sh {} "$WORK/perm" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 7 ] || fail "save -- CMD: exit $rc, want CMD's 7"
[ "$(cat "$WORK/perm" 2>/dev/null)" = 700 ] ||
	fail "the view's directory is not a 0700 one (or {} / SWAFS_VIEW wrong): '$(cat "$WORK/perm" 2>/dev/null)'"
nothing_left "a failing CMD" c1
"$SWACTL" save "$M" --name c2 -- tar -cf "$WORK/x.tar" -C {} . >/dev/null 2>&1 ||
	fail "save -- tar failed"
tar -tf "$WORK/x.tar" | grep -qx './big' || fail "tar through save -- holds no ./big"
nothing_left "save -- tar" c2

"$SWACTL" save "$M" --name c3 -- sleep 300 >/dev/null 2>"$WORK/c3.err" &
SP=$!
wait_until 20 grep -q 'swactl-save\.' /proc/self/mountinfo || fail "save c3 mounted no view"
kill -TERM "$SP"
rc=0
wait "$SP" || rc=$?
[ "$rc" -eq 143 ] || fail "save killed by SIGTERM: exit $rc, want 143: $(cat "$WORK/c3.err")"
nothing_left "SIGTERM to swactl save" c3

# verify against a --retain saved checkpoint whose file was read and then
# changed: verify says why it cannot compare, not a bare EIO
ckpt_take "$M" rs --keep
view_mount "$M" rs "$WORK/v-rs"
dd if="$WORK/v-rs/big" of=/dev/null bs=1M status=none
view_umount "$WORK/v-rs"
sleep 1	# the application overwrites blocks of big meanwhile
rc=0
"$SWACTL" verify "$WORK/a1/s1.0.pax" --against "$M" rs >"$WORK/rs.out" 2>"$WORK/rs.err" || rc=$?
[ "$rc" -eq 1 ] || fail "verify against a used --retain saved checkpoint: exit $rc, want 1"
grep -q 'taken with --retain saved: a block a save has read is gone' "$WORK/rs.err" ||
	fail "verify did not explain --retain saved: $(head -c 600 "$WORK/rs.err")"
grep -q '^big: cannot be read from the checkpoint (EIO), not compared' "$WORK/rs.out" ||
	fail "verify did not name big as unreadable: $(grep '^big' "$WORK/rs.out")"
"$SWACTL" release "$M" rs

stop_helper "$CPID"
swafs_umount "$M"

# save -- CMD when the daemon goes away under it: no mount left behind
B2=$WORK/backing2 M2=$WORK/mnt2
mkdir -p "$B2" "$M2"
echo x >"$B2/f"
swafs_mount "$B2" "$M2"
D2=$SWAFS_PID
rc=0
"$SWACTL" save "$M2" --name gone -- sh -c "kill -KILL $D2; sleep 0.5" \
	>/dev/null 2>"$WORK/gone.err" || rc=$?
[ "$rc" -eq 1 ] || fail "save -- CMD whose daemon died: exit $rc, want 1: $(cat "$WORK/gone.err")"
grep -q 'swactl-save\.' /proc/self/mountinfo &&
	fail "a save whose daemon died left its view mounted: $(grep 'swactl-save\.' /proc/self/mountinfo)"
no_private_dir "a save whose daemon died"

# objects the saver may not read at T are skipped, each named: exit 4, and
# the archive still verifies (a mount of uid 65534 saved by its owner, a
# root-only file and directory in it)
B3=$WORK/backing3 M3=$WORK/mnt3 T3=$WORK/a7 TN=$WORK/tmp-nobody
mkdir -p "$B3/sub" "$B3/closed" "$M3" "$T3" "$TN" "$WORK/store3"
echo open >"$B3/sub/open"
echo secret >"$B3/secret"
echo inner >"$B3/closed/inner"
chown -R "$NOBODY_UID:$NOBODY_GID" "$B3" "$T3" "$TN" "$WORK/store3"
chown 0:0 "$B3/secret" "$B3/closed"
chmod 600 "$B3/secret"
chmod 700 "$B3/closed"
cat >"$WORK/swafs-ruid" <<EOF2
#!/bin/sh
exec /usr/bin/python3 -c 'import os, sys
os.setresgid($NOBODY_GID, 0, 0)
os.setresuid($NOBODY_UID, 0, 0)
os.execv(sys.argv[1], sys.argv[1:])' "$SWAFS" "\$@"
EOF2
chmod 755 "$WORK/swafs-ruid"
SWAFS=$WORK/swafs-ruid swafs_mount "$B3" "$M3" "allow_other,store=$WORK/store3"
rc=0
TMPDIR=$TN setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups \
	"$SWACTL" save "$M3" --name n1 --to "$T3" >/dev/null 2>"$WORK/n1.err" || rc=$?
[ "$rc" -eq 4 ] || fail "save with unreadable objects: exit $rc, want 4: $(cat "$WORK/n1.err")"
grep -q "skipped 'secret': Permission denied" "$WORK/n1.err" &&
	grep -q "skipped 'closed': Permission denied" "$WORK/n1.err" ||
	fail "save did not name each skipped object: $(cat "$WORK/n1.err")"
out=$("$SWACTL" verify "$T3/n1.0.pax.zst" --manifest "$T3/n1.manifest" 2>&1) ||
	fail "verify of a save with skipped objects failed: $out"
tar -tf "$T3/n1.0.pax.zst" | grep -qx 'sub/open' || fail "the readable file is not in the archive"
[ -z "$(find "$TN" -mindepth 1)" ] || fail "the owner's save left $(ls "$TN")"
swafs_umount "$M3"
log "ok"
