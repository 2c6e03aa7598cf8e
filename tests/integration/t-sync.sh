#!/bin/bash
# Sync groups (DESIGN.md 6): separate `swactl checkpoint MNT --sync ID`
# jobs reach one common instant once `--count` of them have joined.
# Proved as in t-ckpt-multi.sh: one writer bumps a counter in a file on
# every mount, m1 first, m4 last; at a common instant the views hold a
# state the writer passed through: every value equal, or a leading run of
# mounts one ahead.  One job runs a --pre 'sleep' after "go", so a
# coordinator that let any job commit before all are held would show the
# writer's progress in between.  Then every error with its exit code and
# no checkpoint left anywhere, jobs killed before and after "go", `sync
# end`, a foreign uid, the coordinator gone after its group, the events.
. "$(dirname "$0")/ckpt-lib.sh"

G=t$$	# root's group names are machine-wide: ours carry our pid
COORDS=()
# nobody's jobs make nobody's sync directory; remove it if we made it
NOBODY_SYNC=/tmp/swafs-sync-$NOBODY_UID
[ -e "$NOBODY_SYNC" ] && NOBODY_SYNC=

# coordinators are no children of ours: at exit kill those still running
_sync_cleanup() {
	local rc=$? p
	set +e
	for p in "${COORDS[@]}"; do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" != swafs-sync ] ||
			kill -KILL "$p" 2>/dev/null
	done
	[ -z "$NOBODY_SYNC" ] || rm -rf "$NOBODY_SYNC"
	_ckpt_ret "$rc"
	_ckpt_cleanup
}
trap _sync_cleanup EXIT

# start_group ID ARGS...: sync start; COORD is the coordinator's pid
start_group() {
	local out rc=0
	out=$("$SWACTL" sync start "$@" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || fail "sync start $*: exit $rc: $out"
	COORD=${out##*coordinator pid }
	[[ $COORD =~ ^[0-9]+$ ]] || fail "sync start printed no pid: $out"
	COORDS+=("$COORD")
}

# job I MNT NAME ID [OPTS...]: a job in the background; output in
# $WORK/job.I, pid in JOB[I]
declare -a JOB
job() {
	local i=$1 mnt=$2 name=$3 id=$4
	shift 4
	"$SWACTL" checkpoint "$mnt" --name "$name" --sync "$id" "$@" \
		>"$WORK/job.$i" 2>&1 &
	JOB[i]=$!
	ckpt_helper "${JOB[i]}"
}

# job_done I RC [TEXT]: job I exits RC and its output holds TEXT
job_done() {
	local rc=0
	wait_until 60 pid_gone "${JOB[$1]}" || fail "job $1 still running after 60 s"
	wait "${JOB[$1]}" || rc=$?
	[ "$rc" -eq "$2" ] || fail "job $1: exit $rc (expected $2): $(cat "$WORK/job.$1")"
	[ -z "${3:-}" ] || grep -qF -- "$3" "$WORK/job.$1" ||
		fail "job $1: no '$3' in: $(cat "$WORK/job.$1")"
}

# joined ID: how many jobs joined group ID, or 'none' if it is not active
joined() {
	"$SWACTL" sync list --json | "$PYTHON" -c '
import json, sys
g = [g for g in json.load(sys.stdin) if g["id"] == sys.argv[1]]
print(g[0]["joined"] if g else "none")' "$1"
}
wait_joined() {
	_WJ=("$1" "$2")	# wait_until evals in its own function: no $1 there
	wait_until 20 eval '[ "$(joined "${_WJ[0]}")" = "${_WJ[1]}" ]' ||
		fail "group $1: $(joined "$1") joined, expected $2"
}
coord_gone() {
	wait_until 10 pid_gone "$1" || fail "coordinator $1 outlived its group"
}
absent() {
	local m
	for m in "${@:2}"; do
		[ "$(ckpt_field "$m" "$1" name)" = absent ] ||
			fail "checkpoint $1 left on $m"
	done
}

# expect_rc RC TEXT CMD...: CMD exits RC and says TEXT
expect_rc() {
	local want=$1 text=$2 out rc=0
	shift 2
	out=$("$@" 2>&1) || rc=$?
	[ "$rc" -eq "$want" ] || fail "$*: exit $rc (expected $want): $out"
	grep -qF -- "$text" <<<"$out" || fail "$*: no '$text' in: $out"
}

M=()
for i in 1 2 3 4; do
	mkdir -p "$WORK/b$i" "$WORK/m$i"
	swafs_mount "$WORK/b$i" "$WORK/m$i" "store=$WORK"
	printf '%012d\n' 0 >"$WORK/m$i/c"
	M+=("$WORK/m$i")
done

as_nobody() { setpriv --reuid=$NOBODY_UID --regid=$NOBODY_GID --clear-groups "$@"; }

# ---- errors ---------------------------------------------------------
start_group "$G.a" --count 2 --wait 30
start_group "$G.n" --count 2 --wait nomax
"$SWACTL" sync list --json | "$PYTHON" -c '
import json, sys
g = {g["id"]: g for g in json.load(sys.stdin)}
a, n = g[sys.argv[1]], g[sys.argv[2]]
for x in (a, n):
    assert isinstance(x["age_s"], int) and "age" not in x, x
assert 0 < a["wait_left_s"] <= 30 and n["wait_left_s"] is None, (a, n)' "$G.a" "$G.n" ||
	fail "sync list --json: $("$SWACTL" sync list --json)"
"$SWACTL" sync list | grep -q "^$G.n .*wait left nomax " ||
	fail "sync list: $("$SWACTL" sync list)"
expect_rc 0 "0 jobs were waiting" "$SWACTL" sync end "$G.n"
expect_rc 5 "sync group $G.a already started" "$SWACTL" sync start "$G.a" --count 3
expect_rc 0 "0 jobs were waiting" "$SWACTL" sync end "$G.a"
coord_gone "$COORD"
expect_rc 6 "sync group $G.a not started" "$SWACTL" checkpoint "${M[0]}" --name x --sync "$G.a"
expect_rc 6 "sync group $G.a not started" "$SWACTL" sync end "$G.a"
absent x "${M[0]}"
expect_rc 2 "invalid --count" "$SWACTL" sync start "$G.b" --count 65
expect_rc 2 "invalid --wait" "$SWACTL" sync start "$G.b" --count 2 --wait 1x
expect_rc 2 "invalid sync group ID" "$SWACTL" checkpoint "${M[0]}" --name x --sync 'a/b'

# in use: both jobs joined, the first still in its --pre after "go"
start_group "$G.use" --count 2 --wait 60
job 1 "${M[0]}" u1 "$G.use" --pre 'sleep 3'
job 2 "${M[1]}" u2 "$G.use"
wait_joined "$G.use" 2
expect_rc 7 "sync group $G.use in use: all 2 jobs have joined" \
	"$SWACTL" checkpoint "${M[2]}" --name u3 --sync "$G.use"
job_done 1 0 "checkpoint u1 taken on ${M[0]}"
job_done 2 0 "checkpoint u2 taken on ${M[1]}"
absent u3 "${M[2]}"
coord_gone "$COORD"

# wait time exceeded: exit 3 for every job, nothing kept, no coordinator
start_group "$G.slow" --count 3 --wait 2
job 1 "${M[0]}" s "$G.slow"
job 2 "${M[1]}" s "$G.slow"
job_done 1 3 "sync group $G.slow: wait time exceeded: 2 of 3 jobs joined"
job_done 2 3 "sync group $G.slow: wait time exceeded: 2 of 3 jobs joined"
coord_gone "$COORD"
absent s "${M[0]}" "${M[1]}"

# a job killed before all joined frees its slot; a new one completes
start_group "$G.kill" --count 2 --wait 60
job 1 "${M[0]}" k "$G.kill"
wait_joined "$G.kill" 1
stop_helper "${JOB[1]}"
wait_joined "$G.kill" 0
job 2 "${M[1]}" k "$G.kill"
job 3 "${M[2]}" k "$G.kill"
job_done 2 0 "checkpoint k taken on ${M[1]}"
job_done 3 0 "checkpoint k taken on ${M[2]}"
coord_gone "$COORD"
absent k "${M[0]}"
swactl release "${M[1]}" k
swactl release "${M[2]}" k

# a job killed after "go" (in its --pre): the held job aborts, the tree
# it held is writable again
start_group "$G.late" --count 2 --wait 60
job 1 "${M[0]}" l "$G.late" --pre 'sleep 2'
job 2 "${M[1]}" l "$G.late"
wait_joined "$G.late" 2
sleep 0.5
stop_helper "${JOB[1]}"
job_done 2 1 "sync group $G.late: another job of the group failed"
coord_gone "$COORD"
absent l "${M[0]}" "${M[1]}"
timeout 10 sh -c "echo x >'${M[1]}/after'" || fail "m2 still held after the group failed"

# a job held longer than a daemon's 10 s receive timeout stays held (the
# job sends "hold") while another job's --pre runs
start_group "$G.hold" --count 2 --wait 60
job 1 "${M[0]}" h "$G.hold"
job 2 "${M[1]}" h "$G.hold" --pre 'sleep 12'
job_done 1 0 "checkpoint h taken on ${M[0]}"
job_done 2 0 "checkpoint h taken on ${M[1]}"
coord_gone "$COORD"
swactl release "${M[0]}" h
swactl release "${M[1]}" h

# sync end: waiting jobs fail, the coordinator goes
start_group "$G.end" --count 3 --wait 60
job 1 "${M[0]}" e "$G.end"
job 2 "${M[1]}" e "$G.end"
wait_joined "$G.end" 2
expect_rc 0 "sync group $G.end ended: 2 jobs were waiting" "$SWACTL" sync end "$G.end"
job_done 1 1 "sync group $G.end ended before its instant"
job_done 2 1 "sync group $G.end ended before its instant"
coord_gone "$COORD"
[ "$(joined "$G.end")" = none ] || fail "sync list still shows $G.end"
absent e "${M[0]}" "${M[1]}"

# another uid may neither join nor end a root group
start_group "$G.perm" --count 1 --wait 60
expect_rc 1 "permission denied: only root and the user who started it" as_nobody "$SWACTL" checkpoint "${M[0]}" --name p --sync "$G.perm"
expect_rc 1 "permission denied: only root and the user who started it" as_nobody "$SWACTL" sync end "$G.perm"
[ "$(joined "$G.perm")" = 0 ] || fail "group $G.perm changed by another uid"
expect_rc 0 "0 jobs were waiting" "$SWACTL" sync end "$G.perm"
coord_gone "$COORD"
absent p "${M[0]}"

# a job whose tree refuses it (no swafs tree) frees its slot even as the
# last to join: the group waits for another job and completes
start_group "$G.bad" --count 2 --wait 60
job 1 "${M[0]}" b "$G.bad"
wait_joined "$G.bad" 1
mkdir -p "$WORK/plain"
job 2 "$WORK/plain" b "$G.bad"
job_done 2 1 "checkpoint b not joined to sync group $G.bad: a tree refused it"
grep -qF "'$WORK/plain' is not a swafs live tree" "$WORK/job.2" ||
	fail "job 2 did not say why: $(cat "$WORK/job.2")"
wait_joined "$G.bad" 1
job 3 "${M[1]}" b "$G.bad"
job_done 1 0 "checkpoint b taken on ${M[0]}"
job_done 3 0 "checkpoint b taken on ${M[1]}"
coord_gone "$COORD"
swactl release "${M[0]}" b
swactl release "${M[1]}" b

# the same for a uid that may join the group but not change the mount
# (only root may mount here, so no job of that uid can complete a group:
# the group must stay, with its slot free); allow_other lets it reach m6
mkdir -p "$WORK/b6" "$WORK/m6"
swafs_mount "$WORK/b6" "$WORK/m6" "store=$WORK" allow_other
G_NB=$G.nb
as_nobody "$SWACTL" sync start "$G_NB" --count 1 --wait 60 >/dev/null ||
	fail "uid $NOBODY_UID cannot start a sync group"
COORDS+=("$("$SWACTL" sync list --json | "$PYTHON" -c '
import json, sys
print([g for g in json.load(sys.stdin) if g["id"] == sys.argv[1]][0]["pid"])' "$G_NB")")
expect_rc 1 "checkpoint p not joined to sync group $G_NB: a tree refused it" \
	as_nobody "$SWACTL" checkpoint "$WORK/m6" --name p --sync "$G_NB"
expect_rc 1 "permission denied: only root and the user who mounted" \
	as_nobody "$SWACTL" checkpoint "$WORK/m6" --name p --sync "$G_NB"
[ "$(joined "$G_NB")" = 0 ] || fail "group $G_NB: $(joined "$G_NB") joined after a refused job"
expect_rc 0 "0 jobs were waiting" as_nobody "$SWACTL" sync end "$G_NB"
absent p "$WORK/m6"

# ---- one instant ----------------------------------------------------
counter_writer "$WORK/writer.stop" "${M[@]/%//c}"
writer=$WRITER_PID
sleep 0.5

# group N ROUND: N jobs on m1..mN take checkpoint rN.ROUND in one group;
# the last job waits 0.3 s in --pre after "go"
group() {
	local n=$1 name=r$1.$2 i pre
	start_group "$G.$name" --count "$n" --wait 60
	for ((i = 1; i <= n; i++)); do
		pre=true
		[ "$i" -lt "$n" ] || pre='sleep 0.3'
		job "$i" "${M[i - 1]}" "$name" "$G.$name" --keep --pre "$pre"
	done
	for ((i = 1; i <= n; i++)); do
		job_done "$i" 0 "checkpoint $name taken on ${M[i - 1]}"
	done
	coord_gone "$COORD"
}

# check N ROUND: the views of rN.ROUND hold a state the writer passed
check() {
	local n=$1 name=r$1.$2 i vals=()
	for ((i = 1; i <= n; i++)); do
		view_mount "${M[i - 1]}" "$name" "$WORK/v$i"
		vals+=("$((10#$(cat "$WORK/v$i/c")))")
		view_umount "$WORK/v$i"
		swactl release "${M[i - 1]}" "$name"
	done
	log "$name: ${vals[*]}"
	"$PYTHON" -c '
import sys
v = [int(x) for x in sys.argv[1:]]
ok = v[0] > 0 and all(a in (b, b + 1) for a, b in zip(v, v[1:])) and \
    v[0] - v[-1] <= 1
sys.exit(0 if ok else 1)' "${vals[@]}" ||
		fail "$name: views show ${vals[*]}: not one instant"
}

for round in 1 2 3; do
	group 2 "$round"
	group 4 "$round"
done
touch "$WORK/writer.stop"
wait "$writer" || fail "the counter writer failed"
for round in 1 2 3; do
	check 2 "$round"
	check 4 "$round"
done

# ---- events ---------------------------------------------------------
"$PYTHON" - "$G" <<EOF || fail "sync events missing or wrong"
import json, subprocess, sys
g = sys.argv[1]
def events(m):
    out = subprocess.run(['$SWACTL', 'events', m], capture_output=True,
                         text=True, check=True).stdout
    return [json.loads(l) for l in out.splitlines()]
want = [('${M[0]}', 'sync-joined', g + '.use', 'u1', None, 2),
        ('${M[1]}', 'sync-joined', g + '.use', 'u2', None, 2),
        ('${M[0]}', 'sync-joined', g + '.kill', 'k', 1, 2),
        ('${M[0]}', 'sync-timeout', g + '.slow', 's', 2, 3),
        ('${M[1]}', 'sync-timeout', g + '.slow', 's', 2, 3),
        ('${M[0]}', 'sync-ended', g + '.end', 'e', 2, 3),
        ('${M[3]}', 'sync-joined', g + '.r4.1', 'r4.1', None, 4)]
for m, ev, sync, name, joined, count in want:
    e = {'event': ev, 'sync': sync, 'name': name, 'joined': joined,
         'count': count}
    if joined is None:	# jobs started together join in any order
        del e['joined']
    have = [{k: x.get(k) for k in e} for x in events(m)]
    if e not in have:
        print('%s: no %s' % (m, e))
        sys.exit(1)
EOF

# the daemon checks every field of a note
"$PYTHON" - "${M[0]}" <<'EOF' || fail "malformed note requests accepted"
import os, socket, sys
st = os.stat(sys.argv[1])
path = '/run/swafs/%d:%d.sock' % (os.major(st.st_dev), os.minor(st.st_dev))
def ask(line):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(line.encode() + b'\n')
    r = s.makefile().readline()
    s.close()
    return r
assert ask('note sync-joined g n 1 2').startswith('ok'), 'a good note'
for bad in ['note sync-joined g n 3 2', 'note sync-joined g n 1 65',
            'note sync-joined g n 0 0', 'note sync-other g n 1 2',
            'note sync-joined g/x n 1 2', 'note sync-joined g .. 1 2',
            'note sync-joined g n -1 2', 'note sync-joined g n 1',
            'note sync-joined g n 1 2 x']:
    r = ask(bad)
    if not r.startswith('err 2'):
        print('%r: %r' % (bad, r))
        sys.exit(1)
EOF
# ---- a tree that fails its commit after the others committed -----------
# Job 1 holds m1 and m5 and waits for job 2's --pre; then m5's daemon is
# stopped, so it never answers job 1's "commit" (as if it died right after
# "ready"), while m1 commits.  Job 1 must release p on m1 and name m5 as
# the tree that may keep it; job 2 committed on m2 and keeps p: the
# coordinator is gone, job 1 cannot tell it (README).
mkdir -p "$WORK/b5" "$WORK/m5"
swafs_mount "$WORK/b5" "$WORK/m5" "store=$WORK"
P5=$SWAFS_PID
ckpt_helper "$P5"	# continued and killed at exit if still there
start_group "$G.part" --count 2 --wait 60
SWACTL_TIMEOUT=2 job 1 "${M[0]}" p "$G.part" "$WORK/m5" --wait 1
wait_joined "$G.part" 1
job 2 "${M[1]}" p "$G.part" --pre 'sleep 5'
held() { "$SWACTL" status "$WORK/m5" --json | grep -q '"state":"held"'; }
wait_until 4 held || fail "job 1 did not hold m5 within 4 s"
kill -STOP "$P5"
job_done 2 0 "checkpoint p taken on ${M[1]}"
job_done 1 1 "${M[0]}: checkpoint p released: another tree failed to commit"
for text in "checkpoint p not taken, but left on $WORK/m5 (maybe: no answer to commit)" \
	"sync group $G.part: the other jobs committed and keep checkpoint p"; do
	grep -qF -- "$text" "$WORK/job.1" || fail "job 1: no '$text' in: $(cat "$WORK/job.1")"
done
coord_gone "$COORD"
absent p "${M[0]}"
swactl release "${M[1]}" p
# m5's daemon, resumed, finds "commit" from a client that gave up: it
# must not commit (job 1 said p is not taken there)
kill -CONT "$P5"
wait_until 5 eval '! held' || fail "m5 still holds its tree after it resumed"
absent p "$WORK/m5"
swafs_umount "$WORK/m5"
log ok
