#!/bin/bash
# Objects removed from the live tree after T stay reachable through a view
# whatever its descriptor cache (1,024) evicts: 3,000 empty files, data
# files, symlinks, fifos and directories (each with a file in it), each
# read once through the view, then unlinked or renamed over on the live
# tree, all read, stat and list exactly as at T afterwards.  Under
# --retain all, and under --retain saved (the files read whole were
# released before they went); those runs with the daemon's open-file
# limit lowered to what it already holds plus a few, so its caches really
# have to let go.
. "$(dirname "$0")/ckpt-lib.sh"

NE=3000 NX=40

populate() {
	local d=$1 i
	mkdir "$d"
	for ((i = 0; i < NE; i++)); do : >"$d/e$i"; done
	for ((i = 0; i < NX; i++)); do
		head -c $((i * 9000 + 1)) /dev/urandom >"$d/f$i"
		setfattr -n user.k -v "v$i" "$d/e$i" "$d/f$i"
		ln -s "target-$i" "$d/l$i"
		mkfifo "$d/p$i"
		mkdir "$d/D$i"
		echo "in $i" >"$d/D$i/x"
		echo "new $i" >"$d/src$i"
	done
	chmod 640 "$d/e1" "$d/f1"
	touch -d @1000000000 "$d/e2" "$d/l2" "$d/D2"
}

# read_all DIR: what a saver does: read every file, link and directory
read_all() {
	find "$1" -type f -exec cat {} + >/dev/null || return 1
	find "$1" -type l -exec readlink {} + >/dev/null || return 1
	find "$1" -type p -exec stat -c %s {} + >/dev/null
}

# take_away DIR: unlink everything the view showed; every tenth empty
# file and every other data file, link, fifo and directory is renamed over
# instead
take_away() {
	local d=$1 i
	for ((i = 0; i < NE; i++)); do
		if ((i % 10 == 3 && i / 10 < NX)); then
			mv -f "$d/src$((i / 10))" "$d/e$i"
		else
			rm -f "$d/e$i"
		fi
	done
	for ((i = 0; i < NX; i++)); do
		if ((i % 2)); then
			rm -f "$d/f$i" "$d/l$i"
		else
			echo "over $i" >"$d/o$i"
			mv -f "$d/o$i" "$d/f$i"
			ln -s "over-$i" "$d/ol$i"
			mv -fT "$d/ol$i" "$d/l$i"
		fi
		rm -f "$d/src$i"
		if ((i % 2)); then
			rm -f "$d/p$i"
			rm -rf "$d/D$i"
		else
			mkfifo "$d/op$i"
			mv -f "$d/op$i" "$d/p$i"
			rm "$d/D$i/x"
			mkdir "$d/oD$i"
			mv -T "$d/oD$i" "$d/D$i"
		fi
	done
}

# fd_limit EXPR: lower the daemon's open-file limit to EXPR, an
# arithmetic expression of n, the descriptors it holds now
fd_limit() {
	local n hard
	n=$(daemon_fd_count "$SWAFS_PID")
	hard=$(prlimit --pid "$SWAFS_PID" --nofile -o HARD --noheadings)
	prlimit --pid "$SWAFS_PID" --nofile="$(($1)):$hard" ||
		fail "cannot lower the daemon's open-file limit to $1 (n=$n)"
}

# one_case RETAIN LOWFD
one_case() {
	local retain=$1 lowfd=$2 tag="$1-$2" B M V n hard
	B=$WORK/b-$tag M=$WORK/m-$tag V=$WORK/v-$tag
	mkdir -p "$B" "$M"
	swafs_mount "$B" "$M" "store=$WORK"
	populate "$M/d"
	mfst "$M/d" "$WORK/T-$tag.mf"
	ckpt_take "$M" t --retain "$retain" --keep
	view_mount "$M" t "$V"
	read_all "$V/d" || fail "$tag: first read through the view failed"
	[ "$lowfd" = low ] && fd_limit 'n + 40'
	take_away "$M/d"
	[ ! -e "$M/d/e0" ] && [ ! -e "$M/d/D1" ] && [ ! -e "$M/d/p1" ] &&
		[ ! -e "$M/d/D0/x" ] && [ "$(cat "$M/d/f0")" = "over 0" ] ||
		fail "$tag: the live removals did not happen"
	# below what it holds: the view's opens meet EMFILE and make room
	[ "$lowfd" = low ] && fd_limit 'n / 2'
	mfst "$V/d" "$WORK/V-$tag.mf"
	assert_manifest_eq "$tag: view after the removals" \
		"$WORK/T-$tag.mf" "$WORK/V-$tag.mf"
	read_all "$V/d" || fail "$tag: reading the view again failed"
	view_umount "$V"
	swafs_umount "$M"
	log "$tag ok"
}

one_case all normal
one_case all low
one_case saved low
log ok
