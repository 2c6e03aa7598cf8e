#!/bin/bash
# Boundary wait across two trees (DESIGN.md 6): `swactl checkpoint M1 M2
# --boundary-wait` waits for the boundary on every tree before draining
# any.  A transaction held open on M1 for longer than the daemons' 10 s
# step time: M2, bounded at once, keeps waiting for "drain" instead of
# aborting; after the release both views show one common instant of a
# writer that bumps a counter in M1, then in M2.  A holder that outlasts
# the limit on M1: exit 3 and no checkpoint on either tree.
. "$(dirname "$0")/ckpt-lib.sh"

TXN_PY=$IT_DIR/txn_hold.py
for i in 1 2; do
	mkdir -p "$WORK/b$i" "$WORK/m$i" "$WORK/v$i"
	swafs_mount "$WORK/b$i" "$WORK/m$i" "store=$WORK,events=$WORK/ev$i,boundary_report=1"
	printf '%012d\n' 0 >"$WORK/m$i/c"
done
M1=$WORK/m1 M2=$WORK/m2

counter_writer "$WORK/writer.stop" "$M1/c" "$M2/c"
writer=$WRITER_PID

"$PYTHON" "$TXN_PY" hold "$M1" "$WORK/h.ready" "$WORK/h.go" >"$WORK/h.out" &
holder=$!
ckpt_helper "$holder"
wait_until 10 test -e "$WORK/h.ready" || fail "the holder did not get the lock"
"$SWACTL" checkpoint "$M1" "$M2" --name c1 --boundary-wait 60 >"$WORK/c1.out" 2>"$WORK/c1.err" &
ckpt_pid=$!
sleep 11
pid_alive "$ckpt_pid" || fail "the checkpoint did not wait for M1's transaction: $(cat "$WORK/c1.out" "$WORK/c1.err")"
grep -q "$M1: checkpoint c1 waits for 1 open transaction(s).*pid $holder (uid 0)" "$WORK/c1.err" ||
	fail "no progress line for M1: $(cat "$WORK/c1.err")"
touch "$WORK/h.go"
wait "$holder" || fail "the holder failed"
rc=0
wait "$ckpt_pid" || rc=$?
[ "$rc" -eq 0 ] || fail "common checkpoint after an 11 s boundary wait: exit $rc: $(cat "$WORK/c1.err")"
view_mount "$M1" c1 "$WORK/v1"
view_mount "$M2" c1 "$WORK/v2"
a=$((10#$(cat "$WORK/v1/c"))) b=$((10#$(cat "$WORK/v2/c")))
[ "$a" -gt 0 ] || fail "the writer had not started"
[ "$a" -eq "$b" ] || [ "$a" -eq $((b + 1)) ] || fail "M1 shows $a, M2 shows $b: not one instant"
log "c1: M1 $a, M2 $b"
view_umount "$WORK/v1"
view_umount "$WORK/v2"

# a holder on M1 outlasts the limit: exit 3, nothing on either tree
rm -f "$WORK/h.ready" "$WORK/h.go"
"$PYTHON" "$TXN_PY" hold "$M1" "$WORK/h.ready" "$WORK/h.go" >/dev/null &
holder=$!
ckpt_helper "$holder"
wait_until 10 test -e "$WORK/h.ready" || fail "the holder did not get the lock"
rc=0
out=$("$SWACTL" checkpoint "$M1" "$M2" --name c2 --boundary-wait 1.5 2>&1) || rc=$?
[ "$rc" -eq 3 ] || fail "holder outlasting the limit on M1: exit $rc (expected 3): $out"
printf '%s\n' "$out" | grep -q "pid $holder (uid 0)" || fail "the holder is not named: $out"
for m in "$M1" "$M2"; do
	[ "$(ckpt_field "$m" c2 name)" = absent ] || fail "$m kept checkpoint c2"
done
touch "$WORK/h.go" "$WORK/writer.stop"
wait "$holder" || fail "the holder failed"
wait "$writer" || fail "the writer failed"
log ok
