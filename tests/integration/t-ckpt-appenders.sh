#!/bin/bash
# G1 at the instant: concurrent appenders write numbered fixed-size records
# (512, 1000, 4096 and 65536 bytes, one write() each) to their own files and
# log when each write() started and returned; five checkpoints are taken
# while they run, each timed around the swactl command. In every view, each
# file holds an intact prefix of its records that includes every record
# whose write() returned before the command started and none whose write()
# started after it returned.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt S=$WORK/store
mkdir -p "$B" "$M" "$S"
swafs_mount "$B" "$M" "events=$WORK/events,store=$S,store_mem=16M"
AP=$IT_DIR/ckpt_appender.py
SIZES=(512 1000 4096 65536 4096 512)
NCK=5

pids=()
for i in "${!SIZES[@]}"; do
	"$PYTHON" "$AP" append "$M/app$i" "$WORK/app$i.log" --id "$i" \
		--size "${SIZES[$i]}" --seconds 6 2>"$WORK/app$i.err" &
	pids+=($!)
	ckpt_helper $!
done
sleep 0.5
for ((c = 1; c <= NCK; c++)); do
	"$PYTHON" "$AP" checkpoint "$WORK/times" -- "$SWACTL" checkpoint "$M" --name "c$c" ||
		fail "checkpoint c$c failed"
	sleep 0.$((RANDOM % 9 + 1))
done
for p in "${pids[@]}"; do wait "$p" || fail "an appender failed: $(cat "$WORK"/app*.err)"; done

errs=
while read -r name start end rc; do
	view_mount "$M" "$name" "$WORK/v-$name"
	for i in "${!SIZES[@]}"; do
		out=$("$PYTHON" "$AP" verify "$WORK/v-$name/app$i" "$WORK/app$i.log" \
			--id "$i" --size "${SIZES[$i]}" --start "$start" --end "$end") ||
			errs="$errs
$name: $out"
	done
	log "$name: window $(((end - start) / 1000))us; $(echo "$out" | head -1)"
	view_umount "$WORK/v-$name"
done <"$WORK/times"
[ -z "$errs" ] || fail "records in the views:$errs"
swafs_umount "$M"
log "ok"
