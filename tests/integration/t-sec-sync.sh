#!/bin/bash
# Sync groups against other local users (issue 17 item 4).  (1) A user
# squatting the group's old abstract name @swafs-sync-ID with a forged
# coordinator (it lists a fake group and never answers end): root's start,
# list, end and jobs reach only root's own coordinator.  (2) Another user's
# directory, or symlink, at /tmp/swafs-sync-UID: that uid's start refuses
# it with one line and its jobs join nothing there.  (3) A coordinator not
# run by its directory's owner is refused by the job.  (4) 128 connections
# each from nobody and a test user, reconnecting as they are dropped, leave
# root's jobs their slots.  (5) A coordinator that stops answering: sync
# end gives up within its deadline (10 s).
. "$(dirname "$0")/sec-lib.sh"

G=s$$
for i in 1 2; do
	mkdir -p "$WORK/b$i" "$WORK/m$i"
	swafs_mount "$WORK/b$i" "$WORK/m$i" "store=$WORK"
	echo "$i" >"$WORK/m$i/f"
done

# start ID ARGS... as WHO (root if omitted via "root"): COORD is its pid
start() {
	local who=$1 out rc=0 run=()
	shift
	[ "$who" = root ] || run=(as "$who")
	out=$("${run[@]}" "$SWACTL" sync start "$@" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || fail "sync start $* as $who: exit $rc: $out"
	COORD=${out##*coordinator pid }
	sec_coord "$COORD"
}

# expect_rc RC TEXT [UID] CMD...: CMD (as UID if a number) exits RC within
# 30 s and says TEXT, in one line
expect_rc() {
	local want=$1 text=$2 out rc=0
	shift 2
	AS_ARGV=()
	if [[ $1 =~ ^[0-9]+$ ]]; then
		as_argv "$1"
		shift
	fi
	out=$(timeout 30 "${AS_ARGV[@]}" "$@" 2>&1) || rc=$?
	[ "$rc" -eq "$want" ] || fail "$*: exit $rc (expected $want): $out"
	grep -qF -- "$text" <<<"$out" || fail "$*: no '$text' in: $out"
	[ "$(wc -l <<<"$out")" -eq 1 ] || fail "$*: not one line: $out"
}

# ---- 1. a squatter of the abstract name ---------------------------------------------
as_bg "$TU1_UID" "$SYSPY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0swafs-sync-" + sys.argv[1])
s.listen(64)
held = []
while True:
    c, _ = s.accept()
    held.append(c)              # never answers "end" or a join
    if c.recv(64).startswith(b"info"):
        c.sendall(b"ok id=%s count=9 joined=9 age_s=1 wait_left_s=9 pid=1 uid=0\n"
                  % sys.argv[1].encode())
' "$G.sq"
sleep 0.5
start root "$G.sq" --count 2 --wait 60
out=$(timeout 20 "$SWACTL" sync list) || fail "sync list: exit $?: $out"
[[ $out == *"$G.sq"*"0 of 2 jobs joined"*"coordinator pid $COORD"* ]] ||
	fail "sync list does not show root's group: $out"
[[ $out != *"9 of 9"* ]] || fail "sync list shows the forged group: $out"
timeout 60 "$SWACTL" checkpoint "$WORK/m1" --name q --sync "$G.sq" >"$WORK/j1" 2>&1 &
J1=$!
timeout 60 "$SWACTL" checkpoint "$WORK/m2" --name q --sync "$G.sq" >"$WORK/j2" 2>&1 ||
	fail "root's second job: $(cat "$WORK/j2")"
wait "$J1" || fail "root's first job: $(cat "$WORK/j1")"
swactl release "$WORK/m1" q
swactl release "$WORK/m2" q
start root "$G.sq" --count 1 --wait 60
expect_rc 0 "sync group $G.sq ended: 0 jobs were waiting" "$SWACTL" sync end "$G.sq"
as "$TU1_UID" "$SYSPY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("/run/swafs/sync/" + sys.argv[1] + ".sock")' "$G.x" 2>/dev/null &&
	fail "uid $TU1_UID could make a socket in /run/swafs/sync"

# ---- 2. a user's directory squatted --------------------------------------------------
UD=/tmp/swafs-sync-$TU1_UID
rm -rf "$UD"
as "$TU2_UID" mkdir -m 777 "$UD"
expect_rc 1 "sync group directory '$UD' is not safe to use: owner uid $TU2_UID" \
	"$TU1_UID" "$SWACTL" sync start "$G.ud" --count 1
start "$TU2_UID" "$G.tu2" --count 1 --wait 60
as "$TU2_UID" "$SYSPY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])' "$UD/$G.ud.sock"
rc=0
as_argv "$TU1_UID"
out=$(timeout 30 "${AS_ARGV[@]}" "$SWACTL" sync end "$G.ud" 2>&1) || rc=$?
[ "$rc" -eq 6 ] && [[ $out == *"not safe to use"*"$G.ud not started"* ]] ||
	fail "uid $TU1_UID's end in a squatted directory: exit $rc: $out"
rm -rf "$UD"
as "$TU2_UID" ln -s "/tmp/swafs-sync-$TU2_UID" "$UD"
expect_rc 1 "sync group directory '$UD' is a symlink" \
	"$TU1_UID" "$SWACTL" sync start "$G.ud" --count 1
[ ! -e "/tmp/swafs-sync-$TU2_UID/$G.ud.sock" ] || fail "started in uid $TU2_UID's directory"
rm -f "$UD"
expect_rc 0 "0 jobs were waiting" "$TU2_UID" "$SWACTL" sync end "$G.tu2"
start "$TU1_UID" "$G.ok" --count 1 --wait 60
assert_eq "mode and owner of $UD" "700 $TU1_UID" "$(stat -c '%a %u' "$UD")"
expect_rc 0 "0 jobs were waiting" "$TU1_UID" "$SWACTL" sync end "$G.ok"

# ---- 3. a coordinator that is not its directory's owner --------------------------------
"$SYSPY" -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
s.listen(8)
while True:
    c, _ = s.accept()
    try:
        c.recv(64)
        c.sendall(b"joined 1 1 60000\ngo\ncommit\n")
    except OSError:
        pass
' "$UD/$G.fake.sock" &
ckpt_helper $!
wait_until 10 test -S "$UD/$G.fake.sock" || fail "no fake coordinator"
expect_rc 1 "its coordinator runs as uid 0, not as its directory's owner (uid $TU1_UID)" \
	"$TU1_UID" "$SWACTL" sync end "$G.fake"
expect_rc 1 "its coordinator runs as uid 0, not as its directory's owner (uid $TU1_UID)" \
	"$TU1_UID" "$SWACTL" checkpoint "$WORK/m1" --name fk --sync "$G.fake"
out=$("$SWACTL" sync list 2>/dev/null) || fail "sync list: exit $?"
[[ $out != *"$G.fake"* ]] || fail "sync list shows the fake group: $out"

# ---- 4. a flood of other users' connections ----------------------------------------------
FLOOD='
import os, socket, sys, time
path = "/run/swafs/sync/%s.sock" % sys.argv[1]
if not os.path.exists(path):
    path = "\0swafs-sync-" + sys.argv[1]    # where coordinators listened before
held = []
while True:
    held = [c for c in held if c.fileno() >= 0]
    try:
        while len(held) < 128:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(path)
            held.append(c)
    except OSError:
        pass
    for c in held:
        c.setblocking(False)
        try:
            if c.recv(1) == b"":
                c.close()
        except BlockingIOError:
            pass
        except OSError:
            c.close()
    time.sleep(0.05)
'
start root "$G.fl" --count 2 --wait 60
as_bg "$TU1_UID" "$SYSPY" -c "$FLOOD" "$G.fl"
as_bg "$NOBODY_UID" "$SYSPY" -c "$FLOOD" "$G.fl"
sleep 2
n=$(ls -l "/proc/$COORD/fd" 2>/dev/null | grep -c socket)
log "coordinator holds $n sockets under the flood"
timeout 60 "$SWACTL" checkpoint "$WORK/m1" --name fl --sync "$G.fl" >"$WORK/j1" 2>&1 &
J1=$!
timeout 60 "$SWACTL" checkpoint "$WORK/m2" --name fl --sync "$G.fl" >"$WORK/j2" 2>&1 ||
	fail "root's job under a flood: $(cat "$WORK/j2")"
wait "$J1" || fail "root's job under a flood: $(cat "$WORK/j1")"
[ "$n" -le 30 ] || fail "the flood holds $n of the coordinator's sockets"
swactl release "$WORK/m1" fl
swactl release "$WORK/m2" fl

# ---- 5. a coordinator that stops answering ---------------------------------------------
start root "$G.st" --count 1 --wait 120
kill -STOP "$COORD"
t0=$(date +%s)
expect_rc 1 "sync group $G.st: its coordinator went away" "$SWACTL" sync end "$G.st"
[ $(($(date +%s) - t0)) -le 15 ] || fail "sync end waited $(($(date +%s) - t0)) s"
kill -CONT "$COORD"	# it reads the end it was sent, and goes
wait_until 10 pid_gone "$COORD" || fail "coordinator $COORD still running"
log ok
