#!/bin/bash
# Store policies (DESIGN.md 8) with a store far smaller than the overwrites
# that follow a checkpoint; a writer overwrites random blocks of a file:
#  a. on_full=throttle with a saver reading the view: some writes wait for
#     the save to free space, none fails; the view reads exactly the T
#     bytes; the live file holds exactly the writes; a store-warn event, no
#     store-full; the checkpoint stays valid.
#  b. on_full=throttle, nobody saving, throttle_max=2: one write stalls
#     about 2 s, then the checkpoint is invalidated and later writes are
#     fast; a store-full event says throttle -> invalidate; the store's
#     files are gone while the view is still mounted; the view fails with
#     EIO (never other bytes) and the daemon says so on stderr.
#  c. on_full=invalidate: as b, with no stall at all.
# (on_full=fail-writes: t-store-fail-writes.sh.)
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt V=$WORK/view S=$WORK/store EV=$WORK/events
SP=$IT_DIR/store_policy.py
mkdir -p "$B" "$M" "$S"

# start NAME MIB OPTS: mount, write a MIB MiB file, checkpoint NAME, view
start() {
	: >"$EV"
	rm -f "$WORK/go"
	swafs_mount "$B" "$M" "store=$S,store_mem=1M,block_size=64K,events=$EV,$3"
	DLOG=$WORK/daemon.$_NMOUNT.log
	head -c $(($2 << 20)) /dev/urandom >"$WORK/orig"
	cp "$WORK/orig" "$M/f"
	sync
	ckpt_take "$M" "$1"
	view_mount "$M" "$1" "$V"
}

finish() {
	cmp "$M/f" "$WORK/expect" || fail "$1: the live file is not exactly what the writer wrote"
	view_umount "$V"
	swafs_umount "$M"
	cmp "$B/f" "$WORK/expect" || fail "$1: BACKING is not exactly what the writer wrote"
}

event() { grep "\"event\":\"$1\"" "$EV"; }

# ---- a. throttle, a saver reads the view ------------------------------------
start thr 48 "store_max=4M,on_full=throttle,throttle_max=30"
"$PYTHON" "$SP" write "$M/f" "$WORK/orig" "$WORK/expect" "$WORK/stats" \
	--until "$WORK/go" 2>"$WORK/writer.err" &
WPID=$!
ckpt_helper $WPID
wait_until 20 event store-warn >/dev/null ||
	fail "a: no store-warn event while the store filled: $(cat "$EV")"
out=$("$PYTHON" "$SP" save "$V/f" "$WORK/orig" --rate $((8 << 20))) ||
	fail "a: the saver failed: $out"
touch "$WORK/go"
rc=0
wait $WPID || rc=$?
[ "$rc" -eq 0 ] || fail "a: a live write failed under on_full=throttle: $(cat "$WORK/writer.err")"
assert_eq "a: view chunks read right / EIO" "chunks 48 0" "$out"
slow=$(awk '$2 >= 0.1' "$WORK/stats" | wc -l)
log "a: $(wc -l <"$WORK/stats") writes, $slow waited >= 0.1 s, longest $(sort -k2 -n "$WORK/stats" | tail -1 | cut -d' ' -f2) s"
[ "$slow" -ge 1 ] || fail "a: no write waited although the store was full"
event store-warn | grep -q '"name":"thr","used_bytes":[0-9]*,"max_bytes":4194304' ||
	fail "a: store-warn event lacks its fields: $(event store-warn)"
! event store-full >/dev/null || fail "a: store-full although the saver freed space: $(event store-full)"
assert_eq "a: checkpoint valid" 1 "$(ckpt_field "$M" thr valid)"
"$SWACTL" status "$M" thr | grep -q "policy    on_full=throttle, store .* of 4.0 MiB, 0 writer(s) waiting now, [1-9][0-9]* waits" ||
	fail "a: status does not show the throttle: $("$SWACTL" status "$M" thr)"
finish a

# ---- b/c. nobody saves: throttle runs out, or invalidate at once ------------
# full NAME POLICY OPTS
full() {
	local name=$1 policy=$2 stalls max spid rc=0 out
	start "$name" 32 "store_max=2M,on_full=$policy,$3"
	rm -f "$WORK/opened"
	"$PYTHON" "$SP" save "$V/f" "$WORK/orig" --rate 1e9 --after "$WORK/go" \
		--opened "$WORK/opened" >"$WORK/saver.out" 2>&1 &
	spid=$!
	ckpt_helper $spid
	# opened while valid: the reads, not the open, must meet the EIO
	wait_until 10 test -e "$WORK/opened" || fail "$name: the saver did not open the view"
	"$PYTHON" "$SP" write "$M/f" "$WORK/orig" "$WORK/expect" "$WORK/stats" \
		--count 300 || fail "$name: a live write failed under on_full=$policy"
	stalls=$(awk '$2 >= 1.0' "$WORK/stats" | wc -l)
	max=$(sort -k2 -n "$WORK/stats" | tail -1 | cut -d' ' -f2)
	log "$name: $stalls writes stalled >= 1 s, longest $max s"
	if [ "$policy" = throttle ]; then
		[ "$stalls" -eq 1 ] || fail "$name: $stalls writes stalled >= 1 s, want exactly one"
		awk -v m="$max" 'BEGIN { exit !(m >= 1.8 && m < 12) }' ||
			fail "$name: the stall lasted $max s, want about throttle_max=2"
		# once invalidated, writes cost nothing
		awk 'f { s += $2 } $2 >= 1.0 { f = 1 } END { exit !(s < 2.0) }' \
			"$WORK/stats" || fail "$name: writes after the stall were slow"
		event store-full | grep -q '"name":"b","policy":"throttle","action":"invalidate","waited_ms":[0-9]' ||
			fail "$name: no store-full event saying throttle -> invalidate: $(cat "$EV")"
	else
		[ "$stalls" -eq 0 ] || fail "$name: $stalls writes stalled under on_full=invalidate"
		event store-full | grep -q "\"name\":\"c\",\"policy\":\"invalidate\"" ||
			fail "$name: no store-full event for the invalidate policy: $(cat "$EV")"
	fi
	event store-warn | grep -q "\"name\":\"$name\"" || fail "$name: no store-warn event"
	assert_eq "$name: checkpoint valid" 0 "$(ckpt_field "$M" "$name" valid)"
	# status says what happened
	"$SWACTL" status "$M" "$name" --json | "$PYTHON" -c '
import json, sys
r = json.load(sys.stdin)[0]
assert r["state"] == "invalid" and r["reason"] == "invalidated: store full", r
assert r["on_full"] == sys.argv[1], r
assert sys.argv[1] != "throttle" or r["throttle_waits"] >= 1, r' "$policy" ||
		fail "$name: status does not say the store invalidated it"
	"$SWACTL" status "$M" "$name" | grep -q "^$name: invalid (invalidated: store full)" ||
		fail "$name: status does not say why: $("$SWACTL" status "$M" "$name")"
	# invalidated: its pre-images go now, not when the view goes
	wait_until 5 eval '[ -z "$(find "$S" -name "seg-*")" ]' ||
		fail "$name: store files remain after invalidation: $(find "$S" -name 'seg-*')"
	touch "$WORK/go"
	wait $spid || rc=$?
	[ "$rc" -eq 0 ] || fail "$name: the view gave bytes other than T's: $(cat "$WORK/saver.out")"
	assert_eq "$name: view chunks read right / EIO" "chunks 0 32" "$(cat "$WORK/saver.out")"
	grep -q "view '$V' of checkpoint '$name': .*/f (inode [0-9]*): fails with EIO: checkpoint invalidated: store full" "$DLOG" ||
		fail "$name: the daemon did not say why the view read failed: $(cat "$DLOG")"
	finish "$name"
}
full b throttle throttle_max=2
full c invalidate ""
log ok
