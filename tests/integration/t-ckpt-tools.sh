#!/bin/bash
# The real thing: an application keeps overwriting, appending to,
# truncating, creating, renaming and deleting files (and blocks of a 1 GiB
# file) under MNT, while ordinary tools copy checkpoint views: tar (alone on
# a --retain saved checkpoint, the usual one-saver case), and dd of the
# 1 GiB file, rsync -aHAX and cp -a --sparse=always in parallel on a
# --retain all checkpoint of the same instant. Each copy must match the
# manifest of MNT taken at T (the application stopped with SIGSTOP around
# the manifest and the checkpoints) byte for byte and attribute for
# attribute. BIG_SIZE (default 2G, a multi-GiB dd; 256M if the disk is short) sizes the big
# file.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt S=$WORK/store
mkdir -p "$B" "$M" "$S"
avail=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
BIG_SIZE=${BIG_SIZE:-2G}
if [ "$avail" -lt $((10 * 1024 * 1024)) ] && [ "$BIG_SIZE" = 2G ]; then
	BIG_SIZE=256M
	log "less than 10 GiB free: big file of $BIG_SIZE"
fi
BIG_MB=$(numfmt --from=iec "$BIG_SIZE" | awk '{ print int($1 / 1048576) }')

# the tree: regular, sparse, empty files, hard links, symlinks, fifos,
# xattrs, owners, modes, explicit times, nested directories
dd if=/dev/urandom of="$B/big" bs=1M count="$BIG_MB" status=none
"$PYTHON" - "$B" <<'EOF'
import os, random, sys
b = sys.argv[1]
r = random.Random(3)
def put(p, data, mode=0o644):
    p = os.path.join(b, p)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, 'wb') as f:
        f.write(data)
    os.chmod(p, mode)
for i in range(300):
    put('tree/d%d/e%d/f%03d' % (i % 7, i % 3, i), r.randbytes(r.randrange(0, 150000)))
for i in range(20):
    put('top%02d' % i, r.randbytes(r.randrange(1, 300000)))
put('empty', b'')
put('modes/suid', b'x', 0o4755)
put('modes/none', b'y', 0o000)
put('modes/sticky-dir/f', b'z')
os.chmod(os.path.join(b, 'modes/sticky-dir'), 0o1777)
with open(os.path.join(b, 'sparse'), 'wb') as f:
    f.seek(5 << 20); f.write(r.randbytes(10000))
    f.seek(20 << 20); f.write(r.randbytes(70000))
    f.truncate(64 << 20)
os.link(os.path.join(b, 'top00'), os.path.join(b, 'tree/link-to-top00'))
os.link(os.path.join(b, 'top00'), os.path.join(b, 'tree/d1/link2'))
os.link(os.path.join(b, 'big'), os.path.join(b, 'tree/big-link'))
os.symlink('top01', os.path.join(b, 'sym'))
os.symlink('../nowhere', os.path.join(b, 'tree/dangling'))
os.symlink('tree/d2', os.path.join(b, 'symdir'))
os.mkfifo(os.path.join(b, 'fifo'))
os.mkfifo(os.path.join(b, 'tree/d3/fifo'))
for i in range(0, 20, 3):
    os.setxattr(os.path.join(b, 'top%02d' % i), 'user.k%d' % i, r.randbytes(i * 10 + 1))
os.setxattr(os.path.join(b, 'tree/d1'), 'user.dir', b'on a dir')
os.chown(os.path.join(b, 'top05'), 4242, 4243)
os.chown(os.path.join(b, 'tree/d4'), 4242, 4243)
os.lchown(os.path.join(b, 'sym'), 4242, 4243)
os.utime(os.path.join(b, 'top06'), ns=(10**9, 10**9 + 5))
os.utime(os.path.join(b, 'sym'), ns=(10**9, 2 * 10**9 + 7), follow_symlinks=False)
EOF

swafs_mount "$B" "$M" "events=$WORK/events,store=$S"
"$PYTHON" "$IT_DIR/ckpt_churn.py" "$M" --big big --seed 7 2>"$WORK/churn.err" &
CPID=$!
ckpt_helper "$CPID"
sleep 2
pid_alive "$CPID" || fail "the application died: $(cat "$WORK/churn.err")"
kill -STOP "$CPID"
wait_until 5 grep -q '^State:.*T (stopped)' "/proc/$CPID/status" || fail "application did not stop"
mfst "$M" "$WORK/T.manifest"
ckpt_take "$M" saved
ckpt_take "$M" all --retain all
kill -CONT "$CPID"
log "checkpoints taken, application resumed; copying"

view_mount "$M" saved "$WORK/v-saved"
view_mount "$M" all "$WORK/v-all"
mkdir -p "$WORK/c-tar" "$WORK/c-rsync" "$WORK/c-cp"
TARX=(--numeric-owner --format=posix --xattrs --xattrs-include='user.*' --sparse)
( tar "${TARX[@]}" -cf - -C "$WORK/v-saved" . | tar "${TARX[@]}" -xpf - -C "$WORK/c-tar" ) \
	2>"$WORK/tar.err" &
P_TAR=$!
dd if="$WORK/v-all/big" of="$WORK/c-dd" bs=1M 2>"$WORK/dd.err" &
P_DD=$!
rsync -aHAX --numeric-ids "$WORK/v-all/" "$WORK/c-rsync/" 2>"$WORK/rsync.err" &
P_RSYNC=$!
cp -a --sparse=always "$WORK/v-all/." "$WORK/c-cp/" 2>"$WORK/cp.err" &
P_CP=$!
errs=
wait "$P_TAR" || errs="$errs
tar failed: $(head -c 600 "$WORK/tar.err")"
wait "$P_DD" || errs="$errs
dd failed: $(head -c 600 "$WORK/dd.err")"
wait "$P_RSYNC" || errs="$errs
rsync failed: $(head -c 600 "$WORK/rsync.err")"
wait "$P_CP" || errs="$errs
cp failed: $(head -c 600 "$WORK/cp.err")"
pid_alive "$CPID" || errs="$errs
the application died while the copies ran: $(cat "$WORK/churn.err")"
stop_helper "$CPID"
[ -z "$errs" ] || fail "copying the views:$errs"
log "copies done; captured bytes: saved $(ckpt_field "$M" saved captured_bytes), all $(ckpt_field "$M" all captured_bytes)"

# the application really changed the live tree meanwhile
mfst "$M" "$WORK/end.manifest" --no-data
"$PYTHON" "$MANIFEST_PY" cmp "$WORK/T.manifest" "$WORK/end.manifest" --ignore sha256 >/dev/null &&
	fail "the live tree did not change during the copies"

for c in tar rsync cp; do
	mfst "$WORK/c-$c" "$WORK/c-$c.manifest"
	out=$("$PYTHON" "$MANIFEST_PY" cmp "$WORK/T.manifest" "$WORK/c-$c.manifest") ||
		errs="$errs
$c copy differs from the tree at T:
$out"
done
want=$(awk -F'\t' '$1 == "big" { print $2 }' "$WORK/T.manifest" | grep -o 'sha256=[0-9a-f]*')
got=sha256=$(sha256sum <"$WORK/c-dd" | cut -d' ' -f1)
[ "$want" = "$got" ] || errs="$errs
dd copy of big: $got, at T: $want"
[ -z "$errs" ] || fail "$errs"

view_umount "$WORK/v-saved"
view_umount "$WORK/v-all"
swafs_umount "$M"
log "ok"
