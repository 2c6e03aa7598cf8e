#!/usr/bin/env bash
# The daemon is killed with SIGKILL while processes write through the
# mount: every write they logged as completed is in BACKING (writes are
# write-through), the writers get errors instead of hanging, the dead
# mountpoint can be recovered (fusermount3 -u, or umount -l while a process
# still holds a file open on it) and a new daemon mounts it again and serves
# the same data.
. "$(dirname "$0")/lib.sh"

B=$WORK/backing M=$WORK/mnt L=$WORK/logs
mkdir "$B" "$M" "$L"
H=$IT_DIR/helpers.py
logged() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
logged_at_least() { [ "$(logged "$1")" -ge "$2" ]; }

# kill_daemon_during_writes: start writers, SIGKILL the daemon, check
kill_daemon_during_writes() {
	local round=$1 dpid wp=() k
	swafs_mount "$B" "$M"
	dpid=$SWAFS_PID
	for k in 0 1 2; do
		sync=()
		[ $k != 2 ] || sync=(--sync)
		"$PYTHON" "$H" writer "$M/w$round-$k" "$L/w$round-$k" --tag "w$round-$k" \
			--block $((4096 * (k + 1) + k)) --count 0 "${sync[@]}" \
			2>>"$L/errors" &
		wp+=($!)
		track_pid $!
	done
	# a process holding a file open (and its cwd) on the mount
	rm -f "$L/holding"
	(cd "$M" && exec "$PYTHON" -c '
import os, sys, time
fd = os.open("held", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"held %s" % sys.argv[1].encode())
open(sys.argv[2], "w").close()
time.sleep(600)' "$round" "$L/holding") &
	holder=$!
	track_pid $holder
	wait_until 30 test -e "$L/holding" || fail "the holder did not open its file"
	for k in 0 1 2; do
		wait_until 30 logged_at_least "$L/w$round-$k" 30 ||
			fail "writer $k did not get going"
	done
	kill -KILL "$dpid"
	wait "$dpid" 2>/dev/null || true
	# the writers must fail (ENOTCONN/ECONNABORTED), not hang
	for k in 0 1 2; do
		wait_until 20 pid_gone "${wp[$k]}" ||
			fail "writer $k still running 20s after the daemon was killed"
		wait "${wp[$k]}" 2>/dev/null && fail "writer $k exited 0 after the daemon died"
	done
	for k in 0 1 2; do
		log "round $round writer $k: $(logged "$L/w$round-$k") completed writes logged"
		"$PYTHON" "$H" verify "$B/w$round-$k" --tag "w$round-$k" \
			--block $((4096 * (k + 1) + k)) --log "$L/w$round-$k" >/dev/null ||
			fail "BACKING lacks completed writes: $("$PYTHON" "$H" verify \
				"$B/w$round-$k" --tag "w$round-$k" --block $((4096 * (k + 1) + k)) \
				--log "$L/w$round-$k")"
	done
	assert_eq "held file in BACKING" "held $round" "$(cat "$B/held")"
	# the dead mount answers ENOTCONN
	stat "$M" >/dev/null 2>"$WORK/err" && fail "stat on the dead mount succeeded"
	grep -q "not connected" "$WORK/err" || fail "dead mount: $(cat "$WORK/err")"
}

recover() {
	if fusermount3 -u "$M" 2>"$WORK/err"; then
		log "fusermount3 -u recovered the dead mount"
	else
		log "fusermount3 -u: $(cat "$WORK/err"); using umount -l"
		umount -l "$M" || fail "umount -l of the dead mount failed"
	fi
	is_fuse_mount "$M" && fail "'$M' still mounted after recovery"
	return 0
}

# round 1: the holder keeps a file open: recover with umount -l if needed
kill_daemon_during_writes 1
recover
kill -KILL "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true

# round 2: nothing holds the mount any more: fusermount3 -u must work
kill_daemon_during_writes 2
kill -KILL "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
fusermount3 -u "$M" || fail "fusermount3 -u of a dead, unused mount failed"
is_fuse_mount "$M" && fail "'$M' still mounted"

# a new daemon serves the same data
swafs_mount "$B" "$M"
for f in "$B"/w*; do
	cmp "$f" "$M/${f##*/}" || fail "'${f##*/}' differs between mount and BACKING after remount"
done
echo after >"$M/after"
assert_eq "write after remount" after "$(cat "$B/after")"
swafs_umount "$M"
log ok
