#!/bin/bash
# A daemon told to stop while a client holds its tree prepared (drained,
# writers held, "hold" sent every second as swactl does for a sync group)
# lets go at once: SIGTERM ends it within seconds and the held writer's
# call returns (done, or refused as the daemon goes).  An unmount cannot
# stop it: the held writer keeps the mount busy, and a lazy unmount keeps
# the connection up until its files close.
. "$(dirname "$0")/ckpt-lib.sh"

# holder MNT READY: speak the control protocol: prepare, drain, then "hold"
# every second forever; touch READY once the tree is held
holder() {
	exec "$PYTHON" - "$1" "$2" <<'EOF'
import os, socket, sys, time
mnt, ready = sys.argv[1:]
st = os.stat(mnt)
path = '/run/swafs/%d:%d.sock' % (os.major(st.st_dev), os.minor(st.st_dev))
s = socket.socket(socket.AF_UNIX)
s.connect(path)
f = s.makefile('r')
s.sendall(b'prepare held saved 0 5000 off\n')
assert f.readline().strip() == 'bounded'
s.sendall(b'drain\n')
assert f.readline().strip() == 'ready'
open(ready, 'w').close()
while True:
    try:
        s.sendall(b'hold\n')
    except OSError:
        sys.exit(0)
    time.sleep(1)
EOF
}

# stop_held HOW: mount, hold the tree, start a writer (held in the drain),
# then send the daemon SIGTERM
stop_held() {
	local how=term hp wp pid t0 el rc
	mkdir -p "$WORK/b-$how" "$WORK/m-$how"
	swafs_mount "$WORK/b-$how" "$WORK/m-$how" "store=$WORK"
	pid=$SWAFS_PID
	M=$WORK/m-$how
	echo 0 >"$M/f"
	holder "$M" "$WORK/ready-$how" &
	hp=$!
	ckpt_helper "$hp"
	wait_until 10 test -e "$WORK/ready-$how" || fail "$how: the tree was not held"
	# a write now waits in the drain
	sh -c "echo 1 >'$M/f'" 2>/dev/null &
	wp=$!
	ckpt_helper "$wp"
	sleep 0.5
	pid_alive "$wp" || fail "$how: a write got through a held tree"
	t0=$(now_ns)
	kill -TERM "$pid"
	wait_until 10 pid_gone "$pid" ||
		fail "$how: the daemon still runs 10 s after being told to stop, its tree held"
	el=$(( ($(now_ns) - t0) / 1000000 ))
	log "$how: the daemon ended ${el} ms after being told to stop"
	wait_until 5 pid_gone "$wp" || fail "$how: the held writer is still waiting"
	# it returned: done if it says so, else refused (the daemon went)
	rc=0
	wait "$wp" || rc=$?
	[ "$rc" -ne 0 ] || assert_eq "$how: the held write" 1 "$(cat "$WORK/b-$how/f")"
	log "$how: the held writer returned $rc"
	is_fuse_mount "$M" && fusermount3 -u -z "$M"
	stop_helper "$hp"
}

stop_held
log ok
