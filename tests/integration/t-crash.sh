#!/bin/bash
# Crash and restart, full disks, a failing store:
#  (a) SIGKILL of the daemon during heavy writes (4 writers, no fsync, each
#      logging a write only after write() returned) with a checkpoint
#      active and its view mounted: the live tree and the view give
#      ENOTCONN (never data); BACKING holds every logged write and nothing
#      of swafs; the next mount with the same store says in one line that
#      it removed the stale store, and no stale segment is left;
#  (b) BACKING full (a 16 MiB tmpfs): the writer gets ENOSPC, other files
#      still read and write, a checkpoint taken before stays valid and its
#      view reads T;
#  (c) the store directory fails (a 4 MiB tmpfs, store_max far above it):
#      the checkpoint is invalidated (failed event, view EIO), live writes
#      go on and are intact.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt S=$WORK/store
mkdir -p "$B/new" "$M" "$S"
CW=$IT_DIR/ckpt_writer.py
NW=4
# tmpfs mounts live outside $WORK and go at exit, after the FUSE mounts
# were detached (umount -l: a daemon may still hold files on them)
TMPFS=()
trap 'rc=$?; set +e; for t in "${TMPFS[@]}"; do umount -l "$t"; rmdir "$t"; done
	_ckpt_ret $rc; _ckpt_cleanup' EXIT
small_tmpfs() {	# SIZE: mount a tmpfs of SIZE on a new directory $TMPFS_DIR
	TMPFS_DIR=$(mktemp -d /tmp/swafs-crash-tmpfs.XXXXXX)
	TMPFS+=("$TMPFS_DIR")
	mount -t tmpfs -o "size=$1,mode=755" tmpfs "$TMPFS_DIR" ||
		fail "cannot mount a tmpfs"
}
# expect_err WHAT WANT CMD...: CMD fails and says WANT
expect_err() {
	local what=$1 want=$2 out
	shift 2
	out=$("$@" 2>&1) && fail "$what: succeeded: $(printf '%s' "$out" | head -c 200)"
	[[ $out == *"$want"* ]] || fail "$what: expected '$want': $(printf '%s' "$out" | head -c 300)"
}

# ---- (a) SIGKILL during heavy writes ---------------------------------------------
swafs_mount "$B" "$M" "events=$WORK/events,store=$S,store_mem=1M"
DPID=$SWAFS_PID
for ((i = 0; i < NW; i++)); do head -c 8M /dev/urandom >"$M/w$i"; done
echo base >"$M/base"
ckpt_take "$M" c1
view_mount "$M" c1 "$WORK/v1"
WPIDS=()
for ((i = 0; i < NW; i++)); do
	"$PYTHON" "$CW" write "$M/w$i" "$WORK/w$i.log" --tag "k$i" --seed "$i" \
		--seconds 60 --new-files "$M/new" 2>>"$WORK/writers.err" &
	WPIDS+=($!)
	ckpt_helper $!
done
wait_until 30 eval '[ "$(find "$S" -name "seg-*" | wc -l)" -gt 0 ]' ||
	fail "nothing spilled to the store before the kill"
for ((i = 0; i < NW; i++)); do
	wait_until 30 eval "[ \$(wc -l <'$WORK/w$i.log' 2>/dev/null || echo 0) -ge 50 ]" ||
		fail "writer $i did not get going"
done
stale=$(find "$S" -maxdepth 1 -name "swafs-store.$DPID.*")
[ -n "$stale" ] || fail "no store directory of daemon $DPID in $S"
kill -KILL "$DPID"
for p in "${WPIDS[@]}"; do
	wait_until 20 pid_gone "$p" || fail "writer $p still running 20 s after the kill"
	wait "$p" 2>/dev/null || true
done
expect_err "stat of the dead live tree" "not connected" stat "$M/base"
expect_err "cat of the dead live tree" "not connected" cat "$M/base"
expect_err "stat of the dead view" "not connected" stat "$WORK/v1/base"
expect_err "cat of the dead view" "not connected" cat "$WORK/v1/base"
expect_err "dd from the dead view" "not connected" dd if="$WORK/v1/w0" of=/dev/null bs=1M
fusermount3 -u -z "$WORK/v1" || fail "cannot detach the dead view"
fusermount3 -u -z "$M" || fail "cannot detach the dead live tree"
for ((i = 0; i < NW; i++)); do
	out=$("$PYTHON" "$CW" verify "$B/w$i" "$WORK/w$i.log" --tag "k$i" \
		--new-files "$B/new") || fail "BACKING lacks completed writes: $out"
	log "after SIGKILL: $out"
done
odd=$(cd "$B" && find . -mindepth 1 | grep -Ev '^\./(w[0-9]|base|new|new/k[0-9]-[0-9]+)$' | head -5)
[ -z "$odd" ] || fail "BACKING holds files nobody wrote: $odd"
# the next mount removes the stale store and says so
swafs_mount "$B" "$M" "events=$WORK/events2,store=$S"
dlog=$WORK/daemon.$_NMOUNT.log
msg=$(grep -c "removed 1 stale store(s) left in '$S'" "$dlog") ||
	fail "the mount did not say it removed the stale store: $(cat "$dlog")"
assert_eq "lines about the stale store" 1 "$msg"
[ ! -e "$stale" ] || fail "stale store $stale still there"
left=$(find "$S" -name 'seg-*' | head -3)
[ -z "$left" ] || fail "stale segments left: $left"
grep -q '"event":"store-cleaned","stale":1' "$WORK/events2" ||
	fail "no store-cleaned event: $(cat "$WORK/events2")"
for ((i = 0; i < NW; i++)); do cmp "$B/w$i" "$M/w$i" || fail "w$i differs after remount"; done
swafs_umount "$M"

# ---- (b) BACKING full -------------------------------------------------------------
small_tmpfs 16m
SB=$TMPFS_DIR
M2=$WORK/m2
mkdir -p "$M2"
head -c 4M /dev/urandom >"$WORK/keep.T"
cp "$WORK/keep.T" "$SB/keep"
swafs_mount "$SB" "$M2" "events=$WORK/events-b,store=$S"
ckpt_take "$M2" before
view_mount "$M2" before "$WORK/vb"
head -c 1M /dev/urandom >"$WORK/patch"
expect_err "writing past a full BACKING" "No space left on device" \
	dd if=/dev/zero of="$M2/fill" bs=1M count=64 status=none
cmp "$WORK/keep.T" "$M2/keep" || fail "a file changed when BACKING filled up"
dd if="$WORK/patch" of="$M2/keep" bs=1M seek=1 conv=notrunc,fsync status=none ||
	fail "overwriting a file in place on a full BACKING failed"
rm "$M2/fill"
# the daemon closes fill when the kernel's asynchronous RELEASE arrives
wait_until 10 eval '[ "$(df --output=avail -k "$SB" | tail -1)" -gt 1024 ]' ||
	fail "space not freed after rm: $(df -k "$SB" | tail -1)"
echo more >"$M2/after" || fail "a write after freeing space failed"
assert_eq "file written after the disk was full" more "$(cat "$SB/after")"
assert_eq "checkpoint valid after ENOSPC" 1 "$(ckpt_field "$M2" before valid)"
cmp "$WORK/keep.T" "$WORK/vb/keep" || fail "the view does not read T after ENOSPC"
view_umount "$WORK/vb"
swafs_umount "$M2"

# ---- (c) the store directory fails ----------------------------------------------------
small_tmpfs 4m
SS=$TMPFS_DIR
M3=$WORK/m3
mkdir -p "$M3"
swafs_mount "$B" "$M3" "events=$WORK/events-c,store=$SS,store_mem=1M,store_max=1G"
head -c 16M /dev/urandom >"$M3/big"
ckpt_take "$M3" doomed
view_mount "$M3" doomed "$WORK/vc"
head -c 16M /dev/urandom >"$WORK/big.new"
dd if="$WORK/big.new" of="$M3/big" bs=64K conv=notrunc status=none ||
	fail "a live write failed when the store directory filled up"
cmp "$WORK/big.new" "$M3/big" || fail "live data wrong after the store failed"
cmp "$WORK/big.new" "$B/big" || fail "BACKING data wrong after the store failed"
echo after >>"$M3/big" || fail "append after the store failed"
assert_eq "checkpoint valid after its store failed" 0 "$(ckpt_field "$M3" doomed valid)"
grep '"event":"failed"' "$WORK/events-c" | grep -q '"name":"doomed"' ||
	fail "no failed event: $(cat "$WORK/events-c")"
expect_err "reading the view of the failed checkpoint" "Input/output error" \
	dd if="$WORK/vc/big" of=/dev/null bs=1M
view_umount "$WORK/vc"
swafs_umount "$M3"
log ok
