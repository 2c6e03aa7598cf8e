#!/bin/bash
# Races: view readers against live writers on the same blocks. The view
# must always return T data.
#   A (--retain all, ~12 s): 4 files of 16 MiB; writer threads overwrite
#     random blocks, two lockstep writers race on every not-yet-captured
#     block of f0 from the first instant; meanwhile dd readers copy whole
#     files of the view again and again (O_DIRECT and through the page
#     cache) and random-block readers (O_DIRECT) compare every block with
#     its T hash.
#   B (--retain saved, the default): a new checkpoint of 8 files of 8 MiB;
#     each file is read once by its own dd (in parallel, O_DIRECT, in 256 KiB
#     or in 20 KiB requests that straddle blocks) while the
#     writers keep overwriting all of them; every copy must be T.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt S=$WORK/store V=$WORK/view H=$WORK/hashes
mkdir -p "$B" "$M" "$S" "$H"
swafs_mount "$B" "$M" "events=$WORK/events,store=$S,store_mem=32M"
RC=$IT_DIR/ckpt_race.py
BC=$IT_DIR/ckpt_blockcheck.py

for i in 0 1 2 3; do dd if=/dev/urandom of="$M/f$i" bs=1M count=16 status=none; done
for i in 0 1 2 3; do
	"$PYTHON" "$BC" hash "$M/f$i" "$H/f$i.json"
	sha256sum <"$M/f$i" | cut -d' ' -f1 >"$H/f$i.sha"
done
ckpt_take "$M" racy --retain all
view_mount "$M" racy "$V"

# ---- A ------------------------------------------------------------------------
start=$(($(date +%s) + 1))
wp=()
for k in 0 1; do
	"$PYTHON" "$RC" write "$M" 4 --seconds 12 --start "$start" --threads 1 --lockstep 0 --seed "$k" 2>>"$WORK/w.err" &
	wp+=($!); ckpt_helper $!
done
for k in 2 3 4; do
	"$PYTHON" "$RC" write "$M" 4 --seconds 12 --start "$start" --threads 2 --seed "$k" 2>>"$WORK/w.err" &
	wp+=($!); ckpt_helper $!
done
rp=()
for k in 0 1; do
	"$PYTHON" "$RC" read "$V" "$H" 4 --seconds 12 --seed "$k" --direct >"$WORK/r$k.out" 2>&1 &
	rp+=($!); ckpt_helper $!
done
# dd readers: whole files, again and again, until the writers stop
for i in 0 1 2 3; do
	(
		n=0
		while [ "$(date +%s)" -lt $((start + 12)) ]; do
			if [ $((n % 2)) -eq 0 ]; then fl=iflag=direct; else fl=iflag=fullblock; fi
			got=$(dd if="$V/f$i" bs=1M "$fl" status=none | sha256sum | cut -d' ' -f1)
			[ "$got" = "$(cat "$H/f$i.sha")" ] || echo "dd ($fl) copy $n of f$i is not T: $got"
			n=$((n + 1))
		done
		echo "f$i: $n dd copies"
	) >"$WORK/dd$i.out" 2>&1 &
	rp+=($!); ckpt_helper $!
done
for p in "${wp[@]}"; do wait "$p" || fail "a writer failed: $(cat "$WORK/w.err")"; done
for p in "${rp[@]}"; do wait "$p" || true; done
errs=$(grep -h -e ERROR -e 'is not T' -e 'error' "$WORK"/r?.out "$WORK"/dd?.out | head -20)
log "A: $(cat "$WORK"/r?.out "$WORK"/dd?.out | grep -v ERROR | tr '\n' ';')"
[ -z "$errs" ] || fail "phase A (retain all): view reads that were not T data:
$errs"
view_umount "$V"
swactl release "$M" racy >/dev/null 2>&1 || true

# ---- B ------------------------------------------------------------------------
for i in 4 5 6 7; do dd if=/dev/urandom of="$M/f$i" bs=1M count=8 status=none; done
for i in 0 1 2 3; do truncate -s 8M "$M/f$i"; done
for i in $(seq 0 7); do sha256sum <"$M/f$i" | cut -d' ' -f1 >"$H/f$i.sha"; done
ckpt_take "$M" once
view_mount "$M" once "$WORK/view2"
start=$(($(date +%s) + 1))
wp=()
for k in 0 1; do
	"$PYTHON" "$RC" write "$M" 8 --seconds 8 --start "$start" --threads 1 --lockstep $((k * 3)) --seed "$k" 2>>"$WORK/w.err" &
	wp+=($!); ckpt_helper $!
	"$PYTHON" "$RC" write "$M" 8 --seconds 8 --start "$start" --threads 1 --lockstep $((k * 3)) --seed "$((k + 10))" 2>>"$WORK/w.err" &
	wp+=($!); ckpt_helper $!
done
"$PYTHON" "$RC" write "$M" 8 --seconds 8 --start "$start" --threads 3 --seed 5 2>>"$WORK/w.err" &
wp+=($!); ckpt_helper $!
sleep 1.2
rp=()
for i in $(seq 0 7); do
	# odd files in 20 KiB requests: not aligned to the 64 KiB blocks
	bs=256K; [ $((i % 2)) -eq 1 ] && bs=20K
	( got=$(dd if="$WORK/view2/f$i" bs=$bs iflag=direct 2>"$WORK/dd2-$i.err" | sha256sum | cut -d' ' -f1)
	  [ "$got" = "$(cat "$H/f$i.sha")" ] || echo "f$i: single O_DIRECT copy is not T: $got $(cat "$WORK/dd2-$i.err")" ) >"$WORK/once$i.out" &
	rp+=($!); ckpt_helper $!
done
for p in "${rp[@]}"; do wait "$p" || true; done
for p in "${wp[@]}"; do wait "$p" || fail "a writer failed: $(cat "$WORK/w.err")"; done
errs=$(cat "$WORK"/once?.out)
[ -z "$errs" ] || fail "phase B (retain saved, one read per file):
$errs"
view_umount "$WORK/view2"
swafs_umount "$M"
log "ok"
