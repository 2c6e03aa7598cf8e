#!/usr/bin/env bash
# make demo: the whole save-while-active cycle on a generated sample tree.
# swafs is mounted over the tree itself, writers keep changing it, a
# checkpoint is taken, its view is saved with tar while the writers go on,
# and the archive is verified against the tree as it was at the checkpoint.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
swafs=$top/bin/swafs
swactl=$top/bin/swactl
work=$(mktemp -d /var/tmp/swafs-demo.XXXXXX)
data=$work/data
view=$work/view
daemon=
writers=()

cleanup() {
	for w in "${writers[@]}"; do
		kill -CONT "$w" 2>/dev/null || true
		kill "$w" 2>/dev/null || true
		wait "$w" 2>/dev/null || true
	done
	for m in "$view" "$data"; do
		if mountpoint -q "$m" 2>/dev/null; then
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		fi
	done
	if [ -n "$daemon" ]; then
		kill "$daemon" 2>/dev/null || true
		wait "$daemon" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

say() { printf '  %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# What a tree holds, one line per object: type, mode, size, mtime, name,
# symlink target, then a content hash per file.
manifest() {
	(cd "$1" && find . -mindepth 1 -printf '%y %m %s %T@ %p %l\n' | sort &&
	 find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
}

echo "swafs demo: save a tree while it is being written"
mkdir -p "$data" "$view"
for d in etc db logs; do
	mkdir -p "$data/$d"
	for i in $(seq 1 40); do
		head -c $((i * 997)) /dev/urandom > "$data/$d/file$i"
	done
done
head -c 8M /dev/urandom > "$data/db/table.dat"
ln -s db/table.dat "$data/current"
say "sample tree: $(find "$data" -type f | wc -l) files, $(du -sh "$data" | cut -f1) in $data"

"$swafs" "$data" "$data" -f -o store="$work" &
daemon=$!
for _ in $(seq 200); do
	mountpoint -q "$data" && break
	kill -0 "$daemon" 2>/dev/null || die "swafs exited"
	sleep 0.05
done
mountpoint -q "$data" || die "the mount did not appear"
say "live tree mounted over itself: $data"

# Writers: a journal appender, a random overwriter of the table, a churner
# that creates, renames and deletes files.
(i=0; while :; do i=$((i + 1)); printf 'record %08d\n' "$i" >> "$data/db/journal"; done) &
writers+=($!)
(while :; do dd if=/dev/urandom of="$data/db/table.dat" bs=4k count=1 \
	seek=$((RANDOM % 2048)) conv=notrunc status=none; done) &
writers+=($!)
(i=0; while :; do i=$((i + 1)); echo "$i" > "$data/logs/new$i"
	mv "$data/logs/new$i" "$data/logs/rotated$i"; rm -f "$data/logs/rotated$((i - 5))"
	echo "$i" >> "$data/etc/file$((i % 40 + 1))"; done) &
writers+=($!)
sleep 1
say "3 writers running (appender, overwriter, create/rename/delete churn)"

# The expected image: pause the writers, record the tree, take the
# checkpoint, resume.  (A real job needs no pause: swafs drains calls
# itself; the pause is only here to know what the checkpoint must show.)
for w in "${writers[@]}"; do kill -STOP "$w"; done
sleep 0.2
manifest "$data" > "$work/expected.txt"
out=$("$swactl" checkpoint "$data" --name nightly)
for w in "${writers[@]}"; do kill -CONT "$w"; done
say "$out"

"$swactl" mount "$data" nightly "$view" >/dev/null
say "view mounted read-only on $view; saving it with tar while writers run"
tar --format=posix -C "$view" -cf "$work/nightly.tar" .
umount "$view"
say "archive: $(du -h "$work/nightly.tar" | cut -f1); view unmounted, checkpoint released"
"$swactl" list "$data" | grep -q nightly && die "checkpoint not released"

for w in "${writers[@]}"; do kill "$w"; wait "$w" 2>/dev/null || true; done
writers=()
mkdir "$work/restore"
tar -C "$work/restore" -xf "$work/nightly.tar"
manifest "$work/restore" > "$work/restored.txt"
if ! diff -q "$work/expected.txt" "$work/restored.txt" >/dev/null; then
	diff "$work/expected.txt" "$work/restored.txt" | head -20 >&2
	die "the archive does not match the tree at the checkpoint"
fi
n=$(grep -c . "$work/expected.txt")
say "verified: the archive matches the tree at the checkpoint ($n manifest lines: names, types, modes, sizes, mtimes, contents)"
say "meanwhile the live journal grew to $(wc -l < "$data/db/journal") records"
umount "$data"
wait "$daemon" 2>/dev/null || true
daemon=
echo "demo ok"
