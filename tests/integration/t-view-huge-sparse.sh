#!/bin/bash
# Views of a huge sparse file: a 15 TiB file with a few extents, some of
# its blocks written after T (into holes, next to data, over data) while
# a writer keeps writing into random holes. SEEK_DATA/SEEK_HOLE through the
# view cost per extent, not per block of the size: walking its extents
# takes at most 2 s (it took minutes when every 64 KiB block was asked),
# and tar --sparse of the view takes at most 20 s and extracts T's extents
# and bytes.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt S=$WORK/store EV=$WORK/events
mkdir -p "$B" "$M" "$S" "$WORK/tar"
swafs_mount "$B" "$M" "events=$EV,store=$S"
L=$IT_DIR/layout.py
K=1024 T=$((1 << 40)) SIZE=$((15 << 40))

"$PYTHON" - "$M/huge" "$SIZE" <<'EOF'
import os, random, sys
path, size = sys.argv[1], int(sys.argv[2])
r = random.Random(15)
T, K = 1 << 40, 1024
with open(path, 'wb') as f:
    f.truncate(size)
    for off, n in ((0, 4 * K), (T + 8 * K, 64 * K), (7 * T, 1 << 20),
                   (size - 100 * K, 100 * K)):
        f.seek(off)
        f.write(r.randbytes(n))
    f.flush()
    os.fsync(f.fileno())
EOF
"$PYTHON" "$L" save "$WORK/T.json" "$B/huge"

# two readers of one view: with --retain saved the first would save (and
# free) the blocks the second needs
ckpt_take "$M" c1 --retain all
view_mount "$M" c1 "$WORK/v"
# into a hole, next to T data in its block, over T data, before the tail
for off in $((3 * T)) $((T + 100 * K)) $((7 * T + 300 * K)) $((SIZE - 150 * K)); do
	"$PYTHON" "$L" write "$M/huge" "$off" 5000 "$off"
done
"$PYTHON" - "$M/huge" "$SIZE" "$WORK/stop" <<'EOF' &
import os, random, sys, time
path, size, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3]
r = random.Random(16)
fd = os.open(path, os.O_WRONLY)
while not os.path.exists(stop):
    os.pwrite(fd, r.randbytes(100), r.randrange(size - 200))
    time.sleep(0.005)
EOF
WRITER=$!
ckpt_helper "$WRITER"

out=$(timeout 60 "$PYTHON" "$L" check "$WORK/T.json" "$WORK/v" --max-seconds 2) ||
	fail "extents of the 15 TiB file through the view (limit 2 s):
${out:-no answer within 60 s}"
log "view: $out"
start=$(now_ns)
timeout 60 tar --sparse --format=posix -cf - -C "$WORK/v" huge |
	tar -xf - -C "$WORK/tar" || fail "tar --sparse of the view failed or took over 60 s"
ms=$((($(now_ns) - start) / 1000000))
log "tar --sparse of the 15 TiB view file: $ms ms"
[ "$ms" -le 20000 ] || fail "tar --sparse of the view took $ms ms (limit 20 s)"
out=$("$PYTHON" "$L" check "$WORK/T.json" "$WORK/tar" --no-blocks) ||
	fail "tar --sparse copy of the view:
$out"
log "tar copy: $out"
touch "$WORK/stop"
wait "$WRITER" || fail "the writer failed"
rm -f "$WORK/tar/huge"

view_umount "$WORK/v"
swafs_umount "$M"
log "ok"
