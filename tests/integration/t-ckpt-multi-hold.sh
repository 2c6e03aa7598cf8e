#!/bin/bash
# A common checkpoint where one tree drains for longer than a daemon holds
# a prepared tree unattended (10 s): swactl keeps the trees that are ready
# held ("hold" every 2 s) until the slow one is ready too, and both commit.
#
# The slow drain is real: on M2 (on_full=throttle, a 1M+1M store, an older
# checkpoint nobody saves) a writer waits for store space inside its write
# until throttle_max (16 s) runs out, and a drain waits for that write.
. "$(dirname "$0")/ckpt-lib.sh"

for i in 1 2; do
	mkdir -p "$WORK/b$i" "$WORK/m$i"
done
swafs_mount "$WORK/b1" "$WORK/m1" "store=$WORK,events=$WORK/ev1"
swafs_mount "$WORK/b2" "$WORK/m2" "store=$WORK,events=$WORK/ev2,store_mem=1M,store_max=1M,on_full=throttle,throttle_max=16"
M1=$WORK/m1 M2=$WORK/m2

head -c $((8 << 20)) /dev/urandom >"$M2/f"
echo one >"$M1/g"
swactl checkpoint "$M2" --name old --keep >/dev/null || fail "checkpoint old failed"

# overwrite f: its pre-images (incompressible) outgrow the store at once
"$PYTHON" - "$M2/f" "$WORK/writer.done" <<'EOF' &
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
for off in range(0, 8 << 20, 64 << 10):
    os.pwrite(fd, b'x' * (64 << 10), off)
open(sys.argv[2], 'w').close()
EOF
writer=$!
ckpt_helper "$writer"
wait_until 10 eval 'events_of "$M2" | grep -q "\"event\":\"store-warn\""' ||
	fail "the writer never filled the store"
sleep 1
[ -e "$WORK/writer.done" ] && fail "the writer was not throttled"

start=$(now_ns)
rc=0
out=$("$SWACTL" checkpoint "$M1" "$M2" --name both --wait 60 2>&1) || rc=$?
secs=$(( ($(now_ns) - start) / 1000000000 ))
[ "$rc" -eq 0 ] || fail "common checkpoint with a slow drain on M2: exit $rc after $secs s: $out"
[ "$secs" -ge 10 ] ||
	fail "M2 drained in $secs s: too fast to show that M1 was held past 10 s"
log "common checkpoint after $secs s: $out"
for m in "$M1" "$M2"; do
	ckpt_json "$m" | grep -q '"name":"both"' || fail "$m has no checkpoint both"
done
events_of "$M2" | grep -q '"event":"store-full".*"policy":"throttle"' ||
	fail "no store-full event for the throttled checkpoint old"
wait "$writer" || fail "the writer failed"
[ -e "$WORK/writer.done" ] || fail "the writer did not finish"
swactl release "$M1" both
swactl release "$M2" both
swactl release "$M2" old 2>/dev/null || true
