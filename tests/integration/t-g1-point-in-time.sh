#!/bin/bash
# G1 point in time: the view shows exactly what the live tree showed at T
# (names, types, contents, sizes, modes, owners, mtimes, symlink targets,
# hard links with one inode and st_nlink as at T, user xattrs), whatever
# changed after T, and nothing created after T appears at any depth.
#
# A background writer keeps changing w/ and is stopped (SIGSTOP) around T,
# like an application quiesced for the checkpoint. Two checkpoints of the
# same instant: c1 (--retain saved) whose view is read once at the end, c2
# (--retain all) whose view is read in the middle of the changes and again
# at the end. Before the changes, a saver peeks through the c1 view at the
# first byte of some files and reads others whole (then closes them).
#
# CKPT_SELFTEST=1 alters the recorded T manifest: the test must then fail.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt S=$WORK/store
mkdir -p "$B" "$M" "$S"
swafs_mount "$B" "$M" "events=$WORK/events,store=$S,store_mem=4M"

# ---- the tree at T ---------------------------------------------------------
"$PYTHON" - "$M" <<'EOF'
import os, sys, random
m = sys.argv[1]
r = random.Random(1)
def data(n):
    return r.randbytes(n)
def put(p, b, mode=0o644):
    with open(os.path.join(m, p), 'wb') as f:
        f.write(b)
    os.chmod(os.path.join(m, p), mode)
os.makedirs(os.path.join(m, 'd1/d2/d3/d4'))
os.makedirs(os.path.join(m, 'empty'))
os.makedirs(os.path.join(m, 'gone/sub/subsub'))
os.makedirs(os.path.join(m, 'ren'))
os.makedirs(os.path.join(m, 'w'))
put('empty.txt', b'')
put('small', b'small file\n')
put('odd', data(65536 * 3 + 123))
put('big', data(4 << 20))
put('d1/a', data(70000))
put('d1/d2/b', data(1))
put('d1/d2/d3/d4/deep', data(200000))
put('gone/x', data(5000))
put('gone/sub/subsub/y', data(100))
put('ren/old', b'rename source\n')
put('ren/victim', b'renamed over\n')
put('unlinkme', data(300000))
put('trunc', data(300000))
put('trunc0', data(100000))
put('grow', data(1000))
put('append', data(65536))
put('modes', b'm', 0o4755)
put('secret', b'nobody may read', 0o000)
put('space name\nnewline', b'odd name')
put('cfr-dst', data(200000))
put('mmap', data(3 * 65536))
put('fall', data(1 << 20))
put('xch-a', b'exchange a\n')
put('xch-b', b'exchange b\n')
for i in range(50):
    put('w/f%02d' % i, data(r.randrange(1, 100000)))
# sparse: hole, data, hole, data, trailing hole
with open(os.path.join(m, 'sparse'), 'wb') as f:
    f.seek(1 << 20); f.write(data(4096))
    f.seek(3 << 20); f.write(data(70000))
    f.truncate(8 << 20)
# hard links: three names of one inode, across directories
put('hl1', data(150000))
os.link(os.path.join(m, 'hl1'), os.path.join(m, 'd1/hl2'))
os.link(os.path.join(m, 'hl1'), os.path.join(m, 'd1/d2/hl3'))
put('hl-pair', b'pair\n')
os.link(os.path.join(m, 'hl-pair'), os.path.join(m, 'hl-pair2'))
# symlinks
os.symlink('small', os.path.join(m, 'ln-rel'))
os.symlink('/nonexistent/target', os.path.join(m, 'ln-dangling'))
os.symlink('d1/d2', os.path.join(m, 'ln-dir'))
os.symlink('x' * 300, os.path.join(m, 'ln-long'))
os.symlink('small', os.path.join(m, 'ln-replace'))
# fifos, a device node
os.mkfifo(os.path.join(m, 'fifo'))
os.mkfifo(os.path.join(m, 'd1/fifo2'))
os.mknod(os.path.join(m, 'null'), 0o600 | 0o020000, os.makedev(1, 3))
# xattrs
for p, n, v in [('small', 'user.a', b'1'), ('small', 'user.b', b'x' * 200),
                ('d1', 'user.dir', b'dir attr'), ('hl1', 'user.hl', b'h'),
                ('big', 'user.rm', b'remove me')]:
    os.setxattr(os.path.join(m, p), n, v)
# owners, modes, explicit times
os.chown(os.path.join(m, 'd1/a'), 4242, 4243)
os.chown(os.path.join(m, 'd1/d2'), 4242, 4243)
os.lchown(os.path.join(m, 'ln-rel'), 4242, 4243)
os.chmod(os.path.join(m, 'empty'), 0o1777)
os.utime(os.path.join(m, 'odd'), ns=(10**9, 123456789))
os.utime(os.path.join(m, 'ln-rel'), ns=(10**9, 987654321),
         follow_symlinks=False)
os.utime(os.path.join(m, 'd1/d2/d3'), ns=(10**9, 5 * 10**17))
EOF

# an application writer, running until the end of the test
"$PYTHON" - "$M/w" <<'EOF' &
import os, sys, random, time
w = sys.argv[1]
r = random.Random(2)
i = 0
while True:
    i += 1
    p = os.path.join(w, 'f%02d' % r.randrange(60))
    k = r.randrange(5)
    try:
        if k == 0:
            os.unlink(p)
        elif k == 1:
            os.rename(p, os.path.join(w, 'f%02d' % r.randrange(60)))
        else:
            with open(p, 'ab' if k == 2 else 'r+b' if os.path.exists(p) else 'wb') as f:
                f.seek(r.randrange(100000))
                f.write(r.randbytes(r.randrange(1, 20000)))
    except FileNotFoundError:
        pass
    if i % 50 == 0:
        time.sleep(0.001)
EOF
WPID=$!
ckpt_helper "$WPID"
sleep 0.5
kill -STOP "$WPID"
# wait until the writer really is stopped (no call in flight)
wait_until 5 grep -q '^State:.*T (stopped)' "/proc/$WPID/status" ||
	fail "writer did not stop"

mfst "$M" "$WORK/T.manifest"
ckpt_take "$M" c1
ckpt_take "$M" c2 --retain all --keep
kill -CONT "$WPID"
log "checkpoints taken (pause ${CKPT_PAUSE_US}us); writer resumed"

if [ "${CKPT_SELFTEST:-0}" = 1 ]; then
	log "SELFTEST: altering the expected manifest"
	sed -i 's/^small\t\(.*\)size=11/small\t\1size=12/' "$WORK/T.manifest"
fi

# ---- changes of every kind after T ----------------------------------------
changes1() {
	printf 'OVERWRITE' | dd of="$M/odd" bs=1 seek=70000 conv=notrunc status=none
	dd if=/dev/urandom of="$M/big" bs=64K count=20 seek=5 conv=notrunc status=none
	printf 'x' | dd of="$M/big" bs=1 seek=$((4 * 1024 * 1024 - 1)) conv=notrunc status=none
	head -c 100000 /dev/urandom >>"$M/append"
	truncate -s 12345 "$M/trunc"
	: >"$M/trunc0"
	truncate -s 5M "$M/grow"
	printf 'into the hole' | dd of="$M/sparse" bs=1 seek=$((2 << 20)) conv=notrunc status=none
	printf 'into the tail hole' >>"$M/sparse"
	chmod 600 "$M/small"
	chmod 0755 "$M/secret"
	chmod 700 "$M/d1/d2"
	chown 1:2 "$M/big"
	chown -h 0:0 "$M/ln-rel"
	touch -d '2001-02-03 04:05:06' "$M/odd" "$M/d1" "$M/d1/d2/d3"
	touch -h -d '1999-01-01' "$M/ln-dangling"
	setfattr -n user.a -v changed "$M/small"
	setfattr -n user.new -v new "$M/small"
	setfattr -x user.rm "$M/big"
	setfattr -n user.dir -v changed-dir "$M/d1"
	setfattr -n user.newdir -v x "$M/empty"
	mv "$M/ren/old" "$M/ren/victim"
	mv "$M/d1/d2/b" "$M/moved-out"
	rm "$M/unlinkme"
	rm "$M/d1/hl2"
	ln "$M/hl-pair" "$M/d1/d2/d3/hl-pair3"
	ln -sfn big "$M/ln-replace"
}
changes2() {
	rm -rf "$M/gone"
	rmdir "$M/d1/d2/d3/d4" 2>/dev/null || { rm "$M/d1/d2/d3/d4/deep" && rmdir "$M/d1/d2/d3/d4"; }
	mkdir -p "$M/postT-dir/a/b/c" "$M/d1/d2/d3/postT-sub" "$M/empty/postT-e"
	echo new >"$M/postT-file"
	echo new >"$M/d1/d2/d3/postT-deep"
	echo new >"$M/postT-dir/a/b/c/postT-f"
	ln "$M/hl1" "$M/postT-hl"
	ln -s small "$M/d1/postT-ln"
	mkfifo "$M/d1/d2/postT-fifo"
	rm "$M/fifo"
	echo "was a fifo" >"$M/fifo"
	dd if=/dev/urandom of="$M/hl1" bs=4096 count=3 seek=7 conv=notrunc status=none
	fallocate -p -o 65536 -l 131072 "$M/fall"
	fallocate -z -o 300000 -l 70000 "$M/fall"
	fallocate -c -o 0 -l 65536 "$M/fall" 2>/dev/null || true
	fallocate -i -o 0 -l 65536 "$M/fall" 2>/dev/null || true
	"$PYTHON" - "$M" <<'EOF'
import ctypes, mmap, os, sys
m = sys.argv[1]
# copy_file_range onto an existing file
src = os.open(os.path.join(m, 'odd'), os.O_RDONLY)
dst = os.open(os.path.join(m, 'cfr-dst'), os.O_WRONLY)
os.copy_file_range(src, dst, 100000, 0, 50000)
os.close(src); os.close(dst)
# shared writable mmap
fd = os.open(os.path.join(m, 'mmap'), os.O_RDWR)
mm = mmap.mmap(fd, 3 * 65536)
mm[65536:65536 + 10] = b'MMAPPED!!!'
mm.flush(); mm.close(); os.close(fd)
# renameat2 RENAME_EXCHANGE
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
a = os.path.join(m, 'xch-a').encode(); b = os.path.join(m, 'xch-b').encode()
if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, 2) != 0:
    raise OSError(ctypes.get_errno(), 'renameat2 exchange')
# O_TRUNC rewrite of a hard-linked file
with open(os.path.join(m, 'hl-pair'), 'wb') as f:
    f.write(b'rewritten after T\n')
EOF
	mv "$M/d1/d2/d3" "$M/renamed-d3"
	rm "$M/null"
	mknod "$M/null" c 1 5
}

# a saver that peeks before the changes: the first byte of some files
# (like file(1) does), all of others, through the c1 view
view_mount "$M" c1 "$WORK/v1"
for f in odd big hl1 fall cfr-dst mmap append trunc sparse; do
	head -c 1 "$WORK/v1/$f" >/dev/null || fail "peek at $f through the view failed"
done
for f in small d1/a hl-pair; do
	cat "$WORK/v1/$f" >/dev/null || fail "read of $f through the view failed"
done
changes1
view_mount "$M" c2 "$WORK/v2"
mfst "$WORK/v2" "$WORK/v2-mid.manifest"
assert_manifest_eq "c2 view (retain all) in the middle of the changes vs T" \
	"$WORK/T.manifest" "$WORK/v2-mid.manifest"
changes2
# the writer really kept going after T
pid_alive "$WPID" || fail "writer died"
stop_helper "$WPID"
mfst "$M" "$WORK/end-live.manifest"
# the changes must really have changed the live tree
if "$PYTHON" "$MANIFEST_PY" cmp "$WORK/T.manifest" "$WORK/end-live.manifest" >/dev/null; then
	fail "the changes did not change the live tree?"
fi

mfst "$WORK/v1" "$WORK/v1.manifest"
assert_manifest_eq "c1 view (retain saved) after the changes vs T" \
	"$WORK/T.manifest" "$WORK/v1.manifest"
mfst "$WORK/v2" "$WORK/v2-end.manifest"
assert_manifest_eq "c2 view (retain all) at the end vs T" \
	"$WORK/T.manifest" "$WORK/v2-end.manifest"

# nothing created after T, at any depth, in either view
for v in "$WORK/v1" "$WORK/v2"; do
	found=$(find "$v" -name '*postT*' 2>&1 | head -5)
	[ -z "$found" ] || fail "objects created after T appear in the view: $found"
done
# hard links: one inode number for every name, st_nlink as at T
for v in "$WORK/v1" "$WORK/v2"; do
	i1=$(stat -c %i "$v/hl1") i2=$(stat -c %i "$v/d1/hl2") i3=$(stat -c %i "$v/d1/d2/hl3")
	[ "$i1" = "$i2" ] && [ "$i1" = "$i3" ] ||
		fail "$v: hard links have inode numbers $i1 $i2 $i3"
	assert_eq "$v/hl1 st_nlink" 3 "$(stat -c %h "$v/hl1")"
	assert_eq "$v/hl-pair st_nlink" 2 "$(stat -c %h "$v/hl-pair")"
done
view_umount "$WORK/v1"
view_umount "$WORK/v2"
swactl release "$M" c2 >/dev/null || fail "release c2"
swafs_umount "$M"
log "ok"
