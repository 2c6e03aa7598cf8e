#!/usr/bin/env bash
# Checkpoints taken with --path sub1 --path sub2/x stay T's whatever
# happens to the scope roots and the directories leading to them after T:
# each case takes a checkpoint, records the manifest of what the view must
# show (the subtrees and the names leading to them, as at T), changes the
# live tree, and compares the view with it.  Cases: rename a root; rm -rf
# a root; replace a root with a new directory holding a new file; replace
# a root with a file; rename an ancestor of a nested root and recreate the
# path; a new directory named like the root that reuses the inode number
# of a deleted T file.  Writes into the renamed T subtree are captured, and
# nothing outside the scope shows in any view.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt V=$WORK/view
mkdir -p "$B" "$M" "$V" "$WORK/store"
swafs_mount "$B" "$M" "events=$WORK/events,store=$WORK/store"
SCOPE=(--path sub1 --path sub2/x)
MSCOPE=(--scope sub1 --scope sub2/x)
n=0

# the T tree: two scope roots, their siblings and ancestors' siblings
populate() {
	find "$M" -mindepth 1 -delete
	mkdir -p "$M/sub1/d" "$M/sub2/x/y" "$M/sub2/other" "$M/sib"
	printf 'sub1 f at T\n' >"$M/sub1/f"
	printf 'victim\n1234' >"$M/sub1/victim"
	head -c 300000 /dev/urandom >"$M/sub1/d/big"
	printf 'h at T\n' >"$M/sub2/x/y/h"
	printf 'outside\n' >"$M/sub2/other/o"
	printf 'sibling\n' >"$M/sib/s"
	printf 'top\n' >"$M/top"
	setfattr -n user.k -v at-T "$M/sub2"
	touch -d '2001-02-03 04:05:06' "$M/sub2" "$M/sub1"
}

# case NAME CMD: checkpoint, T manifest, view, CMD on the live tree, compare
case_run() {
	local what=$1
	shift
	n=$((n + 1))
	populate
	ckpt_take "$M" "c$n" "${SCOPE[@]}"
	mfst "$M" "$WORK/t$n" "${MSCOPE[@]}"
	view_mount "$M" "c$n" "$V"
	"$@"
	mfst "$V" "$WORK/v$n"
	assert_manifest_eq "$what: view of c$n vs the live tree at T" \
		"$WORK/t$n" "$WORK/v$n"
	view_umount "$V"
	log "ok: $what"
}

rename_root() {
	mv "$M/sub1" "$M/sub1_renamed"
	# the T subtree under its new name is still captured before change
	printf 'changed after T\n' >>"$M/sub1_renamed/f"
	head -c 4096 /dev/zero | dd of="$M/sub1_renamed/d/big" conv=notrunc \
		status=none
}

rm_root() { rm -rf "$M/sub1"; }

replace_root_dir() {
	mv "$M/sub1" "$M/x1"
	mkdir "$M/sub1"
	echo new >"$M/sub1/f"
	echo 'old f changed' >"$M/x1/f"
}

replace_root_file() {
	mv "$M/sub1" "$M/x2"
	echo 'a file now' >"$M/sub1"
}

rename_ancestor() {
	mv "$M/sub2" "$M/zzz"
	mkdir -p "$M/sub2/x"
	echo 'h changed' >"$M/zzz/x/y/h"
	rm -rf "$M/zzz"
}

# backing inode number of a path
bino() { stat -c %i "$B/$1"; }

# a new directory named sub1 with the inode number of the deleted T file
# sub1/victim (ext4 hands freed numbers of a group out again, lowest
# first: new directories beside where the victim was get there)
reuse_ino() {
	local want k
	want=$(bino sub1/victim)
	rm "$M/sub1/victim"
	mv "$M/sub1" "$M/old1"
	for ((k = 0; k < 5000; k++)); do
		mkdir "$M/old1/c$k"
		if [ "$(bino "old1/c$k")" = "$want" ]; then
			mv "$M/old1/c$k" "$M/sub1"
			echo 'post-T' >"$M/sub1/new"
			rm -rf "$M/old1"
			return 0
		fi
	done
	fail "no new directory got inode $want back after 5000 tries"
}

case_run "rename a scope root" rename_root
case_run "rm -rf a scope root" rm_root
case_run "replace a scope root with a new directory and file" replace_root_dir
case_run "replace a scope root with a file" replace_root_file
case_run "rename an ancestor of a nested root, recreate the path" rename_ancestor
case_run "a new directory reuses the inode number of a deleted T file" reuse_ino

# the view never showed anything outside the scope
for f in "$WORK"/v[0-9]*; do
	if grep -qE '^(sib|top|sub2/other|cand|old1|x1|x2|zzz)' "$f"; then
		fail "$f shows names outside the scope: $(grep -E '^(sib|top|sub2/other)' "$f" | head -3)"
	fi
done
if grep -q '"event":"integrity-error"' "$WORK/events"; then
	fail "integrity errors: $(grep integrity-error "$WORK/events" | head -3)"
fi
log "ok"
