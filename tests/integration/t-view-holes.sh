#!/bin/bash
# A view answers SEEK_DATA, SEEK_HOLE and st_blocks from T's layout, or
# fails as a read would (EIO and an integrity-error event naming the
# file); never from the live file's current layout. Cases:
#   1. capture blocks (64 KiB) that were partly holes at T (4 KiB runs of
#      data), written into after T while a writer keeps writing into holes
#      and data: the view has T's extents, st_blocks and bytes, and so
#      have its copies by cp --sparse=always, cp and tar --sparse (but
#      st_blocks, which depends on the copy's allocation) (--retain all);
#   2. a file read whole through a view (released), then written into one
#      of its holes: T's extents or EIO with an event; st_blocks is T's;
#   3. blocks the reader saved (read past), then written into: the same.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt S=$WORK/store EV=$WORK/events
mkdir -p "$B" "$M" "$S"
swafs_mount "$B" "$M" "events=$EV,store=$S"
L=$IT_DIR/layout.py
K=1024

"$PYTHON" - "$M" <<'EOF'
import os, random, sys
m = sys.argv[1]
r = random.Random(5)
K = 1024
def sparse(name, size, runs):
    with open(os.path.join(m, name), 'wb') as f:
        f.truncate(size)
        for off, n in runs:
            f.seek(off)
            f.write(r.randbytes(n))
        # allocated now: st_blocks no longer grows by the extent tree
        # blocks writeback would add later
        f.flush()
        os.fsync(f.fileno())
# partly holes: blocks 1, 5, 10 and the last one
sparse('part', 1 << 20, [(64 * K + 8 * K, 4 * K), (5 * 64 * K + 20 * K, 8 * K),
                         (9 * 64 * K, 76 * K), ((1 << 20) - 4 * K, 4 * K)])
sparse('random', 16 << 20, [(r.randrange(0, 16 << 20, 4096),
                             4096 * r.randrange(1, 6)) for i in range(40)])
sparse('rel', 4 << 20, [(1 << 20, 64 * K), (3 << 20, 100 * K)])
sparse('saved', 32 << 20, [(i << 20, 8 * K) for i in range(0, 32, 3)])
EOF
"$PYTHON" "$L" save "$WORK/T1.json" "$B/part" "$B/random"
"$PYTHON" "$L" save "$WORK/T2.json" "$B/rel"
"$PYTHON" "$L" save "$WORK/T3.json" "$B/saved"

# ---- 1. partly-hole blocks written after T -----------------------------------
ckpt_take "$M" c1 --retain all
view_mount "$M" c1 "$WORK/v1"
# into the hole of each partly-hole block of part
for off in $((64 * K + 32 * K)) $((5 * 64 * K + 40 * K)) $((10 * 64 * K + 30 * K)) \
	$(((1 << 20) - 30 * K)); do
	"$PYTHON" "$L" write "$M/part" "$off" 3000 "$off"
done
touch "$WORK/started"
"$PYTHON" - "$M" "$WORK/stop" "$WORK/started" <<'EOF' &
import os, random, sys, time
m, stop, started = sys.argv[1:]
r = random.Random(9)
fds = [os.open(os.path.join(m, n), os.O_WRONLY) for n in ('part', 'random')]
sizes = [1 << 20, 16 << 20]
i = 0
while i < 300 or not os.path.exists(stop):
    k = r.randrange(2)
    os.pwrite(fds[k], r.randbytes(r.randrange(1, 9000)), r.randrange(sizes[k]))
    i += 1
    if i == 300:
        os.unlink(started)
    if i % 50 == 0:
        time.sleep(0.002)
EOF
WRITER=$!
ckpt_helper "$WRITER"
wait_until 30 eval '[ ! -e "$WORK/started" ]' || fail "the writer did not start"
mkdir -p "$WORK/cp-always" "$WORK/cp-auto" "$WORK/tar"
cp --sparse=always "$WORK/v1/part" "$WORK/v1/random" "$WORK/cp-always/" ||
	fail "cp --sparse=always from the view failed"
cp "$WORK/v1/part" "$WORK/v1/random" "$WORK/cp-auto/" || fail "cp from the view failed"
tar --sparse -cf - -C "$WORK/v1" part random | tar -xf - -C "$WORK/tar" ||
	fail "tar --sparse of the view failed"
# a copy's st_blocks depends on how its own extents were allocated: its
# extents and bytes are compared, the view's st_blocks as well
for d in v1 cp-always cp-auto tar; do
	nb=--no-blocks
	[ "$d" != v1 ] || nb=
	out=$("$PYTHON" "$L" check "$WORK/T1.json" "$WORK/$d" $nb) ||
		fail "partly-hole blocks written after T, $d:
$out"
	log "$d: $(echo "$out" | tr '\n' ' ')"
done
touch "$WORK/stop"
wait "$WRITER" || fail "the writer failed"

# ---- 2. released, then written into a hole -----------------------------------
ckpt_take "$M" c2
view_mount "$M" c2 "$WORK/v2"
ino=$(stat -c %i "$B/rel")
cat "$WORK/v2/rel" >/dev/null || fail "reading rel through the view failed"
wait_until 10 grep -q "\"event\":\"file-released\",\"name\":\"c2\",\"inode\":$ino" "$EV" ||
	fail "rel was read whole through the view but not released"
"$PYTHON" "$L" write "$M/rel" $((2 << 20)) 5000
"$PYTHON" "$L" write "$M/rel" 0 100
out=$("$PYTHON" "$L" check "$WORK/T2.json" "$WORK/v2" --no-data --allow-eio "$EV") ||
	fail "released, then written into a hole:
$out"
log "released: $out"
assert_eq "st_blocks of rel through the view after release and change" \
	"$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["rel"]["blocks"])' "$WORK/T2.json")" \
	"$(stat -c %b "$WORK/v2/rel")"

# ---- 3. saved by the reader, then written into ---------------------------------
ckpt_take "$M" c3
view_mount "$M" c3 "$WORK/v3"
# read 24 MiB: the blocks the reader has moved well past are saved
dd if="$WORK/v3/saved" of=/dev/null bs=1M count=24 status=none ||
	fail "reading saved through the view failed"
"$PYTHON" "$L" write "$M/saved" $(((2 << 20) + 100 * K)) 5000
"$PYTHON" "$L" write "$M/saved" $((3 << 20)) 100
out=$("$PYTHON" "$L" check "$WORK/T3.json" "$WORK/v3" --no-data --allow-eio "$EV") ||
	fail "saved, then written into:
$out"
log "saved: $out"

view_umount "$WORK/v3"
view_umount "$WORK/v2"
view_umount "$WORK/v1"

# ---- truncated behind the mount's back: a seek past the cut fails as a read
# does (EIO), never "no data" (a sparse copier would write zeros for T data)
head -c $((1 << 20)) /dev/urandom >"$M/cut"
sync
ckpt_take "$M" c4 --keep
view_mount "$M" c4 "$WORK/v4"
# an entry for cut: one block captured by a live write
"$PYTHON" "$L" write "$M/cut" 0 100
truncate -s $((256 * K)) "$B/cut"
out=$("$PYTHON" - "$WORK/v4/cut" $((512 * K)) <<'EOF2'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
for whence, name in ((os.SEEK_DATA, 'data'), (os.SEEK_HOLE, 'hole')):
    try:
        print(name, os.lseek(fd, int(sys.argv[2]), whence))
    except OSError as e:
        print(name, errno.errorcode[e.errno])
EOF2
)
assert_eq "seeks past a cut made behind the mount's back" "data EIO
hole EIO" "$out"
view_umount "$WORK/v4"
swafs_umount "$M"
log "ok"
