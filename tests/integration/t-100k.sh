#!/usr/bin/env bash
# 100,000 files held in the kernel's cache at once (long entry timeout, all
# looked up), with 2,000 of them open for the whole run, while the daemon
# may keep at most 20,000 fds (the hard process cap here): create every file,
# stat every one, read and rewrite every one, check BACKING, write through
# the held fds, drop the kernel's caches (forgets), read every one again.
# Then the same with fd_cache=16 on 3,000 files, where the daemon must keep
# at most about 16 cached O_PATH descriptors.
. "$(dirname "$0")/lib.sh"

B=$WORK/backing M=$WORK/mnt
mkdir "$B" "$M"
N=${N_FILES:-100000}

hard=$(ulimit -Hn)
[ "$hard" -le 20000 ] || log "note: hard fd limit here is $hard, not 20000"

swafs_mount "$B" "$M" timeout=3600
lim=$(awk '/Max open files/ { print $5 }' "/proc/$SWAFS_PID/limits")
log "daemon pid $SWAFS_PID, hard open-file limit $lim"
"$PYTHON" "$IT_DIR/helpers.py" many "$M" "$B" "$N" --pid "$SWAFS_PID" \
	--hold 2000 --fd-limit 20000 --drop-caches ||
	fail "the $N-file run failed"
pid_alive "$SWAFS_PID" || fail "daemon died"
swafs_umount "$M"
rm -rf "$B" && mkdir "$B"

# the cache bound
swafs_mount "$B" "$M" timeout=3600,fd_cache=16
"$PYTHON" "$IT_DIR/helpers.py" many "$M" "$B" 3000 --pid "$SWAFS_PID" ||
	fail "the fd_cache=16 run failed"
n=$(opath_fds "$SWAFS_PID")
log "fd_cache=16: daemon holds $n O_PATH fds"
[ "$n" -le 20 ] || fail "fd_cache=16 but the daemon holds $n O_PATH fds"
swafs_umount "$M"
log ok
