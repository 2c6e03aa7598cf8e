#!/bin/bash
# Boundary wait (DESIGN.md 6, step 1): applications hold a shared flock on
# MNT/.swafs/txn while a transaction is open; `swactl checkpoint
# --boundary-wait SECS` waits until none is held and keeps new requests
# waiting meanwhile.  A holder that outlasts the limit: exit 3 within the
# limit plus a margin, stderr names its pid and uid, no checkpoint,
# the waiting request is granted right after, writers go on.  A holder
# that finishes mid-wait: the checkpoint follows at once and holds the
# whole transaction.  The control file is the daemon's alone, and flock on
# ordinary live files still works (blocking, LOCK_NB, interrupted).
. "$(dirname "$0")/ckpt-lib.sh"

TXN_PY=$IT_DIR/txn_hold.py
B=$WORK/b M=$WORK/m V=$WORK/v
mkdir -p "$B" "$M"
swafs_mount "$B" "$M" "store=$WORK,events=$WORK/ev,boundary_report=1"

# ---- the control file ---------------------------------------------------
[ "$(stat -c '%F %a %s' "$M/.swafs/txn")" = "regular empty file 444 0" ] ||
	fail "txn: $(stat -c '%F %a %s' "$M/.swafs/txn")"
[ ! -e "$B/.swafs" ] || fail "the control directory reached BACKING"
ls -a "$M" | grep -qx .swafs && fail "ls -a MNT lists .swafs"
( echo x >"$M/.swafs/txn" ) 2>/dev/null && fail "txn is writable"
rm -f "$M/.swafs/txn" 2>/dev/null && fail "txn could be removed"
rmdir "$M/.swafs" 2>/dev/null && fail ".swafs could be removed"
mv "$M/.swafs" "$M/other" 2>/dev/null && fail ".swafs could be renamed"
mkdir "$M/.swafs/d" 2>/dev/null && fail "mkdir inside .swafs worked"
touch "$M/f0"
mv "$M/f0" "$M/.swafs" 2>/dev/null && fail "a file was moved into .swafs"
ln "$M/f0" "$M/.swafs/l" 2>/dev/null && fail "a link was made inside .swafs"
[ ! -e "$B/.swafs" ] || fail "BACKING/.swafs appeared"
flock -x -n "$M/.swafs/txn" true 2>/dev/null && fail "LOCK_EX on txn was granted"
flock -s -n "$M/.swafs/txn" true || fail "LOCK_SH on txn refused with the gate open"

# ---- a holder outlasts the limit ------------------------------------------
printf '%012d\n' 0 >"$M/counter"
"$PYTHON" - "$M/counter" "$WORK/writer.stop" <<'EOF' &
import os, sys, time
path, stop = sys.argv[1:]
fd = os.open(path, os.O_WRONLY)
i = 0
while not os.path.exists(stop):
    i += 1
    os.pwrite(fd, b'%012d\n' % i, 0)
    time.sleep(0.01)
EOF
writer=$!
ckpt_helper "$writer"
"$PYTHON" "$TXN_PY" hold "$M" "$WORK/h1.ready" "$WORK/h1.go" >"$WORK/h1.out" &
holder=$!
ckpt_helper "$holder"
wait_until 10 test -e "$WORK/h1.ready" || fail "the holder did not get the lock"

t0=$(now_ns)
"$SWACTL" checkpoint "$M" --name t1 --boundary-wait 2 >"$WORK/t1.out" 2>"$WORK/t1.err" &
ckpt_pid=$!
sleep 0.5
# a new transaction asked for during the wait waits; LOCK_NB is refused
"$PYTHON" "$TXN_PY" request "$M" --nonblock >"$WORK/nb.out" 2>&1 &&
	fail "LOCK_SH|LOCK_NB granted during the boundary wait"
grep -qx EAGAIN "$WORK/nb.out" || fail "LOCK_NB during the wait: $(cat "$WORK/nb.out")"
"$PYTHON" "$TXN_PY" request "$M" >"$WORK/req.out" &
req=$!
ckpt_helper "$req"
sleep 0.3
pid_alive "$req" || fail "a new transaction was granted during the boundary wait"
# swactl status shows the checkpoint being taken and who delays it
st=$("$SWACTL" status "$M") || fail "status during the boundary wait failed"
printf '%s\n' "$st" | grep -q "^t1: being taken, boundary-wait for .*1 open transaction(s): pid $holder (uid 0)" ||
	fail "status does not show the boundary wait: $st"
"$SWACTL" status "$M" t1 --json | "$PYTHON" -c '
import json, sys
r = json.load(sys.stdin)
assert len(r) == 1 and r[0]["state"] == "boundary-wait" and r[0]["open"] == 1, r
assert r[0]["holders"].startswith(sys.argv[1] + ":0"), r' "$holder" ||
	fail "status --json does not show the boundary wait"
rc=0
wait "$ckpt_pid" || rc=$?
t1=$(now_ns)
el_ms=$(( (t1 - t0) / 1000000 ))
[ "$rc" -eq 3 ] || fail "holder outlasting --boundary-wait 2: exit $rc (expected 3): $(cat "$WORK/t1.err")"
[ "$el_ms" -ge 1900 ] && [ "$el_ms" -lt 4500 ] ||
	fail "--boundary-wait 2 returned after $el_ms ms"
log "boundary wait of 2 s ran out after $el_ms ms"
grep -q "pid $holder (uid 0)" "$WORK/t1.err" ||
	fail "stderr does not name the holder pid $holder: $(cat "$WORK/t1.err")"
[ "$(grep -c "still open" "$WORK/t1.err")" -eq 1 ] ||
	fail "no one-line reason: $(cat "$WORK/t1.err")"
grep -q "waits for 1 open transaction(s)" "$WORK/t1.err" ||
	fail "no progress line (boundary_report=1): $(cat "$WORK/t1.err")"
[ "$(ckpt_field "$M" t1 name)" = absent ] || fail "checkpoint t1 exists after the boundary timeout"
wait "$req" || fail "the request made during the wait failed: $(cat "$WORK/req.out")"
read -r rq gr <"$WORK/req.out"
[ $(( (gr - rq) / 1000000 )) -ge 700 ] || fail "the request was not held ($(( (gr - rq) / 1000000 )) ms)"
[ "$gr" -ge $(( t1 - 1000000000 )) ] && [ "$gr" -le $(( t1 + 1000000000 )) ] ||
	fail "the held request was not granted right after the failure ($(( (gr - t1) / 1000000 )) ms)"
grep -q '"event":"failed","name":"t1","reason":"boundary' "$WORK/ev" ||
	fail "no failed event with reason boundary"
c1=$((10#$(cat "$M/counter")))
sleep 0.3
[ $((10#$(cat "$M/counter"))) -gt "$c1" ] || fail "the writer did not resume"
touch "$WORK/h1.go"
wait "$holder" || fail "the holder failed"

# ---- the holder finishes mid-wait: the whole transaction is in the view -----
rm -f "$WORK/h1.ready" "$WORK/h1.go"
"$PYTHON" "$TXN_PY" hold "$M" "$WORK/h1.ready" "$WORK/h1.go" \
	--file "$M/value" --first "part1-" --second "part2" >"$WORK/h2.out" &
holder=$!
ckpt_helper "$holder"
wait_until 10 test -e "$WORK/h1.ready" || fail "the holder did not get the lock"
"$SWACTL" checkpoint "$M" --name t2 --boundary-wait 30 >"$WORK/t2.out" 2>"$WORK/t2.err" &
ckpt_pid=$!
# the gate is closed once the checkpoint shows in its boundary wait
wait_until 10 eval '"$SWACTL" status "$M" | grep -q "^t2: being taken, boundary-wait"' ||
	fail "t2 never showed its boundary wait: $(cat "$WORK/t2.err")"
# an interrupted request returns at once (parked, it is answered EINTR),
# not when the gate opens
(
	ti=$(now_ns)
	timeout -s INT 0.5 flock -s "$M/.swafs/txn" true && echo granted
	echo $(( ($(now_ns) - ti) / 1000000 ))
) >"$WORK/intr.out" 2>&1 &
sleep 1.5
pid_alive "$ckpt_pid" || fail "the checkpoint did not wait for the open transaction: $(cat "$WORK/t2.err")"
[ -s "$WORK/intr.out" ] || fail "an interrupted txn request did not return"
grep -q granted "$WORK/intr.out" && fail "flock -s on txn was granted during the wait"
[ "$(tail -n1 "$WORK/intr.out")" -lt 1400 ] || fail "an interrupted txn request took $(tail -n1 "$WORK/intr.out") ms"
touch "$WORK/h1.go"
wait "$holder" || fail "the holder failed"
read -r before released <"$WORK/h2.out"
rc=0
wait "$ckpt_pid" || rc=$?
[ "$rc" -eq 0 ] || fail "checkpoint after the holder released: exit $rc: $(cat "$WORK/t2.err")"
t_ns=$(ckpt_field "$M" t2 t_ns)
[ "$t_ns" -ge "$before" ] || fail "T is before the transaction ended"
[ $(( (t_ns - released) / 1000000 )) -lt 1000 ] ||
	fail "the checkpoint came $(( (t_ns - released) / 1000000 )) ms after the release"
view_mount "$M" t2 "$V"
[ "$(cat "$V/value")" = "part1-part2" ] || fail "the view holds '$(cat "$V/value")', not the whole transaction"
ls -a "$V" | grep -qx .swafs && fail "the view lists .swafs"
view_umount "$V"
"$PYTHON" - "$WORK/ev" t2 "$holder" <<'EOF' || fail "no boundary-wait event naming the holder"
import json, sys
path, name, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
for line in open(path):
    e = json.loads(line)
    if e['event'] == 'boundary-wait' and e['name'] == name and \
            {'pid': pid, 'uid': 0} in e['holders']:
        sys.exit(0)
sys.exit(1)
EOF

# ---- nomax ------------------------------------------------------------------
rm -f "$WORK/h1.ready" "$WORK/h1.go"
"$PYTHON" "$TXN_PY" hold "$M" "$WORK/h1.ready" "$WORK/h1.go" >/dev/null &
holder=$!
ckpt_helper "$holder"
wait_until 10 test -e "$WORK/h1.ready" || fail "the holder did not get the lock"
( sleep 1; touch "$WORK/h1.go" ) &
ckpt_take "$M" t3 --boundary-wait nomax
wait "$holder" || fail "the holder failed"
touch "$WORK/writer.stop"
wait "$writer" || fail "the writer failed"
assert_status "--boundary-wait with garbage" 2 "$SWACTL" checkpoint "$M" --name t4 --boundary-wait 2x

# ---- flock on ordinary live files --------------------------------------------
echo data >"$M/lockme"
flock -x "$M/lockme" sleep 4 &
a=$!
ckpt_helper "$a"
sleep 0.3
flock -x -n "$M/lockme" true && fail "LOCK_NB on a locked live file was granted"
flock -x -n "$B/lockme" true && fail "the lock is not on the backing file"
flock -s -n "$M/lockme" true && fail "LOCK_SH|LOCK_NB granted against LOCK_EX"
ti=$(now_ns)
timeout -s INT 0.5 flock -x "$M/lockme" true && fail "an interrupted waiter got the lock"
[ $(( ($(now_ns) - ti) / 1000000 )) -lt 1400 ] || fail "an interrupted flock did not return at once"
ti=$(now_ns)
flock -x "$M/lockme" true || fail "a blocking flock failed"
w_ms=$(( ($(now_ns) - ti) / 1000000 ))
pid_gone "$a" || fail "a blocking flock was granted while the holder ran"
[ "$w_ms" -ge 500 ] || fail "a blocking flock did not wait ($w_ms ms)"
wait "$a" || true
flock -s "$M/lockme" flock -s -n "$M/lockme" true || fail "two shared locks conflict"
log ok
