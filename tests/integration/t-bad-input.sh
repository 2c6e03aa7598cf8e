#!/bin/bash
# Bad input to swactl and to the control socket: each refusal is exactly
# one line on stderr naming the bad value, nothing on stdout, and the
# documented exit code (2 usage, 1 failed); a daemon that does not answer
# (SIGSTOPped) makes swactl fail within SWACTL_TIMEOUT instead of hanging;
# raw malformed requests (over-long, NUL byte, bad escapes, too many
# arguments, unknown verb, a client that never finishes its line) get an
# error and the daemon keeps serving; bad sizes in mount options are
# refused in one line.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt S=$WORK/store
mkdir -p "$B" "$M" "$S" "$WORK/plain" "$WORK/v"
echo data >"$B/f"
echo file >"$WORK/afile"
# timeout=0: attributes are never cached, so any stat of MNT goes to the
# daemon; swactl must still not wait for a stopped one
swafs_mount "$B" "$M" "events=$WORK/events,store=$S,timeout=0"
DPID=$SWAFS_PID
STOPPED=
# a daemon left stopped would keep its mount from being cleaned up
trap 'rc=$?; set +e; [ -z "$STOPPED" ] || kill -CONT "$STOPPED"; _ckpt_ret $rc; _ckpt_cleanup' EXIT

# bad WANT_RC WORD CMD...: CMD exits WANT_RC, prints nothing on stdout and
# exactly one line on stderr that contains WORD
bad() {
	local want=$1 word=$2 rc=0 n
	shift 2
	timeout 60 "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
	[ "$rc" -ne 124 ] || fail "'$*' hung (killed after 60 s)"
	[ "$rc" -eq "$want" ] ||
		fail "'$*': exit $rc, expected $want: $(cat "$WORK/err")"
	[ ! -s "$WORK/out" ] || fail "'$*': printed on stdout: $(cat "$WORK/out")"
	n=$(awk 'END { print NR }' "$WORK/err")
	[ "$n" -eq 1 ] || fail "'$*': $n lines on stderr, expected one: $(cat "$WORK/err")"
	grep -qF -- "$word" "$WORK/err" ||
		fail "'$*': the error does not mention '$word': $(cat "$WORK/err")"
}
X65=$(printf 'x%.0s' {1..65})

# ---- usage: exit 2 ---------------------------------------------------------
bad 2 frobnicate "$SWACTL" frobnicate
bad 2 "no command" "$SWACTL"
bad 2 "a/b" "$SWACTL" checkpoint "$M" --name a/b
bad 2 "$X65" "$SWACTL" checkpoint "$M" --name "$X65"
bad 2 "bad?name" "$SWACTL" checkpoint "$M" --name $'bad\nname'
bad 2 "sp ace" "$SWACTL" mount "$M" "sp ace" "$WORK/v"
bad 2 "'..'" "$SWACTL" release "$M" ..
bad 2 "'.'" "$SWACTL" release "$M" .
bad 2 "abc" "$SWACTL" checkpoint "$M" --name c --wait abc
bad 2 "'-1'" "$SWACTL" checkpoint "$M" --name c --wait -1
bad 2 "1e3" "$SWACTL" checkpoint "$M" --name c --wait 1e3
bad 2 "99999999999" "$SWACTL" checkpoint "$M" --name c --wait 99999999999
bad 2 "0.5.5" "$SWACTL" checkpoint "$M" --name c --wait 0.5.5
bad 2 "bogus" "$SWACTL" checkpoint "$M" --name c --retain bogus
bad 2 "--bogus" "$SWACTL" checkpoint "$M" --name c --bogus
bad 2 "--wait" "$SWACTL" checkpoint "$M" --name c --wait
bad 2 "mount point" "$SWACTL" checkpoint --name c
bad 2 "wants --name NAME" "$SWACTL" checkpoint "$M"
bad 2 "unknown checkpoint option '-x'" "$SWACTL" checkpoint "$M" --name c -x 1
bad 2 "'--name' wants a value" "$SWACTL" checkpoint "$M" --name
bad 2 "'--count' wants a value" "$SWACTL" sync start g --count
bad 2 "unknown sync start option '-q'" "$SWACTL" sync start g -q
bad 2 "MNT [--json]" "$SWACTL" list
bad 2 "MNT [--json]" "$SWACTL" list "$M" extra
bad 2 "unknown events option '--bogus'" "$SWACTL" events "$M" --bogus
bad 2 "MNT NAME" "$SWACTL" release "$M"
bad 2 "MNT NAME" "$SWACTL" release "$M" a b
bad 2 "MNT NAME DIR" "$SWACTL" mount "$M" c
bad 2 "MNT NAME DIR" "$SWACTL" mount "$M" c "$WORK/v" extra
SWACTL_TIMEOUT=soon bad 2 soon "$SWACTL" list "$M"
SWACTL_TIMEOUT=-3 bad 2 "'-3'" "$SWACTL" list "$M"

# ---- not a swafs live tree: exit 1, the path named ------------------------------
bad 1 "$WORK/plain" "$SWACTL" list "$WORK/plain"
bad 1 "$WORK/plain" "$SWACTL" checkpoint "$WORK/plain" --name c
bad 1 "$WORK/plain" "$SWACTL" release "$WORK/plain" c
bad 1 "$WORK/plain" "$SWACTL" events "$WORK/plain"
bad 1 "$WORK/nonexistent" "$SWACTL" list "$WORK/nonexistent"
bad 1 "$WORK/nonexistent" "$SWACTL" checkpoint "$WORK/nonexistent" --name c
bad 1 "$WORK/afile" "$SWACTL" list "$WORK/afile"
bad 1 "$B" "$SWACTL" list "$B"
bad 1 "nosuch" "$SWACTL" release "$M" nosuch
bad 1 "$WORK/nonexistent/v" "$SWACTL" mount "$M" c "$WORK/nonexistent/v"
bad 1 "checkpoint p not taken: the --pre command exited 3" \
	"$SWACTL" checkpoint "$M" --name p --pre 'exit 3'
bad 1 "checkpoint p not taken: the --pre command killed by signal 9" \
	"$SWACTL" checkpoint "$M" --name p --pre 'kill -9 $$'
assert_eq "checkpoints after the refusals" "" "$(swactl list "$M")"

# ---- raw requests on the socket ---------------------------------------------------
SOCK=$(find /run/swafs -maxdepth 1 -name "$(stat -c '%Hd:%Ld' "$M").sock" 2>/dev/null)
[ -S "$SOCK" ] || fail "no control socket for '$M' under /run/swafs"
# raw BYTES_EXPR: send the Python bytes expression, print the reply
raw() {
	"$PYTHON" - "$SOCK" "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sys.argv[1])
try:
    s.sendall(eval(sys.argv[2]))
except (BrokenPipeError, ConnectionResetError):
    pass  # the daemon stopped reading at its limit; its answer is queued
out = b""
while True:
    try:
        b = s.recv(65536)
    except ConnectionResetError:
        break  # after the answer: the daemon closed with our excess unread
    if not b:
        break
    out += b
sys.stdout.write(out.decode(errors="replace"))
EOF
}
# raw_err BYTES_EXPR WANT: the reply is the one error line WANT
raw_err() {
	local got
	got=$(raw "$1") || fail "raw request $1: the client failed"
	assert_eq "reply to $1" "$2" "$got"
	pid_alive "$DPID" || fail "the daemon died on the raw request $1"
	swactl list "$M" >/dev/null || fail "the daemon stopped serving after $1"
}
raw_err 'b"x" * 20000 + b"\n"' "err 2 malformed request"
raw_err 'b"list\0\n"' "err 2 malformed request"
raw_err 'b"\0\n"' "err 2 malformed request"
raw_err 'b"\n"' "err 2 malformed request"
raw_err 'b"list  \n"' "err 2 malformed request"
raw_err 'b"release %zz\n"' "err 2 malformed request"
raw_err 'b"release a%00b\n"' "err 2 malformed request"
raw_err 'b"list" + b" a" * 48 + b"\n"' "err 2 malformed request"
raw_err 'b"frobnicate\n"' "err 2 unknown request"
raw_err 'b"list extra\n"' "err 2 unknown request"
raw_err 'b"events 18446744073709551616 0\n"' "err 2 malformed events request"
raw_err 'b"events 0 2\n"' "err 2 malformed events request"
raw_err 'b"events -x 0\n"' "err 2 malformed events request"
raw_err 'b"events 0 01\n"' "err 2 malformed events request"
raw_err 'b"checkpoint c saved 0 nomax off ../x\n"' \
	"err 2 --path '../x' leads outside the tree or through a symlink; give a path inside it"
raw_err 'b"checkpoint c saved 2 nomax\n"' "err 2 malformed checkpoint request"
raw_err 'b"checkpoint c saved 0 -1 off\n"' "err 2 malformed checkpoint request"
raw_err 'b"mount c relative/dir\n"' "err 2 malformed mount request"
# a client that never finishes its line does not block the others
exec 7< <("$PYTHON" -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b"list")
print("connected", flush=True)
time.sleep(30)' "$SOCK")
IDLE=$!
ckpt_helper "$IDLE"
read -r -t 10 _ <&7 || fail "the idle client did not connect"
timeout 10 "$SWACTL" list "$M" >/dev/null || fail "a half-sent request blocks other clients"
stop_helper "$IDLE"
exec 7<&-
[ -z "$(swactl list "$M")" ] || fail "raw requests created checkpoints: $(swactl list "$M")"

# ---- a daemon that does not answer ---------------------------------------------
swactl checkpoint "$M" --name c1 >/dev/null || fail "checkpoint before the stop"
kill -STOP "$DPID"
STOPPED=$DPID
# bad_slow WORD CMD...: like bad 1, and done within 2 + 8 s
bad_slow() {
	local t0 dt
	t0=$(date +%s%N)
	SWACTL_TIMEOUT=2 bad 1 "$@"
	dt=$((($(date +%s%N) - t0) / 1000000))
	[ "$dt" -ge 1900 ] || fail "'${*:2}' failed after $dt ms, before the 2 s timeout: $(cat "$WORK/err")"
	[ "$dt" -lt 10000 ] || fail "'${*:2}' took $dt ms with SWACTL_TIMEOUT=2"
	log "stopped daemon: ${*:2}: $(cat "$WORK/err") (${dt} ms)"
}
bad_slow "within 2 s" "$SWACTL" list "$M"
bad_slow "within 2 s" "$SWACTL" events "$M"
bad_slow "within 2 s" "$SWACTL" release "$M" c1
bad_slow "within 2 s" "$SWACTL" mount "$M" c1 "$WORK/v"
bad_slow "within 3 s" "$SWACTL" checkpoint "$M" --name c2 --wait 1
kill -CONT "$DPID"
STOPPED=
# the daemon answers again; the requests whose clients gave up are not
# carried out late (c1 is not released, no view appears)
wait_until 10 eval '[ "$(swactl list "$M" --json | grep -o "\"name\":\"[^\"]*\"")" = "\"name\":\"c1\"" ]' ||
	fail "after SIGCONT: $(swactl list "$M" --json)"
is_fuse_mount "$WORK/v" && fail "a view was mounted by a request that timed out"
swactl release "$M" c1 || fail "release after SIGCONT"
swafs_umount "$M"

# ---- bad sizes in mount options (the daemon: one line, exit 1) ---------------------
for opt in store_mem=1X store_mem=-1 store_max=12Q store_max=0 "store_max=1 M" \
	block_size=abc block_size=3 on_full=maybe; do
	rc=0
	timeout 30 "$SWAFS" "$B" "$M" -f -o "$opt" >"$WORK/out" 2>"$WORK/err" || rc=$?
	[ "$rc" -eq 1 ] || fail "-o '$opt': exit $rc, expected 1: $(cat "$WORK/err")"
	[ "$(awk 'END { print NR }' "$WORK/err")" -eq 1 ] ||
		fail "-o '$opt': not one line: $(cat "$WORK/err")"
	grep -qF -- "${opt#*=}" "$WORK/err" || [ -z "${opt#*=}" ] ||
		fail "-o '$opt': the value is not named: $(cat "$WORK/err")"
	is_fuse_mount "$M" && fail "-o '$opt' mounted"
done

# ---- rails: a store that is not there, a second daemon on a live tree -------
bad 1 "store directory '$WORK/nostore': No such file" \
	"$SWAFS" "$B" "$M" -f -o "store=$WORK/nostore"
[ ! -e "$WORK/nostore" ] || fail "store=DIR made a directory that was not there"
bad 1 "store directory '$WORK/afile' is not a directory" \
	"$SWAFS" "$B" "$M" -f -o "store=$WORK/afile"
is_fuse_mount "$M" && fail "a bad store= mounted"
swafs_mount "$B" "$M" "store=$S"
bad 1 "'$M' is already a swafs live tree" "$SWAFS" "$B" "$M" -f
bad 1 "'$M' is already a swafs live tree" "$SWAFS" "$M" "$M" -f
assert_eq "mounts on '$M' after the refusals" 1 "$(fuse_mount_count "$M")"
mkdir -p "$M/sub/inner"
bad 1 "inside a swafs live tree, not its mount point" \
	"$SWACTL" checkpoint "$M/sub" --name whole
assert_eq "checkpoints after a subdirectory was given" "" "$(swactl list "$M")"
ckpt_take "$M" here
bad 1 "lies inside the live tree" "$SWACTL" mount "$M" here "$M/sub/inner"
is_fuse_mount "$M/sub/inner" && fail "a view was mounted inside the live tree"
bad 1 "'$WORK/afile': Not a directory" "$SWACTL" mount "$M" here "$WORK/afile"
swactl release "$M" here
# a daemon that died: say so and how to recover
kill -KILL "$SWAFS_PID"
wait "$SWAFS_PID" 2>/dev/null || true
bad 1 "is gone and left its mount behind; 'umount -l $M'" "$SWACTL" list "$M"
umount -l "$M"
log ok
