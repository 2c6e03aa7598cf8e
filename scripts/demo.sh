#!/usr/bin/env bash
# make demo: mount a generated sample tree through swafs, run a writer
# against the live tree, show that every write reached the backing
# directory, unmount.  Checkpoints and views join this demo with them.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
swafs=$top/bin/swafs
work=$(mktemp -d /var/tmp/swafs-demo.XXXXXX)
mnt=$work/data
daemon=
writer=

cleanup() {
	[ -n "$writer" ] && kill "$writer" 2>/dev/null && wait "$writer" 2>/dev/null
	if mountpoint -q "$mnt" 2>/dev/null; then
		fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
	fi
	[ -n "$daemon" ] && kill "$daemon" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

say() { printf '  %s\n' "$*"; }

echo "swafs demo"
mkdir -p "$mnt"
for d in etc db logs; do
	mkdir -p "$mnt/$d"
	for i in $(seq 1 50); do
		head -c $((i * 97)) /dev/urandom > "$mnt/$d/file$i"
	done
done
say "sample tree: $(find "$mnt" -type f | wc -l) files in $mnt"

# Mount over the backing directory itself, as the README recommends.
"$swafs" "$mnt" "$mnt" -f &
daemon=$!
for _ in $(seq 100); do
	mountpoint -q "$mnt" && break
	kill -0 "$daemon" 2>/dev/null || { echo "demo: swafs exited" >&2; exit 1; }
	sleep 0.05
done
mountpoint -q "$mnt" || { echo "demo: mount did not appear" >&2; exit 1; }
say "mounted: $(grep " $mnt " /proc/mounts | cut -d' ' -f1-3)"

# A writer appends numbered records while we watch.
(
	i=0
	while :; do
		i=$((i + 1))
		printf 'record %08d\n' "$i" >> "$mnt/db/journal"
	done
) &
writer=$!
sleep 2
kill "$writer"; wait "$writer" 2>/dev/null || true
writer=
n=$(wc -l < "$mnt/db/journal")
say "writer appended $n records to db/journal through the live tree"
sum_live=$(tar -C "$mnt" -cf - . | sha256sum | cut -c1-16)
say "tar of the live tree: sha256 $sum_live..."

fusermount3 -u "$mnt"
wait "$daemon" 2>/dev/null || true
daemon=
m=$(wc -l < "$mnt/db/journal")
last=$(tail -n 1 "$mnt/db/journal")
[ "$n" = "$m" ] || { echo "demo: backing has $m records, expected $n" >&2; exit 1; }
[ "$last" = "$(printf 'record %08d' "$n")" ] || { echo "demo: torn journal" >&2; exit 1; }
sum_back=$(tar -C "$mnt" -cf - . | sha256sum | cut -c1-16)
[ "$sum_live" = "$sum_back" ] || { echo "demo: backing differs from live view" >&2; exit 1; }
say "unmounted: backing holds all $m records, last '$last'"
say "tar of the backing directory matches the live tree: sha256 $sum_back..."
echo "demo ok"
