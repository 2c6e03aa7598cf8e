#!/bin/bash
# G5 bounded: the store stays under store_max; when it is full the
# checkpoint is invalidated (list says so, an event says so, its view
# returns EIO) while live writes go on and are correct. The daemon's memory
# stays bounded by store_mem while 500 MiB of pre-images are captured; the
# spilled pre-images read back right and are freed once the view has read
# them.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt S=$WORK/store EV=$WORK/events
mkdir -p "$B" "$M" "$S"

# ---- 1. store_max reached: invalidate, live writes go on --------------------
swafs_mount "$B" "$M" "events=$EV,store=$S,store_mem=1M,store_max=4M"
head -c 32M /dev/urandom >"$M/f"
ckpt_take "$M" small
view_mount "$M" small "$WORK/v"
head -c 32M /dev/urandom >"$WORK/new"
# sample the store's disk use while the pre-images pile up
dd if="$WORK/new" of="$M/f" bs=64K conv=notrunc,fsync status=none ||
	fail "a live write failed while the store filled up"
use=$(du -sb "$S" | cut -f1)
[ "$use" -le $((4 << 20)) ] || fail "store uses $use bytes, store_max is 4M"
cmp "$WORK/new" "$M/f" || fail "live data wrong after the store filled up"
cmp "$WORK/new" "$B/f" || fail "BACKING data wrong after the store filled up"
echo "after" >>"$M/f" || fail "append after invalidation failed"
valid=$(ckpt_field "$M" small valid)
case $valid in
0 | false | False) ;;
*) fail "checkpoint still valid after the store filled up (valid=$valid): $(ckpt_json "$M")" ;;
esac
swactl list "$M" | grep -qi invalid ||
	fail "swactl list does not say the checkpoint is invalid: $(swactl list "$M")"
grep '"event":"failed"' "$EV" | grep -q '"name":"small"' ||
	fail "no 'failed' event for the invalidated checkpoint: $(cat "$EV")"
rc=0
err=$(dd if="$WORK/v/f" of=/dev/null bs=1M 2>&1) || rc=$?
[ "$rc" -ne 0 ] && [[ $err == *"Input/output error"* ]] ||
	fail "view of an invalidated checkpoint: read gave exit $rc: $err"
view_umount "$WORK/v"
swafs_umount "$M"
rm -f "$B/f" "$WORK/new"

# ---- 1b. store_max bounds memory and disk together ---------------------------
# store_mem (256M by default) does not add to store_max: 16 MiB of
# pre-images do not fit in store_max=8M, although they fit in memory
: >"$EV"
swafs_mount "$B" "$M" "events=$EV,store=$S,store_max=8M,keep_days=0"
head -c 16M /dev/urandom >"$M/f"
ckpt_take "$M" eight --keep
"$SWACTL" status "$M" eight --json | "$PYTHON" -c '
import json, sys
assert json.load(sys.stdin)[0]["store_max_bytes"] == 8 << 20' ||
	fail "status does not give store_max=8M as the limit: $("$SWACTL" status "$M" --json)"
head -c 16M /dev/urandom | dd of="$M/f" bs=64K conv=notrunc status=none
case $(ckpt_field "$M" eight valid) in
0 | false | False) ;;
*) fail "16 MiB of pre-images fit under store_max=8M: $("$SWACTL" status "$M" eight)" ;;
esac
grep '"event":"store-full"' "$EV" | grep -q '"name":"eight"' ||
	fail "no store-full event under store_max=8M: $(cat "$EV")"
"$SWACTL" release "$M" eight
wait_until 5 grep -q '"event":"released".*"name":"eight"' "$EV" ||
	fail "no released event: $(cat "$EV")"
peak=$(grep '"event":"released"' "$EV" | grep -o '"store_peak_bytes":[0-9]*' | cut -d: -f2)
[ -n "$peak" ] && [ "$peak" -le $((8 << 20)) ] ||
	fail "the store held $peak bytes at most under store_max=8M"
swafs_umount "$M"
rm -f "$B/f"

# ---- 2. memory bounded while 500 MiB are captured ------------------------------
swafs_mount "$B" "$M" "events=$EV,store=$S,store_mem=64M"
DPID=$SWAFS_PID
dd if=/dev/urandom of="$M/big" bs=1M count=500 status=none
T_SHA=$(sha256sum <"$M/big" | cut -d' ' -f1)
ckpt_take "$M" big
base=$(vmrss_kb "$DPID")
(
	max=0
	while pid_alive "$DPID"; do
		r=$(vmrss_kb "$DPID" 2>/dev/null) || break
		[ "${r:-0}" -gt "$max" ] && { max=$r; echo "$max" >"$WORK/rss.max"; }
		sleep 0.1
	done
) &
ckpt_helper $!
dd if=/dev/zero of="$M/big" bs=1M count=500 conv=notrunc status=none ||
	fail "overwriting 500 MiB with a checkpoint active failed"
sleep 0.3
cap=$(ckpt_field "$M" big captured_bytes)
[ "$cap" -ge $((500 << 20)) ] || fail "captured only $cap bytes of 500 MiB"
max=$(cat "$WORK/rss.max")
spill=$(du -sb "$S" | cut -f1)
log "VmRSS before ${base} KiB, peak ${max} KiB; spilled $spill bytes"
bound=$((base + 64 * 1024 + 96 * 1024))
[ "$max" -le "$bound" ] ||
	fail "daemon VmRSS peaked at ${max} KiB capturing 500 MiB with store_mem=64M (bound ${bound} KiB)"
[ "$spill" -ge $((400 << 20)) ] || fail "only $spill bytes spilled with store_mem=64M"

view_mount "$M" big "$WORK/vb"
got=$(sha256sum <"$WORK/vb/big" | cut -d' ' -f1) || fail "reading the view failed"
assert_eq "T contents of the 500 MiB file read from the store" "$T_SHA" "$got"
# the file is released once read: its pre-images go
wait_until 10 eval '[ "$(find "$S" -name "seg-*" | wc -l)" -eq 0 ]' ||
	fail "pre-images still on disk after the view read the whole file: $(du -sb "$S" | cut -f1) bytes"
max=$(cat "$WORK/rss.max")
[ "$max" -le "$bound" ] || fail "daemon VmRSS peaked at ${max} KiB while the view read 500 MiB (bound ${bound} KiB)"
view_umount "$WORK/vb"
swafs_umount "$M"
log "ok"
