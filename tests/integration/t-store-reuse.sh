#!/bin/bash
# The store reuses the space of dropped pre-images (DESIGN.md 8, G5): random
# overwrites while a saver reads the view in order, under on_full=invalidate
# with store_max far below what the writer makes the store hold over the
# save, but above the pre-images live at any time.  Each round overwrites
# random blocks of the next file to save (pre-images that die when it is
# saved) and a few of a file saved last (pre-images that live to the end,
# scattered through every spill segment); then the saver reads that round's
# file.  Without reuse every segment keeps a live record, the store grows
# by a round's pre-images each round and the checkpoint is invalidated.
# With reuse the checkpoint stays valid, every view file reads exactly its
# T bytes, and the live files hold exactly the writes.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt V=$WORK/view S=$WORK/store EV=$WORK/events
SP=$IT_DIR/store_policy.py
ROUNDS=12 MIB=8 SHORT=40 LONG=4	# 64 KiB blocks per file and round
mkdir -p "$B" "$M" "$S"

: >"$EV"
swafs_mount "$B" "$M" "store=$S,store_mem=1M,store_max=10M,on_full=invalidate,block_size=64K,events=$EV"
for f in $(seq $ROUNDS) L; do
	head -c $((MIB << 20)) /dev/urandom >"$WORK/orig.$f"
	cp "$WORK/orig.$f" "$M/$f"
done
cp "$WORK/orig.L" "$WORK/now.L"
sync
ckpt_take "$M" t
view_mount "$M" t "$V"

for k in $(seq $ROUNDS); do
	"$PYTHON" "$SP" write "$M/$k" "$WORK/orig.$k" "$WORK/expect.$k" \
		"$WORK/stats" --count $SHORT || fail "round $k: a write to $k failed"
	"$PYTHON" "$SP" write "$M/L" "$WORK/now.L" "$WORK/next.L" \
		"$WORK/stats" --count $LONG || fail "round $k: a write to L failed"
	mv "$WORK/next.L" "$WORK/now.L"
	out=$("$PYTHON" "$SP" save "$V/$k" "$WORK/orig.$k" --rate 1e9) ||
		fail "round $k: the view read failed (store full?) or gave bytes other than T's: $out"
	assert_eq "round $k: view chunks read right / EIO" "chunks $MIB 0" "$out"
done
assert_eq "checkpoint valid after $ROUNDS rounds" 1 "$(ckpt_field "$M" t valid)"
out=$("$PYTHON" "$SP" save "$V/L" "$WORK/orig.L" --rate 1e9) ||
	fail "L: the view gave bytes other than T's: $out"
assert_eq "L: view chunks read right / EIO" "chunks $MIB 0" "$out"
! grep '"event":"store-full"' "$EV" || fail "the store ran full"
for k in $(seq $ROUNDS); do
	cmp "$M/$k" "$WORK/expect.$k" || fail "$k: the live file is not exactly what the writer wrote"
done
cmp "$M/L" "$WORK/now.L" || fail "L: the live file is not exactly what the writer wrote"
view_umount "$V"
swafs_umount "$M"
log ok
