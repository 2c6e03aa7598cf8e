#!/usr/bin/env bash
# Open files and the daemon's fd cap: a process may hold 15,000 files open
# through the mount at once, as it can in a plain directory (its own limit
# is 20,000), although the daemon is capped at 20,000 fds too and caches
# descriptors for looked-up objects (fd_cache): the cache must give way to
# open files. Every held fd must then read and write its own file.
. "$(dirname "$0")/lib.sh"

B=$WORK/backing M=$WORK/mnt P=$WORK/plain
mkdir "$B" "$M" "$P"
NOPEN=${NOPEN:-15000}

run() {
	"$PYTHON" - "$1" "$NOPEN" "${2:-0}" <<'PYEOF'
import os, sys
d, n, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# look up more objects than fd_cache holds first
for i in range(n + 5000):
    with open('%s/f%05d' % (d, i), 'wb') as f:
        f.write(b'%d' % i)
held = []
try:
    for i in range(n):
        held.append(os.open('%s/f%05d' % (d, i), os.O_RDWR))
except OSError as e:
    dfds = len(os.listdir('/proc/%d/fd' % pid)) if pid else -1
    print('MISMATCH: open #%d failed: %s (daemon holds %d fds)'
          % (len(held) + 1, e, dfds))
    sys.exit(1)
bad = 0
for i, fd in enumerate(held):
    if os.pread(fd, 10, 0) != b'%d' % i:
        bad += 1
    os.pwrite(fd, b'w%d' % i, 0)
for fd in held:
    os.close(fd)
for i in range(n):
    with open('%s/f%05d' % (d, i), 'rb') as f:
        if f.read() != b'w%d' % i:
            bad += 1
if bad:
    print('MISMATCH: %d files with wrong data' % bad)
    sys.exit(1)
PYEOF
}

run "$P" || fail "holding $NOPEN files open in a plain directory failed (test bug?)"
swafs_mount "$B" "$M"
run "$M" "$SWAFS_PID" || fail "holding $NOPEN files open through the mount failed"
pid_alive "$SWAFS_PID" || fail "daemon died"
swafs_umount "$M"
log ok
