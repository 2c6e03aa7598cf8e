#!/usr/bin/env bash
# -o metrics=FILE: a valid Prometheus textfile (HELP and TYPE for every
# metric, one description each) replaced whole every metrics_interval; it
# follows a save (a checkpoint appears with its captures, then the last
# save's outcome and duration once it is released), is never seen half
# written, is removed when the tree stops; bad metrics= paths are refused
# before the mount in one line.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/data M=$WORK/mnt V=$WORK/view S=$WORK/store P=$WORK/prom
mkdir -p "$B" "$M" "$S" "$P" "$WORK/adir"
F=$P/swafs.prom
prom() { "$PYTHON" "$IT_DIR/prom_check.py" "$F" "$@"; }

# refused before the mount, one line each
for bad in "$WORK/nodir/swafs.prom" "$WORK/adir" "$WORK/"; do
	rc=0
	"$SWAFS" "$B" "$M" -f -o "metrics=$bad" >"$WORK/out" 2>"$WORK/err" || rc=$?
	[ "$rc" -eq 1 ] || fail "metrics=$bad: exit $rc, expected 1"
	[ "$(wc -l <"$WORK/err")" -eq 1 ] || fail "metrics=$bad: not one line: $(cat "$WORK/err")"
	grep -q "invalid option 'metrics=" "$WORK/err" || fail "metrics=$bad: $(cat "$WORK/err")"
	! is_fuse_mount "$M" || fail "metrics=$bad mounted"
done
ln -s /etc/passwd "$P/link.prom"
rc=0
"$SWAFS" "$B" "$M" -f -o "metrics=$P/link.prom" 2>"$WORK/err" || rc=$?
[ "$rc" -eq 1 ] || fail "a symlink as metrics file was accepted"
rm "$P/link.prom"

swafs_mount "$B" "$M" "store=$S,store_mem=1M,metrics=$F,metrics_interval=0.2"
wait_until 10 test -s "$F" || fail "no metrics file after the mount"
prom >/dev/null || fail "the metrics file does not parse: $(cat "$F")"
assert_eq "swafs_up" 1 "$(prom swafs_up mount="$M")"
assert_eq "active checkpoints" 0 "$(prom swafs_checkpoints_active)"
[ "$(prom swafs_store_max_bytes)" -gt 0 ] || fail "no store limit exported"

# a reader that checks every version it sees while the file is rewritten
"$PYTHON" - "$F" "$WORK/torn" <<'PY' &
import os, subprocess, sys, time
f, out = sys.argv[1], sys.argv[2]
end = time.time() + 4
bad = 0
while time.time() < end:
    try:
        txt = open(f).read()
    except FileNotFoundError:
        continue
    if not txt.endswith("\n") or "swafs_up" not in txt:
        bad += 1
open(out, "w").write(str(bad))
PY
track_pid $!
RPID=$!

head -c $((4 << 20)) /dev/urandom >"$M/f"
sync
ckpt_take "$M" night
view_mount "$M" night "$V"
head -c $((1 << 20)) /dev/urandom | dd of="$M/f" conv=notrunc status=none
wait_until 10 eval '[ "$(prom swafs_checkpoint_captured_bytes name=night)" -ge 1048576 ] 2>/dev/null' ||
	fail "the captures are not exported: $(grep night "$F")"
assert_eq "active checkpoints" 1 "$(prom swafs_checkpoints_active)"
assert_eq "views of night" 1 "$(prom swafs_checkpoint_views name=night)"
assert_eq "night valid" 1 "$(prom swafs_checkpoint_valid name=night)"
cat "$V/f" >/dev/null
view_umount "$V"
wait_until 10 eval '[ "$(prom swafs_last_save_success 2>/dev/null)" = 1 ]' ||
	fail "the released save is not exported: $(cat "$F")"
assert_eq "active checkpoints after the save" 0 "$(prom swafs_checkpoints_active)"
prom swafs_checkpoint_valid name=night >/dev/null && fail "a released checkpoint is still exported"
awk -v d="$(prom swafs_last_save_duration_seconds)" 'BEGIN { exit !(d > 0 && d < 60) }' ||
	fail "last save duration: $(prom swafs_last_save_duration_seconds)"
wait "$RPID"
assert_eq "torn reads of the metrics file" 0 "$(cat "$WORK/torn")"
prom >/dev/null || fail "the metrics file does not parse after the save"

swafs_umount "$M"
[ ! -e "$F" ] || fail "the metrics file outlived the tree"
[ -z "$(ls -A "$P")" ] || fail "temporary files left: $(ls -A "$P")"

# relative metrics= and store= from a daemon that went to the background
# (its working directory becomes /): both land where they were asked for
mkdir -p "$WORK/rel/st" "$WORK/rel/prom"
(cd "$WORK/rel" && "$SWAFS" "$B" "$M" -o store=st,store_mem=1M,metrics=prom/x.prom,metrics_interval=0.2) ||
	fail "a background mount with relative paths failed"
wait_until 10 test -s "$WORK/rel/prom/x.prom" ||
	fail "the metrics file is not under the directory asked for: $(ls -la "$WORK/rel/prom")"
head -c 4M /dev/urandom >"$M/g"
"$SWACTL" checkpoint "$M" --name rel >/dev/null
head -c 4M /dev/urandom | dd of="$M/g" conv=notrunc status=none
wait_until 10 eval '[ -n "$(find "$WORK/rel/st" -name "seg-*")" ]' ||
	fail "the store did not spill under the directory asked for: $(find "$WORK/rel/st" /swafs-store* 2>/dev/null | head)"
fusermount3 -u "$M"
wait_until 10 no_daemon_for "$B" || fail "the background daemon did not stop"
log ok
