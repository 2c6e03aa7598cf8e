#!/bin/bash
# Shared paths (issue 17 item 6): the history, its lock and the events file
# may lie in a directory every user writes (store=/tmp is the default of a
# non-root daemon).  Another user (1) holding flock -x on that directory
# delays nothing; (2) a history file or (3) an events path that another
# user planted there (their own file, a FIFO with or without a reader) fails
# the mount at once with one line naming the file, and nothing is mounted.
. "$(dirname "$0")/sec-lib.sh"

B=$WORK/backing M=$WORK/mnt SH=$WORK/shared
mkdir -p "$B" "$M" "$SH"
chmod 1777 "$SH"
echo data >"$B/f"

# refused WHAT PATTERN OPTS: the mount fails within 20s with one line
# matching PATTERN, and nothing stays mounted
refused() {
	local rc=0
	timeout -k 5 20 "$SWAFS" "$B" "$M" -f -o "$3" >"$WORK/out" 2>"$WORK/err" || rc=$?
	[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "$1: the daemon hung"
	[ "$rc" -ne 0 ] || fail "$1: the mount did not fail"
	[ "$(awk 'END { print NR }' "$WORK/err")" -eq 1 ] ||
		fail "$1: not one line: $(cat "$WORK/err")"
	grep -q -- "$2" "$WORK/err" || fail "$1: unexpected message: $(cat "$WORK/err")"
	is_fuse_mount "$M" && fail "$1: left a mount"
	return 0
}

# ---- 1. flock -x on the shared store directory delays nothing --------------------
# one process holds the lock (flock(1) would leave its child behind)
as_bg "$TU1_UID" sh -c 'exec 9<"$1" && flock -x 9 && exec sleep 600' sh "$SH"
wait_until 10 grep -q "FLOCK.*WRITE" /proc/locks || fail "no flock taken"
swafs_mount "$B" "$M" "store=$SH"
echo more >>"$M/f"
timeout 20 "$SWACTL" checkpoint "$M" --name h1 >/dev/null || fail "checkpoint under a foreign flock"
timeout 20 "$SWACTL" release "$M" h1 >/dev/null || fail "release under a foreign flock"
timeout 20 "$SWACTL" history "$M" | grep -q h1 || fail "no history record under a foreign flock"
swafs_umount "$M"
hist=$(cd "$SH" && ls swafs-history.*.jsonl) || fail "no history file in $SH"
for f in "$SH"/swafs-history.*; do
	assert_eq "owner and mode of $f" "0 600" "$(stat -c '%u %a' "$f")"
done

# ---- 2. a history or lock file planted by another user ---------------------------
rm -f "$SH"/swafs-history.*
as "$TU1_UID" sh -c "echo '{}' >'$SH/$hist'"
refused "history file of uid $TU1_UID" "history.*not a regular file owned" "store=$SH"
rm -f "$SH/$hist"
as "$TU2_UID" mkfifo -m 666 "$SH/$hist"
refused "history FIFO of uid $TU2_UID" "history.*not a regular file owned" "store=$SH"
rm -f "$SH"/swafs-history.*
as "$NOBODY_UID" mkfifo -m 666 "$SH/${hist%.jsonl}.lock"
refused "lock FIFO of uid $NOBODY_UID" "history.*not a regular file owned" "store=$SH"
rm -f "$SH/${hist%.jsonl}.lock"

# ---- 3. an events path planted by another user -----------------------------------
EV=$SH/events
as "$TU1_UID" mkfifo -m 666 "$EV"
refused "events FIFO, no reader" "events file '$EV'.*not a regular file" "store=$WORK,events=$EV"
as_bg "$TU1_UID" sh -c "exec cat '$EV' >'$SH/leaked'"
refused "events FIFO with a reader" "events file '$EV'.*not a regular file" "store=$WORK,events=$EV"
[ ! -s "$SH/leaked" ] || fail "events leaked to uid $TU1_UID: $(head -c 200 "$SH/leaked")"
rm -f "$EV"
as "$TU2_UID" touch "$EV"
refused "events file of uid $TU2_UID" "events file '$EV'.*not a regular file owned" "store=$WORK,events=$EV"
rm -f "$EV"
# a symlink in a directory of nobody's (a sticky one refuses it earlier)
mkdir "$WORK/nd"
chown "$NOBODY_UID" "$WORK/nd"
as "$NOBODY_UID" ln -s "$WORK/victim" "$WORK/nd/events"
refused "events symlink" "events file '$WORK/nd/events'.*symlink" "store=$WORK,events=$WORK/nd/events"
[ ! -e "$WORK/victim" ] || fail "the daemon followed the events symlink"

# and an events file of our own in the shared directory works
swafs_mount "$B" "$M" "store=$SH,events=$EV"
swactl checkpoint "$M" --name e1 >/dev/null || fail "checkpoint e1"
grep -q '"event":"reached"' "$EV" || fail "no events in $EV"
swactl release "$M" e1 >/dev/null
swafs_umount "$M"
log ok
