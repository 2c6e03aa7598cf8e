#!/bin/bash
# One corrupted store record: pre-images spilled to a segment file
# (store_mem=1M), one byte inverted in the payload of one record; reading
# the view fails with EIO on that block only (--retain all, so every block
# is read from the store), every other block reads its T bytes, an
# integrity-error event naming the file is in `swactl events`, and the live
# tree is unaffected.  (t-g3 case 1 covers garbage over many records.)
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt S=$WORK/store
mkdir -p "$B" "$M" "$S"
BC=$IT_DIR/ckpt_blockcheck.py
swafs_mount "$B" "$M" "store=$S,store_mem=1M,block_size=64K"
head -c 8M /dev/urandom >"$M/f"
"$PYTHON" "$BC" hash "$M/f" "$WORK/f.T" --block 65536
ckpt_take "$M" c1 --retain all
view_mount "$M" c1 "$WORK/v"
head -c 8M /dev/urandom >"$WORK/new"
dd if="$WORK/new" of="$M/f" bs=64K conv=notrunc status=none || fail "overwrite"
mapfile -t segs < <(find "$S" -name 'seg-*' -type f | sort)
[ "${#segs[@]}" -gt 0 ] || fail "nothing spilled to a segment file"
seg=${segs[0]}
size=$(stat -c %s "$seg")
# random data does not compress: records are raw, 24-byte header + 64 KiB,
# after the 16-byte segment header; hit the payload of the third record
rec=$((24 + 65536))
[ "$size" -ge $((16 + 3 * rec)) ] || fail "segment $seg holds only $size bytes"
off=$((16 + 2 * rec + 24 + 1000))
"$PYTHON" - "$seg" "$off" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
off = int(sys.argv[2])
b = os.pread(fd, 1, off)
os.pwrite(fd, bytes([b[0] ^ 0xff]), off)
os.close(fd)
EOF
out=$("$PYTHON" "$BC" check "$WORK/v/f" "$WORK/f.T" --require-eio) ||
	fail "view after one corrupted record: $out"
log "$out"
[[ $out == *" 1 EIO, 0 wrong" ]] || fail "expected exactly one block with EIO: $out"
names_f() { "$SWACTL" events "$M" | grep -Eq '"event":"integrity-error".*"file":"[^"]*/f[ "]'; }
wait_until 5 names_f ||
	fail "no integrity-error event names f: $("$SWACTL" events "$M" | tail -3)"
cmp "$WORK/new" "$M/f" || fail "the live file changed"
cmp "$WORK/new" "$B/f" || fail "BACKING changed"
echo more >>"$M/f" || fail "live write after the integrity error"
assert_eq "checkpoint still listed" 1 "$(ckpt_field "$M" c1 views)"
view_umount "$WORK/v"
swafs_umount "$M"
log ok
