#!/bin/bash
# One instant for several trees (DESIGN.md 6): `swactl checkpoint M1 M2`
# drains and holds both, then commits both.  A writer bumps a counter in
# M1, then in M2; at any common instant the views hold a state the writer
# passed through: M1 == M2 or M1 == M2 + 1.  Checkpoints taken one after
# the other would show larger skew.  A tree that cannot be prepared makes
# the whole checkpoint fail with no checkpoint left anywhere.  --pre runs
# before the drain (a failing one aborts), --post after, also on failure.
. "$(dirname "$0")/ckpt-lib.sh"

for i in 1 2; do
	mkdir -p "$WORK/b$i" "$WORK/m$i" "$WORK/v$i"
	swafs_mount "$WORK/b$i" "$WORK/m$i" "store=$WORK,events=$WORK/ev$i"
	printf '%012d\n' 0 >"$WORK/m$i/c"
done
M1=$WORK/m1 M2=$WORK/m2

counter_writer "$WORK/writer.stop" "$M1/c" "$M2/c"
writer=$WRITER_PID
sleep 0.5

N=20
for k in $(seq $N); do
	out=$("$SWACTL" checkpoint "$M1" "$M2" --name c$k --keep) ||
		fail "common checkpoint c$k failed: $out"
	[ "$(printf '%s\n' "$out" | grep -c "taken on")" -eq 2 ] ||
		fail "common checkpoint c$k: expected one line per tree: $out"
	sleep 0.02
done
touch "$WORK/writer.stop"
wait "$writer" || fail "the counter writer failed"

for k in $(seq $N); do
	view_mount "$M1" c$k "$WORK/v1"
	view_mount "$M2" c$k "$WORK/v2"
	a=$((10#$(cat "$WORK/v1/c"))) b=$((10#$(cat "$WORK/v2/c")))
	view_umount "$WORK/v1"
	view_umount "$WORK/v2"
	[ "$a" -gt 0 ] || fail "c$k: the writer had not started"
	[ "$a" -eq "$b" ] || [ "$a" -eq $((b + 1)) ] ||
		fail "c$k: M1 shows $a, M2 shows $b: not one instant"
	log "c$k: M1 $a, M2 $b"
	# both trees were held at once: each was drained (requested) before
	# either reached its instant
	"$PYTHON" - "$WORK/ev1" "$WORK/ev2" c$k <<'EOF' || fail "c$k: the trees were not held at one time"
import json, sys
*files, name = sys.argv[1:]
req, reached = [], []
for path in files:
    for line in open(path):
        e = json.loads(line)
        if e.get('name') == name and e['event'] == 'requested':
            req.append(e['time'])
        if e.get('name') == name and e['event'] == 'reached':
            reached.append(e['time'])
assert len(req) == len(reached) == len(files), (req, reached)
if max(req) > min(reached):
    print('%s: a tree was requested at %s, after another reached its '
          'instant at %s' % (name, max(req), min(reached)))
    sys.exit(1)
EOF
	swactl release "$M1" c$k
	swactl release "$M2" c$k
done

# a tree that cannot be prepared: nothing anywhere, exit 1, one line per
# failing tree and one summary
rc=0
out=$("$SWACTL" checkpoint "$M1" "$WORK" --name bad 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "checkpoint with a non-swafs tree: exit $rc (expected 1): $out"
[ -z "$(ckpt_json "$M1" | "$PYTHON" -c 'import json,sys; print(*[c["name"] for c in json.load(sys.stdin)])')" ] ||
	fail "a checkpoint was left on M1 after the common checkpoint failed"
grep -q '"name":"bad"' "$WORK/ev1" &&
	fail "M1 was disturbed although another tree could not be reached"

# the same name already on one tree: the other keeps nothing either
swactl checkpoint "$M2" --name dup >/dev/null
rc=0
out=$("$SWACTL" checkpoint "$M1" "$M2" --name dup 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "duplicate name on one tree: exit $rc: $out"
ckpt_json "$M1" | grep -q '"name":"dup"' &&
	fail "M1 kept checkpoint dup although M2 refused it"
grep -q '"event":"failed","name":"dup"' "$WORK/ev1" ||
	fail "no failed event on M1 for the aborted checkpoint dup"
swactl release "$M2" dup

# a drain that times out on one tree: exit 3, and the other tree, already
# drained and held, keeps nothing either (a copy_file_range through M2 is
# one long modifying call)
dd if=/dev/zero of="$WORK/b2/src" bs=1M count=2048 status=none
timed_out=0
for try in 1 2 3; do
	copy_in_flight "$M2/src" "$M2/dst" "$WORK/b2/dst"
	cp_pid=$CP_PID
	rc=0
	out=$("$SWACTL" checkpoint "$M1" "$M2" --name drain --wait 0 2>&1) || rc=$?
	after=$(stat -c %s "$WORK/b2/dst")
	wait "$cp_pid" || fail "copy_file_range through M2 failed"
	if [ "$after" -lt $((2 << 30)) ]; then
		[ "$rc" -eq 3 ] || fail "common checkpoint with a call in flight on M2: exit $rc (expected 3): $out"
		timed_out=1
		break
	fi
	log "copy finished before the checkpoint (try $try)"
	swactl release "$M1" drain >/dev/null 2>&1 || true
	swactl release "$M2" drain >/dev/null 2>&1 || true
done
[ "$timed_out" = 1 ] || fail "could not hold a modifying call in flight on M2"
for m in "$M1" "$M2"; do
	ckpt_json "$m" | grep -q '"name":"drain"' &&
		fail "$m kept checkpoint drain after the common drain timed out"
done
grep -q '"event":"failed","name":"drain"' "$WORK/ev1" ||
	fail "M1 logged no failed event for the aborted checkpoint"
cmp "$WORK/b2/src" "$WORK/b2/dst" || fail "the copy in flight is wrong"
rm -f "$WORK/b2/src" "$WORK/b2/dst"

# --pre and --post
rc=0
out=$("$SWACTL" checkpoint "$M1" "$M2" --name hooks \
	--pre "echo pre >>'$WORK/order'; exit 7" \
	--post "echo post >>'$WORK/order'" 2>&1) || rc=$?
[ "$rc" -eq 1 ] || fail "failing --pre: exit $rc (expected 1): $out"
printf '%s\n' "$out" | grep -q "exited 7" || fail "the --pre exit status is not reported: $out"
[ "$(cat "$WORK/order")" = "pre
post" ] || fail "failing --pre: --post must still run: $(cat "$WORK/order")"
ckpt_json "$M1" | grep -q '"name":"hooks"' && fail "a failing --pre left a checkpoint"
rm -f "$WORK/order"
out=$("$SWACTL" checkpoint "$M1" "$M2" --name hooks \
	--pre "echo pre >>'$WORK/order'; echo 1 >'$M1/pre-mark'" \
	--post "echo post >>'$WORK/order'; echo 1 >'$M1/post-mark'") ||
	fail "checkpoint with hooks failed: $out"
[ "$(cat "$WORK/order")" = "pre
post" ] || fail "hooks ran in the wrong order: $(cat "$WORK/order")"
view_mount "$M1" hooks "$WORK/v1"
[ -e "$WORK/v1/pre-mark" ] || fail "the --pre command's change is not in the checkpoint"
[ ! -e "$WORK/v1/post-mark" ] || fail "the --post command's change is in the checkpoint"
view_umount "$WORK/v1"
swactl release "$M2" hooks
log ok
