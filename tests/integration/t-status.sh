#!/bin/bash
# swactl status and history on a real save: an appender changes file sizes
# from before T on, an overwriter makes captures after T, and a slow saver
# reads the view.  Two statuses taken mid-save show saved bytes and files
# released rising, a rate and an ETA; the T size equals the sum of the
# sizes the view shows (not the live ones); --json has the documented
# fields; --watch draws a bar on a terminal and ends with the checkpoint;
# the released event and the history record carry the figures; history
# survives a remount of the same BACKING and is pruned by keep_days.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt S=$WORK/store V=$WORK/view
mkdir -p "$B" "$M" "$S"

"$PYTHON" - "$B" <<'EOF'
import os, random, sys
b = sys.argv[1]
r = random.Random(7)
for i in range(40):
    d = os.path.join(b, 'd%d' % (i // 20))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'f%02d' % i), 'wb') as f:
        f.write(r.randbytes(r.randrange(200000, 600000)))
os.makedirs(os.path.join(b, 'c'))
os.link(os.path.join(b, 'd0/f00'), os.path.join(b, 'c/link'))
os.symlink('../d0/f01', os.path.join(b, 'c/sym'))
open(os.path.join(b, 'c/empty'), 'w').close()
EOF
swafs_mount "$B" "$M" "store=$S"

# sizes change from before T on: T sizes are only what the view shows
"$PYTHON" - "$M" <<'EOF' &
import os, sys, time
m = sys.argv[1]
names = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(m) for f in fs
               if f.startswith('f'))
while True:
    for p in names:
        with open(p, 'ab') as f:
            f.write(b'x' * 4096)
    time.sleep(0.005)
EOF
APP=$!
ckpt_helper "$APP"
sleep 0.3
ckpt_take "$M" st

# overwrite the start of the files the saver reads last: captures
"$PYTHON" - "$M" <<'EOF'
import os, sys
m = sys.argv[1]
for i in range(30, 40):
    with open(os.path.join(m, 'd1/f%02d' % i), 'r+b') as f:
        f.write(b'y' * 200000)
EOF

status_json() { swactl status "$M" st --json; }
field() { "$PYTHON" -c 'import json,sys; v=json.load(sys.stdin)[0][sys.argv[1]]; print("null" if v is None else v)' "$1"; }

wait_until 30 eval '[ "$(status_json | field t_size_state)" = done ]' ||
	fail "T size not computed: $(status_json)"
view_mount "$M" st "$V"
expect=$("$PYTHON" - "$V" <<'EOF'
import os, sys
seen, total, files = set(), 0, 0
for dp, _, fs in os.walk(sys.argv[1]):
    for f in fs:
        st = os.lstat(os.path.join(dp, f))
        if os.path.isfile(os.path.join(dp, f)) and not os.path.islink(os.path.join(dp, f)) and st.st_ino not in seen:
            seen.add(st.st_ino); total += st.st_size; files += 1
print(total, files)
EOF
)
live=$(find "$B" -type f -printf '%i %s\n' | sort -u | awk '{ s += $2 } END { print s }')
got="$(status_json | field t_size_bytes) $(status_json | field t_files)"
[ "$got" = "$expect" ] || fail "T size/files $got, the view shows $expect (live now: $live)"
[ "${expect% *}" != "$live" ] || fail "the appender changed no size: test proves nothing"
kill -STOP "$APP"

# before any read: nothing saved, no rate, no ETA; the store holds captures
s0=$(status_json)
[ "$(field saved_bytes <<<"$s0")" = 0 ] || fail "saved before any read: $s0"
[ "$(field rate_bps <<<"$s0")" = null ] || fail "a rate before any read: $s0"
[ "$(field eta_s <<<"$s0")" = null ] || fail "an ETA before any read: $s0"
[ "$(field captures <<<"$s0")" -gt 0 ] || fail "no captures: $s0"
[ "$(field store_raw_bytes <<<"$s0")" -gt 0 ] || fail "store empty: $s0"
[ "$(field held_bytes <<<"$s0")" -gt 0 ] || fail "nothing held: $s0"
kill -CONT "$APP"

# --json has exactly the documented fields
"$PYTHON" - "$s0" "$ROOT/README.md" <<'EOF' || fail "status --json fields differ from README"
import json, re, sys
# the first column of README's status field table
text = open(sys.argv[2]).read()
table = text.split('`swactl status MNT --json` prints', 1)[1].split('\n\n', 2)[1]
want = set()
for row in table.splitlines():
    want.update(re.findall(r'`([a-z_]+)`', row.split('|')[1]))
rec = json.loads(sys.argv[1])[0]
if set(rec) != want or rec['state'] != 'active':
    sys.exit('undocumented: %s; missing: %s' % (sorted(set(rec) - want),
                                                sorted(want - set(rec))))
EOF

# the slow saver: 128 KiB per 0.1 s, file after file, each closed
"$PYTHON" - "$V" <<'EOF' &
import os, sys, time
v = sys.argv[1]
for dp, ds, fs in sorted(os.walk(v)):
    ds.sort()
    for f in sorted(fs):
        p = os.path.join(dp, f)
        if os.path.islink(p):
            continue
        with open(p, 'rb') as fh:
            while fh.read(131072):
                time.sleep(0.1)
EOF
SAVER=$!
ckpt_helper "$SAVER"

script -qfec "$SWACTL status $M st --watch" /dev/null >"$WORK/watch.out" 2>&1 &
WATCH=$!
ckpt_helper "$WATCH"

sleep 3
s1=$(status_json)
sleep 3
s2=$(status_json)
pid_alive "$SAVER" || fail "the saver finished too early to watch it"
"$PYTHON" - "$s1" "$s2" <<'EOF' || fail "progress: $s1 then $s2"
import json, sys
a, b = (json.loads(x)[0] for x in sys.argv[1:])
assert 0 < a['saved_bytes'] < b['saved_bytes'] < b['t_size_bytes'], 'saved'
assert 0 < a['saved_pct'] < b['saved_pct'] < 100, 'pct'
assert a['files_released'] < b['files_released'], 'files released'
for s in (a, b):
    assert s['rate_bps'] and s['rate_bps'] > 0, 'rate'
    assert s['eta_s'] is not None and s['eta_s'] > 0, 'eta'
EOF
human=$(swactl status "$M")
case $human in
*"st: active"*"saved"*"rate"*"ETA"*"store"*) ;;
*) fail "human status: $human" ;;
esac

# an unknown name: exit 1, one line; --watch wants a terminal
rc=0 out=$(swactl status "$M" nosuch 2>&1) || rc=$?
[ "$rc" = 1 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] ||
	fail "status of an unknown checkpoint: exit $rc: $out"
rc=0 out=$(swactl status "$M" st --watch 2>&1 </dev/null) || rc=$?
[ "$rc" = 2 ] || fail "--watch off a terminal: exit $rc: $out"

wait "$SAVER" || fail "the saver failed"
s3=$(status_json)
[ "$(field saved_pct <<<"$s3")" = 100.0 ] || fail "save done, not 100%: $s3"
[ "$(field eta_s <<<"$s3")" = 0 ] || fail "save done, ETA not 0: $s3"
view_umount "$V"
wait_until 10 eval '[ "$(ckpt_field "$M" st name)" = absent ]' ||
	fail "checkpoint not released after its view"
wait_until 10 pid_gone "$WATCH" || fail "--watch did not end with the checkpoint"
grep -q 'ETA' "$WORK/watch.out" && grep -q '\[#' "$WORK/watch.out" &&
	grep -q 'checkpoint st: ended' "$WORK/watch.out" &&
	grep -q $'\033\\[?25h' "$WORK/watch.out" ||
	fail "--watch output: $(cat -v "$WORK/watch.out" | tail -c 600)"
stop_helper "$APP"

# the released event and the history record carry the figures
ev=$(events_of "$M" | grep '"event":"released"') || fail "no released event"
hist() { swactl history "$M" --json; }
"$PYTHON" - "$ev" "$(hist)" "$s3" <<'EOF' || fail "released: $ev history: $(hist)"
import json, sys
ev, hs, st = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])[0]
assert ev['captured_bytes'] > 0 and ev['peak_store_bytes'] > 0
assert ev['files_released'] == st['t_files'] and ev['duration_s'] > 5
assert ev['outcome'] == 'released' and ev['saved_bytes'] == st['t_size_bytes']
h = [r for r in hs if r['name'] == 'st']
assert len(h) == 1, hs
h = h[0]
want = set('''name outcome reason t ended pause_us duration_s captured_bytes
peak_store_bytes files saved_bytes t_size_bytes t_files'''.split())
assert set(h) == want, set(h) ^ want
assert h['outcome'] == 'released' and h['reason'] == ''
assert h['captured_bytes'] == ev['captured_bytes']
assert h['peak_store_bytes'] == ev['peak_store_bytes']
assert h['files'] == st['t_files'] and h['t_size_bytes'] == st['t_size_bytes']
assert h['saved_bytes'] == st['t_size_bytes'] and h['duration_s'] > 5
assert h['ended'] >= h['t']
EOF
swactl history "$M" | grep -q '^st .* released .*captured' ||
	fail "human history: $(swactl history "$M")"
swactl history "$M" | head -1 | grep -q '^NAME  *T  *DURATION  *OUTCOME' ||
	fail "human history has no header: $(swactl history "$M")"

# the same BACKING mounted again: the same history
swafs_umount "$M"
swafs_mount "$B" "$M" "store=$S"
[ "$(hist | "$PYTHON" -c 'import json,sys; print([r["name"] for r in json.load(sys.stdin)])')" = "['st']" ] ||
	fail "history after remount: $(hist)"
swafs_umount "$M"

# pruning: an old record and a broken line go at the next mount
hf=$(echo "$S"/swafs-history.*.jsonl)
[ -f "$hf" ] || fail "no history file in $S"
old=$(($(date +%s) - 31 * 86400))
printf '{"name":"old","t":%d,"ended":%d,"outcome":"released"}\nbroken{\n' \
	"$old" "$old" >>"$hf"
swafs_mount "$B" "$M" "store=$S,keep_days=30"
[ "$(hist | "$PYTHON" -c 'import json,sys; print([r["name"] for r in json.load(sys.stdin)])')" = "['st']" ] ||
	fail "history with an old record: $(hist)"
! grep -q '"old"\|broken' "$hf" || fail "old record not pruned at mount: $(cat "$hf")"
swafs_umount "$M"
swafs_mount "$B" "$M" "store=$S,keep_days=0"
[ "$(hist)" = "[]" ] || fail "keep_days=0 kept: $(hist)"
swafs_umount "$M"
rc=0 out=$("$SWAFS" "$B" "$M" -o "store=$S,keep_days=3x" -f 2>&1) || rc=$?
[ "$rc" != 0 ] && [[ $out == *"invalid option 'keep_days=3x'"* ]] ||
	fail "keep_days=3x: exit $rc: $out"
log "ok: T $expect, saved $(field saved_bytes <<<"$s1") -> $(field saved_bytes <<<"$s2") bytes, rate $(field rate_bps <<<"$s2") B/s, ETA $(field eta_s <<<"$s2") s"
