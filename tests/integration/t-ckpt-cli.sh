#!/bin/bash
# swactl: exit codes and one-line messages for every error (duplicate name,
# bad names, unknown checkpoint, not a swafs mount, usage errors), the
# drain wait (--wait 0 while a copy_file_range is in flight: exit 3,
# nothing changes), release, list --json, --keep, release at the last
# view's unmount, several views of one checkpoint and several checkpoints
# at once, events.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt S=$WORK/store
mkdir -p "$B" "$M" "$S" "$WORK/v"
swafs_mount "$B" "$M" "events=$WORK/events,store=$S"
errs=

# expect WANT_RC CMD...: exit status WANT_RC; on failure exactly one line
expect() {
	local want=$1 rc=0 out n
	shift
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -ne "$want" ]; then
		errs="$errs
'$*': exit $rc, expected $want: $out"
		return 0
	fi
	if [ "$want" -ne 0 ]; then
		n=$(printf '%s\n' "$out" | grep -c .)
		[ "$n" -eq 1 ] || errs="$errs
'$*': $n lines of output for one failure (expected one):
$out"
	fi
}
list_names() { "$SWACTL" list "$M" --json | "$PYTHON" -c '
import json, sys
print(" ".join(sorted(c["name"] for c in json.load(sys.stdin))))'; }

echo one >"$M/f"
# ---- names and errors ----------------------------------------------------------
expect 0 "$SWACTL" checkpoint "$M" --name c1
expect 1 "$SWACTL" checkpoint "$M" --name c1
for bad in 'a/b' '' "$(printf 'x%.0s' {1..65})" 'sp ace' 'é' 'a*' 'semi;colon' $'new\nline'; do
	expect 2 "$SWACTL" checkpoint "$M" --name "$bad"
done
expect 0 "$SWACTL" checkpoint "$M" --name "$(printf 'y%.0s' {1..64})"
expect 0 "$SWACTL" checkpoint "$M" --name "A.b-c_9"
expect 1 "$SWACTL" mount "$M" nosuch "$WORK/v"
expect 1 "$SWACTL" release "$M" nosuch
is_fuse_mount "$WORK/v" && fail "a view was mounted for an unknown checkpoint"
# not a swafs live tree
mkdir -p "$WORK/plain"
expect 1 "$SWACTL" checkpoint "$WORK/plain" --name x
expect 1 "$SWACTL" list "$WORK/plain"
expect 1 "$SWACTL" release "$WORK/plain" c1
expect 1 "$SWACTL" checkpoint "$WORK/nonexistent" --name x
expect 1 "$SWACTL" checkpoint "$B" --name x
# usage errors
expect 2 "$SWACTL"
expect 2 "$SWACTL" bogus
expect 2 "$SWACTL" checkpoint
expect 2 "$SWACTL" checkpoint "$M"
expect 2 "$SWACTL" checkpoint "$M" --name
expect 2 "$SWACTL" checkpoint "$M" --name z --bogus
expect 2 "$SWACTL" checkpoint "$M" --name z --retain bogus
expect 2 "$SWACTL" checkpoint "$M" --name z --retain
expect 2 "$SWACTL" checkpoint "$M" --name z --wait abc
expect 2 "$SWACTL" checkpoint "$M" --name z --wait -1
expect 2 "$SWACTL" checkpoint "$M" --name z --wait 1x
expect 2 "$SWACTL" mount "$M" c1
expect 2 "$SWACTL" release "$M"
expect 2 "$SWACTL" list
expect 1 "$SWACTL" mount "$M" c1 "$WORK/nonexistent/dir"
assert_eq "checkpoints after the errors" "A.b-c_9 c1 $(printf 'y%.0s' {1..64})" "$(list_names)"
expect 0 "$SWACTL" checkpoint "$M" --name nm --wait nomax
expect 0 "$SWACTL" checkpoint "$M" --name w5 --wait 5
for c in A.b-c_9 nm w5 "$(printf 'y%.0s' {1..64})"; do expect 0 "$SWACTL" release "$M" "$c"; done
expect 1 "$SWACTL" release "$M" nm

# ---- the drain wait: a modifying call in flight ------------------------------------
dd if=/dev/zero of="$B/src" bs=1M count=2048 status=none
timed_out=0
for try in 1 2 3; do
	copy_in_flight "$M/src" "$M/dst" "$B/dst"
	cp_pid=$CP_PID
	rc=0
	out=$("$SWACTL" checkpoint "$M" --name drain --wait 0 2>&1) || rc=$?
	after=$(stat -c %s "$B/dst")
	wait "$cp_pid" || fail "copy_file_range through the live tree failed"
	if [ "$after" -lt $((2 << 30)) ]; then
		# the call was in flight for the whole command
		[ "$rc" -eq 3 ] || fail "checkpoint --wait 0 with a call in flight: exit $rc (expected 3): $out"
		n=$(printf '%s\n' "$out" | grep -c .)
		[ "$n" -eq 1 ] || fail "drain timeout printed $n lines: $out"
		timed_out=1
		break
	fi
	log "copy finished before the checkpoint command (try $try): $out"
	swactl release "$M" drain >/dev/null 2>&1 || true
done
[ "$timed_out" = 1 ] || fail "could not hold a modifying call in flight for the drain test"
case " $(list_names) " in *" drain "*) fail "a checkpoint whose drain timed out exists: $(list_names)" ;; esac
grep '"event":"failed"' "$WORK/events" | grep -q '"name":"drain"' ||
	fail "no failed event for the drain timeout"
cmp "$B/src" "$B/dst" || fail "the copy in flight during the failed checkpoint is wrong"
expect 0 "$SWACTL" checkpoint "$M" --name drain --wait 0
expect 0 "$SWACTL" release "$M" drain
rm -f "$B/src" "$B/dst"

# ---- list --json ----------------------------------------------------------------------
"$SWACTL" list "$M" --json | "$PYTHON" -c '
import json, sys
l = json.load(sys.stdin)
assert isinstance(l, list) and len(l) == 1, l
c = l[0]
for k in ("name", "t", "pause_us", "valid", "views", "retain", "keep"):
    assert k in c, "list --json lacks %s: %s" % (k, c)
assert c["name"] == "c1" and c["retain"] == "saved", c
assert c["valid"] is True and c["keep"] is False, c
' || fail "list --json: $("$SWACTL" list "$M" --json)"

# ---- --json on checkpoint and mount: one object, its T that of list ---------------------------
"$SWACTL" checkpoint "$M" --name j1 --json --pre true --post true >"$WORK/j1.json" ||
	fail "checkpoint --json failed"
"$SWACTL" list "$M" --json >"$WORK/list.json"
mkdir -p "$WORK/vj"
"$SWACTL" mount "$M" j1 "$WORK/vj" --json >"$WORK/vj.json" || fail "mount --json failed"
"$PYTHON" - "$WORK/j1.json" "$WORK/list.json" "$WORK/vj.json" "$M" "$WORK/vj" <<'EOF2' ||
import json, sys
j, l, v = (json.load(open(p)) for p in sys.argv[1:4])
mnt, view = sys.argv[4:6]
assert j["name"] == "j1" and len(j["trees"]) == 1, j
t = j["trees"][0]
assert t["mount"] == mnt and isinstance(t["pause_us"], int), j
c = [c for c in l if c["name"] == "j1"][0]
assert t["t_ns"] == c["t_ns"], (t, c)
assert v == {"name": "j1", "mount": mnt, "view": view}, v
EOF2
	fail "--json output: $(cat "$WORK/j1.json" "$WORK/vj.json")"
umount "$WORK/vj"
"$SWACTL" release "$M" j1 2>/dev/null || true

# ---- events: -n, --name, --since, --follow from the end -------------------------------------
ckpt_take "$M" ev1
ckpt_take "$M" ev2
"$SWACTL" events "$M" >"$WORK/ev.all"
assert_eq "events -n 1" "$(tail -1 "$WORK/ev.all")" "$("$SWACTL" events "$M" -n 1)"
assert_eq "events -n 0" "" "$("$SWACTL" events "$M" -n 0)"
[ "$("$SWACTL" events "$M" --name ev1 | wc -l)" -ge 2 ] ||
	fail "events --name ev1: $("$SWACTL" events "$M" --name ev1)"
"$SWACTL" events "$M" --name ev1 | grep -v '"name":"ev1"' &&
	fail "events --name ev1 printed another checkpoint's events"
assert_eq "events --since 1h" "$(cat "$WORK/ev.all")" "$("$SWACTL" events "$M" --since 1h)"
future=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M)
assert_eq "events --since an hour ahead" "" "$("$SWACTL" events "$M" --since "$future")"
assert_status "events --since garbage" 2 "$SWACTL" events "$M" --since yesterday
assert_status "events -n garbage" 2 "$SWACTL" events "$M" -n x
"$SWACTL" events "$M" --follow -n 0 --name ev3 >"$WORK/ev.follow" &
fpid=$!
ckpt_helper $fpid
sleep 0.5
ckpt_take "$M" ev3
wait_until 10 grep -q '"event":"reached","name":"ev3"' "$WORK/ev.follow" ||
	fail "events --follow -n 0 did not show ev3: $(cat "$WORK/ev.follow")"
grep -q '"name":"ev[12]"' "$WORK/ev.follow" && fail "--follow -n 0 replayed the past"
kill "$fpid"
swactl release "$M" ev1 && swactl release "$M" ev2 && swactl release "$M" ev3

# ---- --keep-for: kept past its views, released at its age with an event ----------------------
assert_status "--keep-for garbage" 2 "$SWACTL" checkpoint "$M" --name kf --keep-for soon
assert_status "--keep-for 0" 2 "$SWACTL" checkpoint "$M" --name kf --keep-for 0
assert_status "--keep-for 400d" 2 "$SWACTL" checkpoint "$M" --name kf --keep-for 400d
t0=$(now_ns)
ckpt_take "$M" kf --keep-for 3s
mkdir -p "$WORK/vkf"
view_mount "$M" kf "$WORK/vkf"
view_umount "$WORK/vkf"
list_names | grep -qw kf || fail "--keep-for did not keep kf after its view went"
wait_until 15 eval '! list_names | grep -qw kf' || fail "kf outlived its --keep-for 3s"
el=$(( ($(now_ns) - t0) / 1000000 ))
[ "$el" -ge 2900 ] || fail "kf released after $el ms, before its 3 s"
"$SWACTL" events "$M" --name kf | grep -q '"event":"keep-expired","name":"kf","keep_for_s":3.000' ||
	fail "no keep-expired event: $("$SWACTL" events "$M" --name kf)"

# ---- release, --keep, views ------------------------------------------------------------------
view_mount "$M" c1 "$WORK/v1"
assert_eq "view of c1" one "$(cat "$WORK/v1/f")"
expect 0 "$SWACTL" release "$M" c1
[ -z "$(list_names)" ] || fail "c1 still listed after release: $(list_names)"
rc=0
cat "$WORK/v1/f" >/dev/null 2>&1 && fail "the view of a released checkpoint still serves data"
view_umount "$WORK/v1"

echo two >"$M/f"
expect 0 "$SWACTL" checkpoint "$M" --name kept --keep
view_mount "$M" kept "$WORK/vk"
view_umount "$WORK/vk"
sleep 0.5
assert_eq "checkpoints after unmounting the view of a --keep checkpoint" kept "$(list_names)"
echo three >"$M/f"
view_mount "$M" kept "$WORK/vk"
assert_eq "view of kept, mounted again" two "$(cat "$WORK/vk/f")"
view_umount "$WORK/vk"
expect 0 "$SWACTL" release "$M" kept
[ -z "$(list_names)" ] || fail "kept still listed after release"

# several views of one checkpoint; several checkpoints at once. s3 is the
# default --retain saved: a file read fully through one view must still be
# served as at T by the other view of the same checkpoint (each view is its
# own mount with its own page cache). s4 is --retain all.
expect 0 "$SWACTL" checkpoint "$M" --name s3
echo four >"$M/f"
expect 0 "$SWACTL" checkpoint "$M" --name s4 --retain all
echo five >"$M/f"
view_mount "$M" s3 "$WORK/a1"
view_mount "$M" s3 "$WORK/a2"
view_mount "$M" s4 "$WORK/b1"
view_mount "$M" s4 "$WORK/b2"
assert_eq "s4 view 1" four "$(cat "$WORK/b1/f")"
echo six >"$M/f"
assert_eq "s4 view 2 (after view 1 read the file, then it changed)" four "$(cat "$WORK/b2/f")"
assert_eq "live" six "$(cat "$M/f")"
assert_eq "views of s3 in list --json" 2 "$(ckpt_field "$M" s3 views)"
assert_eq "s3 view 1" three "$(cat "$WORK/a1/f")"
echo seven >"$M/f"
got=$(cat "$WORK/a2/f" 2>&1) || true
[ "$got" = three ] || errs="$errs
s3 (--retain saved), second view: file read fully through the first view, then changed: got '$got', expected 'three'"
view_umount "$WORK/a1"
sleep 0.3
assert_eq "checkpoints with one of two views of s3 unmounted" "s3 s4" "$(list_names)"
view_umount "$WORK/a2"
wait_until 5 eval '[ "$(list_names)" = s4 ]' ||
	fail "s3 not released when its last view was unmounted: $(list_names)"
view_umount "$WORK/b1"
view_umount "$WORK/b2"
wait_until 5 eval '[ -z "$(list_names)" ]' ||
	fail "s4 not released when its last view was unmounted: $(list_names)"
grep -q '"event":"released","name":"s3"' "$WORK/events" || fail "no released event for s3"

# events: JSON Lines with the documented events
"$SWACTL" events "$M" | "$PYTHON" -c '
import json, sys
seen = set()
for line in sys.stdin:
    seen.add(json.loads(line)["event"])
need = {"requested", "reached", "failed", "view-mounted", "view-unmounted", "released"}
assert need <= seen, "events lack %s" % (need - seen)
' || fail "swactl events: $("$SWACTL" events "$M" | tail -3)"
swafs_umount "$M"
[ -z "$errs" ] || fail "swactl errors:$errs"
log "ok"
