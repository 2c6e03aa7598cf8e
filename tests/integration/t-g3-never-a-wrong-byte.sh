#!/bin/bash
# G3 never a wrong byte: when the view cannot serve T data the read fails
# with EIO and an integrity-error event names the file; post-T or garbage
# data is never returned as T data. Cases:
#   1. corrupted store: pre-images spilled to disk (store_mem=1M), bytes in
#      the middle of the segment files overwritten;
#   2. store lost: the segment files truncated;
#   3. a file released by the view (read fully, closed), changed, then read
#      again from the daemon (its cached pages dropped);
#   4. a file changed in BACKING behind the mount's back after T.
#
# CKPT_SELFTEST=1 skips the corruption of case 1: the test must then fail.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt S=$WORK/store EV=$WORK/events
mkdir -p "$B" "$M" "$S"
swafs_mount "$B" "$M" "events=$EV,store=$S,store_mem=1M"
BC=$IT_DIR/ckpt_blockcheck.py

for f in f g h k; do
	head -c 8M /dev/urandom >"$M/$f"
	"$PYTHON" "$BC" hash "$M/$f" "$WORK/$f.T"
done
ckpt_take "$M" c1
view_mount "$M" c1 "$WORK/v1"

# expect_eio WHAT FILE: reading FILE fails with EIO (dd reports it)
expect_eio() {
	local out rc=0
	out=$(dd if="$2" of=/dev/null bs=1M 2>&1) || rc=$?
	[ "$rc" -ne 0 ] || fail "$1: reading $2 succeeded; expected EIO"
	case $out in
	*"Input/output error"*) ;;
	*) fail "$1: reading $2 failed, but not with EIO: $out" ;;
	esac
}
# expect_event FILE: an integrity-error event names FILE (basename)
expect_event() {
	wait_until 5 grep -Eq "\"event\":\"integrity-error\".*\"file\":\"[^\"]*/$1[ \"]" "$EV" ||
		fail "no integrity-error event names '$1': $(grep integrity "$EV" | head -3)"
}

# ---- 1. corrupted store ----------------------------------------------------
dd if=/dev/urandom of="$M/f" bs=1M count=8 conv=notrunc status=none
mapfile -t segs < <(find "$S" -name 'seg-*' -type f)
[ "${#segs[@]}" -gt 0 ] || fail "no spilled segment files under $S (store_mem=1M, 8 MiB captured)"
total=0
for s in "${segs[@]}"; do total=$((total + $(stat -c %s "$s"))); done
[ "$total" -ge $((6 << 20)) ] || fail "only $total bytes spilled to $S"
if [ "${CKPT_SELFTEST:-0}" = 1 ]; then
	log "SELFTEST: not corrupting the store"
else
	for s in "${segs[@]}"; do
		sz=$(stat -c %s "$s")
		# 4 KiB of garbage every 128 KiB from 64 KiB on
		for ((off = 65536; off + 4096 < sz; off += 131072)); do
			dd if=/dev/urandom of="$s" bs=4096 count=1 seek=$((off / 4096)) \
				conv=notrunc status=none
		done
	done
fi
expect_eio "corrupted store" "$WORK/v1/f"
out=$("$PYTHON" "$BC" check "$WORK/v1/f" "$WORK/f.T" --require-eio) ||
	fail "corrupted store: $out"
log "$out"
expect_event f

# ---- 2. store lost ----------------------------------------------------------
dd if=/dev/urandom of="$M/g" bs=1M count=8 conv=notrunc status=none
find "$S" -name 'seg-*' -type f -exec truncate -s 16 {} +
expect_eio "store lost" "$WORK/v1/g"
out=$("$PYTHON" "$BC" check "$WORK/v1/g" "$WORK/g.T" --require-eio) ||
	fail "store lost: $out"
log "$out"
expect_event g

# ---- 3. released by the view, then changed -----------------------------------
# a fresh checkpoint, so that case 1 and 2 do not get in the way
ckpt_take "$M" c2
view_mount "$M" c2 "$WORK/v2"
out=$("$PYTHON" "$BC" check "$WORK/v2/h" "$WORK/h.T" --require-ok) ||
	fail "first read of h through the view: $out"
wait_until 5 grep -q '"event":"file-released","name":"c2"' "$EV" ||
	log "note: no file-released event after h was read fully"
dd if=/dev/urandom of="$M/h" bs=1M count=8 conv=notrunc status=none
# drop the view's cached pages of h: the next read goes to the daemon
out=$("$PYTHON" "$BC" check "$WORK/v2/h" "$WORK/h.T" --fadvise) ||
	fail "re-read of h after it was released and changed: $out"
log "re-read after release and change: $out"
out=$("$PYTHON" "$BC" check "$WORK/v2/h" "$WORK/h.T" --direct) ||
	fail "O_DIRECT re-read of h after it was released and changed: $out"
log "O_DIRECT re-read after release and change: $out"

# ---- 4. changed behind the mount's back ---------------------------------------
ckpt_take "$M" c3
view_mount "$M" c3 "$WORK/v3"
sleep 0.01
dd if=/dev/urandom of="$B/k" bs=1M count=2 seek=3 conv=notrunc status=none
expect_eio "changed in BACKING behind the mount's back" "$WORK/v3/k"
out=$("$PYTHON" "$BC" check "$WORK/v3/k" "$WORK/k.T") ||
	fail "changed behind the back: $out"
expect_event k

view_umount "$WORK/v3"
view_umount "$WORK/v2"
view_umount "$WORK/v1"
swafs_umount "$M"
log "ok"
