#!/bin/bash
# G7 fast to take: the pause of a checkpoint (pause_us, reported by swactl
# and the reached event) and the time of the whole command do not grow with
# the size of the tree: 1,000 files vs 100,000 files (all of them looked up
# through the mount first, so the daemon knows every inode), a light writer
# running in each. Median of 5 each: the big tree's may be at most 5x the
# small one's + 2 ms (pause) or + 20 ms (command). Taking a checkpoint
# copies nothing: right after it, nothing is captured.
. "$(dirname "$0")/ckpt-lib.sh"

mktree() {	# DIR N: N small files in N/1000 directories
	"$PYTHON" - "$1" "$2" <<'EOF'
import os, sys
top, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(top, 'd%03d' % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(d)
    with open(os.path.join(d, 'f%06d' % i), 'wb') as f:
        f.write(b'file %d\n' % i)
EOF
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# measure NAME N: mount a tree of N files, look them all up, take 5
# checkpoints; sets PAUSE_MED (us) and WALL_MED (us)
measure() {
	local name=$1 n=$2 b=$WORK/$1.backing m=$WORK/$1.mnt i t0 t1 wp seen
	mkdir -p "$b" "$m" "$WORK/store"
	mktree "$b" "$n"
	swafs_mount "$b" "$m" "events=$WORK/$name.events,store=$WORK/store,timeout=3600"
	seen=$(find "$m" -type f -printf '%s\n' | wc -l)
	assert_eq "files seen through the mount ($name)" "$n" "$seen"
	(while :; do printf 'x%.0s' {1..100} | dd of="$m/d000/f000000" bs=100 seek=$((RANDOM % 100)) conv=notrunc status=none; sleep 0.001; done) &
	wp=$!
	ckpt_helper "$wp"
	: >"$WORK/$name.pause"
	: >"$WORK/$name.wall"
	for i in 1 2 3 4 5; do
		t0=$(now_ns)
		ckpt_take "$m" "p$i"
		t1=$(now_ns)
		echo "$CKPT_PAUSE_US" >>"$WORK/$name.pause"
		echo $(((t1 - t0) / 1000)) >>"$WORK/$name.wall"
		objs=$(ckpt_field "$m" "p$i" objects)
		[ "$objs" -le 10 ] || fail "$name: $objs objects in checkpoint p$i right after it was taken (a walk?)"
		swactl release "$m" "p$i" >/dev/null || fail "release p$i"
		sleep 0.2
	done
	stop_helper "$wp"
	grep -q '"event":"reached","name":"p5","pause_us":' "$WORK/$name.events" ||
		fail "no reached event with pause_us for p5"
	PAUSE_MED=$(median <"$WORK/$name.pause")
	WALL_MED=$(median <"$WORK/$name.wall")
	log "$name ($n files): pause_us $(tr '\n' ' ' <"$WORK/$name.pause")-> median $PAUSE_MED; command us $(tr '\n' ' ' <"$WORK/$name.wall")-> median $WALL_MED"
	swafs_umount "$m"
}

measure small 1000
SP=$PAUSE_MED SW=$WALL_MED
measure big 100000
BP=$PAUSE_MED BW=$WALL_MED
[ "$BP" -le $((5 * SP + 2000)) ] ||
	fail "checkpoint pause grows with the tree: median ${BP}us with 100,000 files vs ${SP}us with 1,000"
[ "$BW" -le $((5 * SW + 20000)) ] ||
	fail "checkpoint command time grows with the tree: median ${BW}us with 100,000 files vs ${SW}us with 1,000"
log "ok"
