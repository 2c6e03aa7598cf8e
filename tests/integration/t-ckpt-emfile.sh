#!/bin/bash
# G1 when the daemon is out of descriptors: with a checkpoint active, an
# unlink or rename whose object the daemon must open to capture it first
# meets EMFILE; the daemon makes room in its descriptor cache and captures,
# so the view still shows the object as it was at T (never a change the
# checkpoint did not see).
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/b M=$WORK/m V=$WORK/v
mkdir -p "$B" "$M" "$V"
swafs_mount "$B" "$M" "store=$WORK,fd_cache=100000"
pid=$SWAFS_PID
mkdir "$M/d"
for i in $(seq 600); do echo "file $i" >"$M/d/f$i"; done
ckpt_take "$M" t --retain all --keep
# every name looked up: the daemon caches a descriptor for each
stat "$M"/d/f* >/dev/null
n=$(find "/proc/$pid/fd" -mindepth 1 | wc -l)
# no descriptor to spare: the capture's open meets EMFILE
prlimit --pid "$pid" --nofile="$n:$(prlimit --pid "$pid" --nofile -o HARD --noheadings)" ||
	fail "cannot lower the daemon's open-file limit"
rm "$M/d/f7" || fail "unlink under EMFILE failed"
mv "$M/d/f8" "$M/d/f9" || fail "rename over under EMFILE failed"
prlimit --pid "$pid" --nofile=20000:20000 2>/dev/null ||
	prlimit --pid "$pid" --nofile="$((n + 4096))"
view_mount "$M" t "$V"
for i in 7 8 9; do
	assert_eq "f$i in the view" "file $i" "$(cat "$V/d/f$i")"
done
[ ! -e "$M/d/f7" ] && [ "$(cat "$M/d/f9")" = "file 8" ] ||
	fail "the live changes did not happen"
view_umount "$V"
swactl release "$M" t
log ok
