#!/bin/bash
# Hostile local users against the control socket (issue 17): as nobody and
# as a second user made here, against root's mount and against the mount
# of a third user made here.
#  1. a user's daemon refuses a socket directory another user made first
#     (/tmp/swafs-UID with mode 0777 or 0755, or a symlink there): the mount
#     fails with one line naming it, before reporting success; with
#     XDG_RUNTIME_DIR it listens there, 0700, and other users cannot connect;
#  2. a forged daemon answering on the user's socket path: swactl refuses it;
#  3. 10,000 idle connections: the daemon keeps few threads and descriptors
#     and root's swactl checkpoint answers within 1 s;
#  4. a client sending a byte every 2 s is cut at the request deadline (10 s);
#  5. at the descriptor limit accept() does not spin (the daemon's CPU time);
#  6. events --follow connections are capped per uid, root still follows;
#  7. read commands: other users learn how many checkpoints there are and
#     which events happened, never names, paths or sizes; no history;
#  8. a boundary wait names a holder by pid and uid, not by the command
#     name it chose; --others-wait bounds how long other users' holders
#     delay root's checkpoint, root's own holders still delay it.
#
# The user's daemon runs as that uid with CAP_SYS_ADMIN and CAP_DAC_OVERRIDE
# (ambient): /dev/fuse is 0600 here, so it could not mount otherwise.
. "$(dirname "$0")/ckpt-lib.sh"

SYSPY=/usr/bin/python3
HOSTILE=$IT_DIR/hostile.py
U1=swt$$a U2=swt$$b	# the owner of a user mount, a second attacker
_T_USERS=()		# the users this test made, removed at exit
_users_del() {
	local u
	for u in "${_T_USERS[@]}"; do
		userdel -f "$u" 2>/dev/null
	done
	[ -z "${U1_UID:-}" ] || rm -rf "/tmp/swafs-$U1_UID" "/run/user/$U1_UID"
	rm -rf "$WORK/evil"
}
trap 'rc=$?; set +e; _users_del; _ckpt_ret $rc; _ckpt_cleanup' EXIT
for u in "$U1" "$U2"; do
	useradd -M -U -s /usr/sbin/nologin "$u" || fail "useradd $u"
	_T_USERS+=("$u")
done
U1_UID=$(id -u "$U1") U1_GID=$(id -g "$U1") U2_UID=$(id -u "$U2")
U2_GID=$(id -g "$U2")
as() { setpriv --reuid="$1" --regid="$2" --clear-groups "${@:3}"; }
as_nobody() { as "$NOBODY_UID" "$NOBODY_GID" "$@"; }
# the same as words, for background helpers: setpriv (and prlimit) exec,
# so $! is the helper itself and the EXIT trap can stop it
NOBODY=(setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups)
as_u1() { as "$U1_UID" "$U1_GID" env -u XDG_RUNTIME_DIR "$@"; }
as_u2() { as "$U2_UID" "$U2_GID" "$@"; }
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
threads() { awk '/^Threads:/ { print $2 }' "/proc/$1/status"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

B=$WORK/b M=$WORK/m S=$WORK/s UB=$WORK/ub UM=$WORK/um US=$WORK/us
mkdir -p "$B" "$M" "$S" "$UB" "$UM" "$US"
chown "$U1_UID:$U1_GID" "$UB" "$UM" "$US"
# mkwrap XDG: $WORK/as-u1 runs the daemon as U1 (XDG_RUNTIME_DIR=XDG or unset)
mkwrap() {
	cat >"$WORK/as-u1" <<EOF2
#!/bin/sh
exec env -u XDG_RUNTIME_DIR ${1:+XDG_RUNTIME_DIR=$1} setpriv --reuid=$U1_UID \
	--regid=$U1_GID --clear-groups --inh-caps=+sys_admin,+dac_override \
	--ambient-caps=+sys_admin,+dac_override "$SWAFS" "\$@"
EOF2
	chmod 755 "$WORK/as-u1"
}

# ---- 1. a socket directory made by someone else ---------------------------------
TD=/tmp/swafs-$U1_UID
rm -rf "$TD"
mkwrap ""
mkdir "$WORK/evil"
chmod 777 "$WORK/evil"
for how in 0777 0755 symlink; do
	if [ "$how" = symlink ]; then
		as_nobody ln -s "$WORK/evil" "$TD"
	else
		as_nobody mkdir -m "$how" "$TD"
	fi
	rc=0
	"$WORK/as-u1" "$UB" "$UM" -o "allow_other,store=$US" 2>"$WORK/err" || rc=$?
	[ "$rc" -ne 0 ] || fail "mount with $TD made by uid $NOBODY_UID ($how) reported success"
	is_fuse_mount "$UM" && fail "mount with $TD ($how) is left mounted"
	grep -v "warning: no file handles" "$WORK/err" >"$WORK/err1" || true
	[ "$(wc -l <"$WORK/err1")" -eq 1 ] && grep -q "'$TD'" "$WORK/err1" ||
		fail "mount with $TD ($how): not one line naming it: $(cat "$WORK/err")"
	[ -z "$(ls -A "$WORK/evil")" ] || fail "the daemon put something in uid $NOBODY_UID's directory"
	rm -rf "$TD"
done
# one the owner made open (an older swafs made it 0755) is made private
as_u1 mkdir -m 0755 "$TD"
SWAFS=$WORK/as-u1 swafs_mount "$UB" "$UM" "allow_other,store=$US"
assert_eq "mode of the owner's own $TD after the mount" "700 $U1_UID" "$(stat -c '%a %u' "$TD")"
swafs_umount "$UM"
rm -rf "$TD"
# with XDG_RUNTIME_DIR the daemon listens there, private to its owner
XDG=/run/user/$U1_UID
mkdir -p "$XDG"
chown "$U1_UID:$U1_GID" "$XDG"
chmod 700 "$XDG"
as_nobody mkdir -m 0777 "$TD"
mkwrap "$XDG"
SWAFS=$WORK/as-u1 swafs_mount "$UB" "$UM" "allow_other,store=$US"
UPID=$SWAFS_PID
USOCK=$XDG/swafs/$(stat -c '%Hd:%Ld' "$UM").sock
[ -S "$USOCK" ] || fail "no socket $USOCK: $(ls -la "$XDG/swafs")"
assert_eq "mode of $XDG/swafs" "700 $U1_UID" "$(stat -c '%a %u' "$XDG/swafs")"
assert_eq "mode of the user's socket" 600 "$(stat -c %a "$USOCK")"
XDG_RUNTIME_DIR=$XDG as_u1 env XDG_RUNTIME_DIR="$XDG" "$SWACTL" checkpoint "$UM" \
	--name u0 >/dev/null || fail "the owner's checkpoint on its mount"
swactl checkpoint "$UM" --name r0 >/dev/null || fail "root's checkpoint on the user's mount"
for who in as_nobody as_u2; do
	$who "$SYSPY" -c 'import socket, sys
socket.socket(socket.AF_UNIX).connect(sys.argv[1])' "$USOCK" 2>/dev/null &&
		fail "$who connected to the user's socket"
done
out=$(as_nobody "$SWACTL" list "$UM" 2>&1) && fail "nobody listed the user's mount: $out"
[[ $out == *"control socket of '$UM' is private to its owner (uid $U1_UID) and root"* ]] ||
	fail "swactl as nobody on the user's mount: $out"

# ---- 2. a forged daemon on the user's fallback path ----------------------------
# the runtime directory went away (a logout): swactl falls back to /tmp
mv "$XDG/swafs" "$XDG/swafs.away"
"${NOBODY[@]}" "$SYSPY" "$HOSTILE" forge "$TD/$(basename "$USOCK")" >"$WORK/forge" 2>&1 &
FPID=$!
ckpt_helper "$FPID"
wait_until 5 grep -qs listening "$WORK/forge" || fail "forger: $(cat "$WORK/forge")"
rc=0
as_u1 "$SWACTL" checkpoint "$UM" --name forged >"$WORK/out" 2>"$WORK/err" || rc=$?
[ "$rc" -ne 0 ] || fail "swactl trusted a daemon forged by uid $NOBODY_UID: $(cat "$WORK/out")"
[ "$(wc -l <"$WORK/err")" -eq 1 ] && grep -q "uid $NOBODY_UID" "$WORK/err" ||
	fail "forged daemon: not one line naming its uid: $(cat "$WORK/err")"
[ ! -s "$WORK/out" ] || fail "forged daemon: printed $(cat "$WORK/out")"
stop_helper "$FPID"
mv "$XDG/swafs.away" "$XDG/swafs"
swafs_umount "$UM"
[ ! -e "$USOCK" ] || fail "the socket $USOCK outlived its daemon"

# ---- 3. 10,000 idle connections against root's mount ---------------------------
swafs_mount "$B" "$M" "allow_other,store=$S,events=$WORK/events"
DPID=$SWAFS_PID
SOCK=/run/swafs/$(stat -c '%Hd:%Ld' "$M").sock
echo data >"$M/f"
AS_U2=(setpriv --reuid="$U2_UID" --regid="$U2_GID" --clear-groups)
"${NOBODY[@]}" prlimit --nofile=12000:12000 "$SYSPY" "$HOSTILE" flood "$SOCK" 6000 \
	>"$WORK/flood.as_nobody" 2>&1 &
ckpt_helper $!
"${AS_U2[@]}" prlimit --nofile=12000:12000 "$SYSPY" "$HOSTILE" flood "$SOCK" 4000 \
	>"$WORK/flood.as_u2" 2>&1 &
ckpt_helper $!
wait_until 60 test -s "$WORK/flood.as_nobody" || fail "flood: $(cat "$WORK/flood.as_nobody")"
wait_until 60 test -s "$WORK/flood.as_u2" || fail "flood: $(cat "$WORK/flood.as_u2")"
log "flood (connected, refused at once): nobody $(cat "$WORK/flood.as_nobody"), $U2 $(cat "$WORK/flood.as_u2")"
# default ctl_conns=512: an eighth, 64, per uid other than root and the owner
for f in "$WORK/flood.as_nobody" "$WORK/flood.as_u2"; do
	read -r conn refused <"$f" || fail "flood: $(cat "$f")"
	[ "$conn" -ge 3900 ] && [ "$refused" -ge $((conn - 64)) ] ||
		fail "flood $f: $conn connected, $refused refused at once (64 may stay)"
done
t0=$(now_ms)
swactl checkpoint "$M" --name under-flood >/dev/null || fail "root's checkpoint under the flood"
dt=$(($(now_ms) - t0))
log "root's checkpoint under 10,000 connections: ${dt} ms; daemon threads $(threads "$DPID"), fds $(daemon_fd_count "$DPID")"
[ "$dt" -lt 1000 ] || fail "root's checkpoint took ${dt} ms under the flood"
[ "$(threads "$DPID")" -lt 64 ] || fail "the daemon runs $(threads "$DPID") threads under the flood"
[ "$(daemon_fd_count "$DPID")" -lt 1000 ] ||
	fail "the daemon holds $(daemon_fd_count "$DPID") descriptors under the flood"
for p in "${_CKPT_HELPERS[@]}"; do stop_helper "$p"; done
_CKPT_HELPERS=()
few_fds() { [ "$(daemon_fd_count "$DPID")" -lt 40 ]; }
wait_until 10 few_fds || fail "the daemon still holds $(daemon_fd_count "$DPID") fds after the flood"

# ---- 4. a slow drip is cut at the request deadline --------------------------------
got=$(as_u2 "$SYSPY" "$HOSTILE" drip "$SOCK" 2)
log "slow drip cut after $got s"
[ "$got" != open ] || fail "a byte every 2 s kept a connection open for 30 s"
awk -v t="$got" 'BEGIN { exit !(t >= 9 && t <= 14) }' ||
	fail "the slow drip was cut after $got s, not at the 10 s deadline"

# ---- 5. accept at the descriptor limit ---------------------------------------------
# a few descriptors to spare (the daemon drops clients with its spare one),
# then a limit below its lowest free descriptor number (not even that
# works: it stops listening a while)
for lim in $(($(daemon_fd_count "$DPID") + 4)) 3; do
	prlimit --pid "$DPID" --nofile=$lim:20000
	"${NOBODY[@]}" "$SYSPY" "$HOSTILE" flood "$SOCK" 40 >"$WORK/flood.emfile" 2>&1 &
	FPID=$!
	ckpt_helper "$FPID"
	wait_until 30 test -s "$WORK/flood.emfile" || fail "flood at EMFILE: $(cat "$WORK/flood.emfile")"
	c0=$(cpu_ticks "$DPID")
	sleep 3
	c1=$(cpu_ticks "$DPID")
	prlimit --pid "$DPID" --nofile=20000:20000
	log "daemon CPU at the descriptor limit $lim: $((c1 - c0)) ticks in 3 s"
	[ $((c1 - c0)) -lt 30 ] || fail "accept at EMFILE (limit $lim) spins: $((c1 - c0)) ticks of CPU in 3 s"
	stop_helper "$FPID"
	wait_until 10 few_fds || fail "the daemon still holds $(daemon_fd_count "$DPID") fds"
	swactl checkpoint "$M" --name "after-emfile$lim" >/dev/null || fail "checkpoint after EMFILE"
done

# ---- 6. the follow cap ---------------------------------------------------------------
# default ctl_follow=16: a quarter, 4, per uid other than root and the owner
exec 7> >(as_nobody "$SYSPY" "$HOSTILE" follow "$SOCK" 6 >"$WORK/fol.nobody")
exec 8> >(as_u2 "$SYSPY" "$HOSTILE" follow "$SOCK" 4 >"$WORK/fol.u2")
exec 9> >("$SYSPY" "$HOSTILE" follow "$SOCK" 10 >"$WORK/fol.root")
wait_until 20 test -s "$WORK/fol.nobody" || fail "follow as nobody"
wait_until 20 test -s "$WORK/fol.u2" || fail "follow as $U2"
wait_until 20 test -s "$WORK/fol.root" || fail "follow as root"
assert_eq "follows of uid $NOBODY_UID (ok busy)" "4 2" "$(cat "$WORK/fol.nobody")"
assert_eq "follows of $U2 (ok busy)" "4 0" "$(cat "$WORK/fol.u2")"
assert_eq "follows of root (ok busy)" "10 0" "$(cat "$WORK/fol.root")"
exec 7>&- 8>&- 9>&-

# ---- 7. what read commands show to other users ------------------------------------
ask() { "$SYSPY" "$HOSTILE" ask "$SOCK" "$1"; }
for who in as_nobody as_u2; do
	assert_eq "raw list as $who" "ok count=3" "$($who "$SYSPY" "$HOSTILE" ask "$SOCK" list)"
	assert_eq "raw status as $who" "ok count=3" "$($who "$SYSPY" "$HOSTILE" ask "$SOCK" status)"
	# a name given tells nothing either: the same answer, there or not
	assert_eq "raw status under-flood as $who" "ok count=3" \
		"$($who "$SYSPY" "$HOSTILE" ask "$SOCK" "status under-flood")"
	assert_eq "raw status nosuch as $who" "ok count=3" \
		"$($who "$SYSPY" "$HOSTILE" ask "$SOCK" "status nosuch")"
	out=$($who "$SWACTL" list "$M" --json) || fail "list --json as $who"
	assert_eq "list --json as $who" "[]" "$(printf '%s' "$out" | tr -d ' \n')"
	out=$($who "$SWACTL" status "$M" 2>&1) || true
	[[ $out != *under-flood* ]] || fail "status as $who names a checkpoint: $out"
	$who "$SWACTL" events "$M" >"$WORK/ev.$who" || fail "events as $who"
	grep -q '"event":"reached"}$' "$WORK/ev.$who" || fail "events as $who: $(head -3 "$WORK/ev.$who")"
	grep -vq '^{"time":"[^"]*","event":"[a-z-]*"}$' "$WORK/ev.$who" &&
		fail "events as $who show more than time and kind: $(grep -v '^{"time":"[^"]*","event":"[a-z-]*"}$' "$WORK/ev.$who" | head -3)"
	rc=0
	$who "$SWACTL" history "$M" >"$WORK/out" 2>"$WORK/err" || rc=$?
	[ "$rc" -eq 1 ] && [ ! -s "$WORK/out" ] && grep -q "permission denied" "$WORK/err" ||
		fail "history as $who: exit $rc: $(cat "$WORK/out" "$WORK/err")"
done
ask list | grep -q "^name=under-flood " || fail "root does not see the checkpoint names: $(ask list)"
"$SWACTL" events "$M" | grep -q '"name":"under-flood"' || fail "root's events lack the names"

# ---- 8. boundary-wait holders: pid and uid; the bound on other users' ----------------
mkdir "$WORK/h"
chown "$NOBODY_UID:$NOBODY_GID" "$WORK/h"
ln -s "$SYSPY" "$WORK/h/sshd"	# the holder's command name: "sshd"
"${NOBODY[@]}" "$WORK/h/sshd" "$IT_DIR/txn_hold.py" hold "$M" "$WORK/h/ready" "$WORK/h/go" \
	>/dev/null 2>"$WORK/h/err" &
HPID=$!
ckpt_helper "$HPID"
wait_until 10 test -e "$WORK/h/ready" || fail "uid $NOBODY_UID did not get the txn lock: $(cat "$WORK/h/err")"
rc=0
swactl checkpoint "$M" --name held --boundary-wait 1 >/dev/null 2>"$WORK/err" || rc=$?
[ "$rc" -eq 3 ] || fail "boundary wait on uid $NOBODY_UID's holder: exit $rc: $(cat "$WORK/err")"
grep -q "pid $HPID (uid $NOBODY_UID)" "$WORK/err" && ! grep -q sshd "$WORK/err" ||
	fail "the holder is not named by pid and uid: $(cat "$WORK/err")"
t0=$(now_ms)
swactl checkpoint "$M" --name past-others --boundary-wait 30 --others-wait 1 >/dev/null 2>"$WORK/err" ||
	fail "--others-wait 1 with uid $NOBODY_UID holding: $(cat "$WORK/err")"
dt=$(($(now_ms) - t0))
[ "$dt" -ge 900 ] && [ "$dt" -lt 5000 ] || fail "--others-wait 1 took $dt ms"
"$PYTHON" "$IT_DIR/txn_hold.py" hold "$M" "$WORK/h/rready" "$WORK/h/rgo" >/dev/null &
RPID=$!
ckpt_helper "$RPID"
wait_until 10 test -e "$WORK/h/rready" || fail "root did not get the txn lock"
rc=0
swactl checkpoint "$M" --name roots-holder --boundary-wait 2 --others-wait 0.5 >/dev/null \
	2>"$WORK/err" || rc=$?
[ "$rc" -eq 3 ] && grep -q "pid $RPID (uid 0)" "$WORK/err" ||
	fail "root's holder did not delay the checkpoint past --others-wait: exit $rc: $(cat "$WORK/err")"
touch "$WORK/h/go" "$WORK/h/rgo"
wait "$HPID" "$RPID" || fail "the holders failed"
swafs_umount "$M"
[ ! -e "$SOCK" ] || fail "the socket $SOCK outlived its daemon"
log ok
