#!/usr/bin/env bash
# The README's "A save in six commands" works exactly as printed: its lines
# run, one by one, in a private mount namespace whose /srv, /mnt and
# /var/backups are fresh tmpfs (so the printed paths are used and nothing
# of the machine is touched), with swafs and swactl from this checkout
# first on PATH. The archive must hold the sample tree exactly, and
# nothing may stay mounted.
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
awk '/^## A save in/ { on = 1; next } on && /^#/ { exit }
	on && /^    / { sub(/^    /, ""); print }' "$README" >"$WORK/steps"
[ "$(wc -l <"$WORK/steps")" -ge 5 ] ||
	fail "found no commands under '## A save in' in README.md: $(cat "$WORK/steps")"
grep -q '^swafs /srv/data' "$WORK/steps" || fail "the steps do not mount /srv/data: $(cat "$WORK/steps")"
grep -q '^umount /mnt/nightly' "$WORK/steps" || fail "the steps do not end the save"

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
mkdir -p /srv/data/sub
printf 'hello\n' >/srv/data/hello
head -c 300000 /dev/urandom >/srv/data/sub/blob
ln -s hello /srv/data/link
(cd /srv/data && find . | sort >"$work/before")
n=0
while IFS= read -r line; do
	n=$((n + 1))
	cmd=${line%%#*}
	echo "step $n: $cmd" >&2
	bash -c "$cmd" >>"$work/steps.out" 2>&1 || { echo "step $n failed: $line" >&2; exit 1; }
done <"$steps"
grep -q ' /mnt/nightly .* - fuse\.swafs' /proc/self/mountinfo && { echo "the view is still mounted" >&2; exit 1; }
mkdir "$work/x"
tar -xf /var/backups/nightly.tar -C "$work/x" || exit 1
(cd "$work/x" && find . | sort) >"$work/after"
cmp -s "$work/before" "$work/after" || { echo "the archive lists other names" >&2; exit 1; }
cmp /srv/data/sub/blob "$work/x/sub/blob" || exit 1
cmp /srv/data/hello "$work/x/hello" || exit 1
[ "$(readlink "$work/x/link")" = hello ] || { echo "symlink lost" >&2; exit 1; }
INNER

rc=0
PATH=$ROOT/bin:$PATH unshare -m --propagation private \
	bash "$WORK/inner.sh" "$WORK/steps" "$WORK" 2>"$WORK/inner.err" || rc=$?
[ "$rc" -eq 0 ] || fail "the README's steps failed: $(cat "$WORK/inner.err" "$WORK/steps.out" 2>/dev/null)"
wait_until 10 no_daemon_for /srv/data || fail "a daemon for /srv/data is still running"
log "the README's $(wc -l <"$WORK/steps") save commands work as printed"
