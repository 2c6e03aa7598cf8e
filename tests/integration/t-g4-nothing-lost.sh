#!/bin/bash
# G4 nothing lost: with a checkpoint active (and its view being read),
# every write that returned is in BACKING after unmount; after kill -9 of the
# daemon in the middle of writes, BACKING holds every completed write; the
# store never appears in the live tree, the view or BACKING; a store inside
# BACKING or inside the mountpoint is refused (or at least never shows up in
# them); a stale store of the killed daemon is removed at the next mount.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt S=$WORK/store
mkdir -p "$B/new" "$M" "$S"
CW=$IT_DIR/ckpt_writer.py
NW=4

# no_store_in WHAT DIR: no store directory or segment file below DIR
no_store_in() {
	local found
	found=$(find "$2" \( -name 'swafs-store*' -o -name 'seg-[0-9]*' \) 2>&1 | head -3)
	[ -z "$found" ] || fail "the store appears in $1: $found"
}

start_writers() {	# SECONDS TAG
	local i
	WPIDS=()
	for ((i = 0; i < NW; i++)); do
		"$PYTHON" "$CW" write "$M/w$i" "$WORK/$2.w$i.log" --tag "$2$i" \
			--seed "$i" --seconds "$1" --new-files "$M/new" \
			2>>"$WORK/writers.err" &
		WPIDS+=($!)
		ckpt_helper $!
	done
}
verify_writers() {	# TAG WHAT
	local i out
	for ((i = 0; i < NW; i++)); do
		out=$("$PYTHON" "$CW" verify "$B/w$i" "$WORK/$1.w$i.log" --tag "$1$i" \
			--new-files "$B/new") || fail "$2: writes lost: $out"
		log "$2: $out"
	done
}

# ---- 1. clean run: checkpoint active, view read while writers write --------
swafs_mount "$B" "$M" "events=$WORK/events,store=$S,store_mem=1M"
for ((i = 0; i < NW; i++)); do head -c 16M /dev/urandom >"$M/w$i"; done
ckpt_take "$M" c1
view_mount "$M" c1 "$WORK/v1"
start_writers 6 a
sleep 1
find "$S" -name 'seg-*' | grep -q . || fail "nothing spilled to the store (test setup)"
no_store_in "the live tree" "$M"
no_store_in "the view" "$WORK/v1"
no_store_in "BACKING" "$B"
tar -cf - -C "$WORK/v1" . | wc -c >/dev/null || fail "reading the view failed"
for p in "${WPIDS[@]}"; do wait "$p" || fail "a writer failed: $(cat "$WORK/writers.err")"; done
view_umount "$WORK/v1"
swafs_umount "$M"
verify_writers a "after unmount"
no_store_in "BACKING" "$B"

# ---- 2. kill -9 of the daemon in the middle of writes ------------------------
swafs_mount "$B" "$M" "events=$WORK/events2,store=$S,store_mem=1M"
DPID=$SWAFS_PID
ckpt_take "$M" c2
view_mount "$M" c2 "$WORK/v2"
start_writers 30 b
sleep 2
stale=$(find "$S" -maxdepth 1 -name "swafs-store.$DPID.*")
[ -n "$stale" ] || fail "no store directory of daemon $DPID under $S"
kill -KILL "$DPID"
for p in "${WPIDS[@]}"; do wait "$p" 2>/dev/null || true; done
umount -l "$WORK/v2" 2>/dev/null || true
umount -l "$M" 2>/dev/null || fusermount3 -u -z "$M" 2>/dev/null || true
is_fuse_mount "$M" && fail "could not unmount the dead mount"
verify_writers b "after kill -9"

# the next mount removes the stale store of the killed daemon
swafs_mount "$B" "$M" "events=$WORK/events3,store=$S"
[ ! -e "$stale" ] || fail "stale store $stale of the killed daemon was not removed at mount"
grep -q '"event":"store-cleaned"' "$WORK/events3" ||
	log "note: no store-cleaned event at the next mount"
no_store_in "the live tree" "$M"
swafs_umount "$M"

# ---- 3. a store inside BACKING, or inside the mountpoint ----------------------
rc=0
out=$(timeout -s KILL 10 "$SWAFS" "$B" "$M" -f -o "store=$B/st" 2>&1) || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 137 ] || {
	is_fuse_mount "$M" && umount -l "$M"
	fail "a store inside BACKING was accepted (exit $rc): $out"
}
is_fuse_mount "$M" && fail "mounted with a store inside BACKING"
[ ! -e "$B/st" ] || no_store_in "BACKING (store=BACKING/st refused)" "$B"

mkdir -p "$M/st"	# in the directory under the mountpoint
"$SWAFS" "$B" "$M" -f -o "store=$M/st,store_mem=1M" >"$WORK/daemon-st.log" 2>&1 &
DPID=$!
ckpt_helper "$DPID"
end=$(($(date +%s) + 10))
while pid_alive "$DPID" && ! is_fuse_mount "$M" && [ "$(date +%s)" -lt "$end" ]; do sleep 0.05; done
if is_fuse_mount "$M"; then
	if ! timeout -s KILL 5 stat "$M/." >/dev/null 2>&1; then
		kill -KILL "$DPID" 2>/dev/null
		wait "$DPID" 2>/dev/null || true
		umount -l "$M" 2>/dev/null || true
		fail "with store=MNT/st (MNT != BACKING) the mount hangs: stat MNT blocks; daemon log: $(head -c 300 "$WORK/daemon-st.log")"
	fi
	head -c 4M /dev/urandom >"$M/x" || fail "write with store under the mountpoint"
	"$SWACTL" checkpoint "$M" --name st >/dev/null || fail "checkpoint with store under the mountpoint"
	head -c 4M /dev/urandom >"$M/x"
	no_store_in "the live tree (store=MNT/st)" "$M"
	no_store_in "BACKING (store=MNT/st)" "$B"
	"$SWACTL" release "$M" st >/dev/null
	umount "$M" || umount -l "$M"
	wait "$DPID" || fail "daemon with store=MNT/st exited with an error"
else
	wait "$DPID" && fail "daemon with store=MNT/st exited 0 without mounting"
	log "store=MNT/st refused: $(head -c 200 "$WORK/daemon-st.log")"
fi
log "ok"
