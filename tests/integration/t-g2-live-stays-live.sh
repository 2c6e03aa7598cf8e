#!/bin/bash
# G2 live stays live: with checkpoints active (one with a mounted view being
# read, one kept without a view), the same sequence of calls on the live tree
# and on a plain directory gives the same results (values, data, errnos) and
# the same final tree; the view still shows T. The extra cost is paid once:
# rewriting a captured block captures nothing more, a file created after T
# captures nothing.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt P=$WORK/plain S=$WORK/store
mkdir -p "$B" "$M" "$P" "$S"
swafs_mount "$B" "$M" "events=$WORK/events,store=$S,store_mem=2M"
OPS=$IT_DIR/ckpt_g2ops.py

"$PYTHON" "$OPS" "$P" "$WORK/plain.log" || fail "ops on the plain directory failed"

AT_T="'$PYTHON' '$MANIFEST_PY' make '$M' -o '$WORK/T.manifest' &&
'$SWACTL' checkpoint '$M' --name g2a >/dev/null &&
'$SWACTL' checkpoint '$M' --name g2b --keep --retain all >/dev/null &&
'$SWACTL' mount '$M' g2a '$WORK/view' >/dev/null &&
head -c 100000 '$WORK/view/fodd' >/dev/null &&
dd if='$WORK/view/fbig' bs=64K count=3 skip=2 status=none >/dev/null"
mkdir -p "$WORK/view"
_CKPT_VIEWS+=("$WORK/view")
"$PYTHON" "$OPS" "$M" "$WORK/mnt.log" --at-t "$AT_T" ||
	fail "ops on the live tree failed"
is_fuse_mount "$WORK/view" || fail "view not mounted"

ckpt_text_eq "results of the calls (plain vs live tree with checkpoints)" \
	"$WORK/plain.log" "$WORK/mnt.log"
mfst "$P" "$WORK/plain.manifest" --mtime explicit --no-root
mfst "$M" "$WORK/mnt.manifest" --mtime explicit --no-root
assert_manifest_eq "final trees (plain vs live)" "$WORK/plain.manifest" "$WORK/mnt.manifest"

# the views still show T
mfst "$WORK/view" "$WORK/view.manifest"
assert_manifest_eq "view g2a vs T" "$WORK/T.manifest" "$WORK/view.manifest"
view_mount "$M" g2b "$WORK/view-b"
mfst "$WORK/view-b" "$WORK/view-b.manifest"
assert_manifest_eq "view g2b vs T" "$WORK/T.manifest" "$WORK/view-b.manifest"

# capture happens once per block, and never for objects created after T
dd if=/dev/urandom of="$M/once" bs=64K count=4 status=none
ckpt_take "$M" once --keep
before=$(ckpt_field "$M" once captured_blocks)
for i in $(seq 1 50); do
	printf 'rewrite %d' "$i" | dd of="$M/once" bs=1 seek=$((65536 + i * 7)) conv=notrunc status=none
done
after=$(ckpt_field "$M" once captured_blocks)
[ "$((after - before))" -eq 1 ] ||
	fail "50 rewrites of one block captured $((after - before)) blocks (expected 1)"
echo fresh >"$M/postT-new"
for i in $(seq 1 20); do printf 'more %d\n' "$i" >>"$M/postT-new"; done
dd if=/dev/zero of="$M/postT-new" bs=64K count=8 conv=notrunc status=none
after2=$(ckpt_field "$M" once captured_blocks)
assert_eq "blocks captured by writes to a file created after T" "$after" "$after2"

view_umount "$WORK/view"
view_umount "$WORK/view-b"
swactl release "$M" g2b >/dev/null
swactl release "$M" once >/dev/null
swafs_umount "$M"
log "ok"
