#!/usr/bin/env bash
# swafs as a service: make install puts the binaries, both man pages, the
# systemd unit and the bash completion in place; man -l renders the pages;
# systemd-analyze verify accepts the unit; under a service manager
# (NOTIFY_SOCKET) the daemon says READY=1 only once its control socket
# answers, STOPPING=1 on SIGTERM, and exits 0 after unmounting; in the
# background its stderr lines (a view failing with EIO) reach syslog;
# swactl help, CMD --help and -V; the completion offers commands, options
# and checkpoint names.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/data M=$WORK/mnt V=$WORK/view I=$WORK/inst
mkdir -p "$B" "$M"
LISTEN=$IT_DIR/sd_listen.py

# ---- make install ------------------------------------------------------------
make -s -C "$ROOT" install DESTDIR="$I" PREFIX=/usr/local >"$WORK/install.log" 2>&1 ||
	fail "make install failed: $(cat "$WORK/install.log")"
for f in bin/swafs bin/swactl share/man/man8/swafs.8 share/man/man8/swactl.8 \
	lib/systemd/system/swafs@.service lib/systemd/system/swafs-save@.service \
	lib/systemd/system/swafs-save@.timer share/bash-completion/completions/swactl; do
	[ -s "$I/usr/local/$f" ] || fail "make install did not install $f"
done
grep -q 'exec /usr/local/bin/swafs -f' "$I/usr/local/lib/systemd/system/swafs@.service" ||
	fail "the installed unit does not run PREFIX/bin/swafs"
for p in swafs swactl; do
	out=$(MANWIDTH=80 man -l "$I/usr/local/share/man/man8/$p.8" 2>&1) ||
		fail "man -l $p.8 failed: $out"
	grep -q "^NAME" <<<"$out" || fail "man -l $p.8 rendered no NAME section"
done
U=$I/usr/local/lib/systemd/system
for u in swafs@srv-data.service swafs-save@srv-data.service \
	swafs-save@srv-data.timer; do
	out=$(MANPATH=$I/usr/local/share/man systemd-analyze verify "$U/$u" 2>&1) ||
		fail "systemd-analyze verify rejects $u: $out"
done
grep -q 'exec /usr/local/bin/swactl save "%f"' "$U/swafs-save@.service" ||
	fail "the installed save unit does not run PREFIX/bin/swactl save"
log "installed; man pages render; the unit verifies"

# ---- sd_notify: READY once the socket answers, STOPPING, exit 0 -------------
"$PYTHON" "$LISTEN" "$WORK/notify" "$WORK/notify.log" --ready "$WORK/nready" &
track_pid $!
wait_until 10 test -e "$WORK/nready" || fail "the notify listener did not start"
NOTIFY_SOCKET=$WORK/notify "$SWAFS" "$B" "$M" -f >"$WORK/d.log" 2>&1 &
dpid=$!
track_pid $dpid
wait_until 15 grep -qx 'READY=1' "$WORK/notify.log" ||
	fail "no READY=1 from the daemon: $(cat "$WORK/notify.log" "$WORK/d.log")"
is_fuse_mount "$M" || fail "READY=1 came before the mount"
"$SWACTL" list "$M" >/dev/null 2>&1 || fail "READY=1 came before the control socket answered"
kill -TERM "$dpid"
wait_until 10 pid_gone "$dpid" || fail "the daemon did not stop on SIGTERM"
rc=0
wait "$dpid" || rc=$?
assert_eq "exit status after SIGTERM" 0 "$rc"
grep -qx 'STOPPING=1' "$WORK/notify.log" || fail "no STOPPING=1: $(cat "$WORK/notify.log")"
! is_fuse_mount "$M" || fail "SIGTERM left '$M' mounted"
log "READY=1 after the socket answered, STOPPING=1, exit 0"

# ---- in the background, stderr goes to syslog --------------------------------
SLOG=$WORK/syslog.log
if [ -e /dev/log ]; then
	command -v journalctl >/dev/null ||
		fail "/dev/log exists but there is no journalctl to read it back"
	since=$(date '+%Y-%m-%d %H:%M:%S')
else
	"$PYTHON" "$LISTEN" /dev/log "$SLOG" --ready "$WORK/sready" &
	track_pid $!
	wait_until 10 test -e "$WORK/sready" || fail "the syslog listener did not start"
fi
S=$WORK/store
mkdir -p "$S"
"$SWAFS" "$B" "$M" -o "store=$S,store_mem=1M,store_max=1M,block_size=64K" ||
	fail "swafs did not mount in the background"
wait_until 10 _ctl_ready "$M" || fail "the daemonized swafs does not answer"
head -c $((8 << 20)) /dev/urandom >"$M/f"
sync
ckpt_take "$M" night
view_mount "$M" night "$V"
head -c $((8 << 20)) /dev/urandom | dd of="$M/f" conv=notrunc status=none
! cat "$V/f" >/dev/null 2>&1 || fail "the invalidated view served its file"
want="of checkpoint 'night': .* (inode [0-9]*): fails with EIO"
if [ -e "$SLOG" ]; then
	wait_until 10 grep -q "swafs\[[0-9]*\]: .*$want" "$SLOG" ||
		fail "the EIO line did not reach syslog: $(cat "$SLOG")"
	grep "$want" "$SLOG" | grep -q '^<27>' ||
		fail "the EIO line is not daemon.err: $(grep "$want" "$SLOG")"
else
	wait_until 10 eval 'journalctl -q -t swafs --since "$since" | grep -q "$want"' ||
		fail "the EIO line did not reach the journal"
fi
view_umount "$V"
fusermount3 -u "$M"
wait_until 10 no_daemon_for "$B" || fail "the daemon did not exit after unmount"
log "a background daemon's EIO line reached syslog"

# ---- the save unit's command, as systemd would run it -------------------------
# ExecStart with systemd's escapes undone: %f the mount point, %i the
# instance, %% a percent, $$ a dollar; its environment as from the .save file
swafs_mount "$B" "$M"
mkdir -p "$B/sub"
echo nightly >"$B/sub/f"
cmd=$(sed -n 's/^ExecStart=//p' "$U/swafs-save@.service")
cmd=${cmd//%f/$M}
cmd=${cmd//%i/inst}
cmd=${cmd//%%/%}
cmd=${cmd//\$\$/\$}
cmd=${cmd//\/usr\/local\/bin\/swactl/$ROOT/bin/swactl}
SWAFS_SAVE_TO=$WORK/saves SWAFS_SAVE_OPTS="--streams 2" \
	eval "$cmd" >"$WORK/save.out" 2>&1 || fail "the save unit's command failed: $(cat "$WORK/save.out")"
mf=$(ls "$WORK"/saves/nightly-*.manifest) || fail "no manifest in $WORK/saves: $(ls -l "$WORK/saves")"
[ "$(stat -c %a "$WORK/saves")" = 700 ] || fail "the save directory is not 0700"
"$SWACTL" verify "$WORK"/saves/nightly-*.pax* --manifest "$mf" >"$WORK/verify.out" 2>&1 ||
	fail "the unit's save does not verify: $(cat "$WORK/verify.out")"
[ -z "$("$SWACTL" list "$M")" ] || fail "the unit's save left a checkpoint"
swafs_umount "$M"
log "the save unit's command saves, and the save verifies"

# ---- swactl help, CMD --help, -V ----------------------------------------------
for c in checkpoint mount release list events status history sync; do
	out=$("$SWACTL" help "$c") || fail "swactl help $c failed"
	grep -q "^usage: swactl $c" <<<"$out" || fail "swactl help $c: '$out'"
	assert_eq "swactl $c --help" "$out" "$("$SWACTL" "$c" x --help)"
done
"$SWACTL" -V | grep -q '^swactl [0-9]' || fail "swactl -V prints no version"
assert_status "swactl help bogus" 2 "$SWACTL" help bogus

# ---- bash completion ---------------------------------------------------------
swafs_mount "$B" "$M"
ckpt_take "$M" alpha
ckpt_take "$M" beta
complete_words() {
	PATH=$ROOT/bin:$PATH bash -c '
		. "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		_swactl; printf "%s\n" "${COMPREPLY[@]}"' _ \
		"$I/usr/local/share/bash-completion/completions/swactl" "$@" | sort | tr '\n' ' '
}
assert_eq "commands" "checkpoint " "$(complete_words swactl che)"
assert_eq "checkpoint options" "--retain " "$(complete_words swactl checkpoint "$M" --ret)"
assert_eq "retain values" "all saved " "$(complete_words swactl checkpoint "$M" --retain '')"
assert_eq "checkpoint names" "alpha beta " "$(complete_words swactl mount "$M" '')"
assert_eq "sync verbs" "end " "$(complete_words swactl sync e)"
swafs_umount "$M"
log ok
