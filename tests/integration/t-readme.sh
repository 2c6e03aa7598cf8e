#!/usr/bin/env bash
# The README's examples work exactly as printed: the lines of "A save in
# six commands", then those of "Save, verify, restore", run one by one (a
# line ending in \ joined with the next) in a private mount namespace whose
# /srv, /mnt and /var/backups are fresh tmpfs, so the printed paths are
# used and nothing of the machine is touched; swafs and swactl from this
# checkout come first on PATH. The archives must hold the sample tree
# exactly, the restore must equal it, and nothing may stay mounted.
. "$(dirname "$0")/lib.sh"

README=$ROOT/README.md

# The daemon lives in the private namespace, where the EXIT trap of lib.sh
# cannot see its mount: stop it by pid (its binary is this checkout's, so
# swafs_pids_for matches no one else's), which unmounts it there.
_readme_cleanup() {
	local rc=$? p
	for p in $(swafs_pids_for /srv/data); do
		kill -TERM "$p" 2>/dev/null
		wait_until 5 pid_gone "$p" || kill -KILL "$p" 2>/dev/null
	done
	_ret "$rc"
	_cleanup
}
_ret() { return "$1"; }
trap _readme_cleanup EXIT

# section HEADING-PREFIX: the indented lines under it, continuations joined
section() {
	awk -v h="$1" 'index($0, h) == 1 { on = 1; next } on && /^#/ { exit }
		on && /^    / { sub(/^    /, ""); if (sub(/\\$/, "")) { acc = acc $0; next }
			print acc $0; acc = "" }' "$README"
}
section "## A save in" >"$WORK/steps"
section "### Save, verify, restore" >>"$WORK/steps"
[ "$(wc -l <"$WORK/steps")" -ge 9 ] ||
	fail "found too few commands in README.md: $(cat "$WORK/steps")"
grep -q '^swafs /srv/data' "$WORK/steps" || fail "the steps do not mount /srv/data: $(cat "$WORK/steps")"
grep -q '^umount /mnt/nightly' "$WORK/steps" || fail "the steps do not end the save"
grep -q '^swactl restore ' "$WORK/steps" || fail "the steps do not restore"

cat >"$WORK/inner.sh" <<'INNER'
set -u
steps=$1 work=$2
cleanup() {
	umount /mnt/nightly 2>/dev/null
	while grep -q ' /srv/data .* - fuse\.swafs ' /proc/self/mountinfo; do
		umount /srv/data 2>/dev/null || umount -l /srv/data || break
	done
}
trap cleanup EXIT
for d in /srv /mnt /var/backups; do
	mount -t tmpfs -o mode=755 swafs-readme "$d" || exit 1
done
mkdir -p /srv/data/sub /mnt/disk1 /mnt/disk2
printf 'hello\n' >/srv/data/hello
head -c 300000 /dev/urandom >/srv/data/sub/blob
ln -s hello /srv/data/link
(cd /srv/data && find . | sort >"$work/before")
n=0
while IFS= read -r line; do
	n=$((n + 1))
	echo "step $n: $line" >&2
	bash -c "$line" >>"$work/steps.out" 2>&1 || { echo "step $n failed: $line" >&2; exit 1; }
done <"$steps"
grep -q ' /mnt/nightly .* - fuse\.swafs' /proc/self/mountinfo && { echo "the view is still mounted" >&2; exit 1; }
for t in /var/backups/nightly.tar /var/backups/x.tar; do
	rm -rf "$work/x" && mkdir "$work/x" && tar -xf "$t" -C "$work/x" || exit 1
	(cd "$work/x" && find . | sort) >"$work/after"
	cmp -s "$work/before" "$work/after" || { echo "$t lists other names" >&2; exit 1; }
	cmp /srv/data/sub/blob "$work/x/sub/blob" || exit 1
	[ "$(readlink "$work/x/link")" = hello ] || { echo "$t lost the symlink" >&2; exit 1; }
done
(cd /srv/restored && find . | sort) >"$work/restored"
cmp -s "$work/before" "$work/restored" || { echo "the restore lists other names" >&2; exit 1; }
cmp /srv/data/sub/blob /srv/restored/sub/blob || exit 1
cmp /srv/data/hello /srv/restored/hello || exit 1
INNER

rc=0
PATH=$ROOT/bin:$PATH unshare -m --propagation private \
	bash "$WORK/inner.sh" "$WORK/steps" "$WORK" 2>"$WORK/inner.err" || rc=$?
[ "$rc" -eq 0 ] || fail "the README's steps failed: $(cat "$WORK/inner.err" "$WORK/steps.out" 2>/dev/null)"
wait_until 10 no_daemon_for /srv/data || fail "a daemon for /srv/data is still running"
log "the README's $(wc -l <"$WORK/steps") example commands work as printed"
