#!/bin/bash
# G8 scale: 100,000 files; a checkpoint; its view walked fully by find and
# by tar (at the same time) while a writer changes 1,000 of the files
# (append, overwrite, truncate, delete and recreate) and adds new ones. The
# view shows every file of T and no new one, tar's archive has the size of
# an archive of the tree at T and the T contents of every changed file; the
# daemon's open descriptors stay under the 20,000 cap and its memory stays
# bounded.
. "$(dirname "$0")/ckpt-lib.sh"

N=100000
B=$WORK/backing M=$WORK/mnt S=$WORK/store V=$WORK/view
mkdir -p "$B" "$M" "$S"
RSS_BOUND_KB=$((256 * 1024))
FD_BOUND=20000

"$PYTHON" - "$B" "$N" "$WORK/changed.list" <<'EOF'
import os, random, sys
top, n = sys.argv[1], int(sys.argv[2])
r = random.Random(8)
for i in range(n):
    d = os.path.join(top, 'd%03d' % (i % 100))
    if i < 100:
        os.makedirs(d)
    with open(os.path.join(d, 'f%06d' % i), 'wb') as f:
        f.write(r.randbytes(r.randrange(0, 3000)))
with open(sys.argv[3], 'w') as f:
    for i in sorted(r.sample(range(n), 1000)):
        f.write('d%03d/f%06d\n' % (i % 100, i))
EOF
# the expected archive size and the T contents of the files to be changed
EXP_BYTES=$(tar -cf - -C "$B" . | wc -c)
"$PYTHON" - "$B" "$WORK/changed.list" "$WORK/changed.json" <<'EOF'
import hashlib, json, os, sys
top = sys.argv[1]
names = open(sys.argv[2]).read().split()
h = {}
for n in names:
    with open(os.path.join(top, n), 'rb') as f:
        h['./' + n] = hashlib.sha256(f.read()).hexdigest()
json.dump(h, open(sys.argv[3], 'w'))
EOF

swafs_mount "$B" "$M" "events=$WORK/events,store=$S"
DPID=$SWAFS_PID
seen=$(find "$M" -type f | wc -l)
assert_eq "files seen through the live tree" "$N" "$seen"

(
	mf=0 mr=0
	while pid_alive "$DPID"; do
		f=$(daemon_fd_count "$DPID")
		r=$(vmrss_kb "$DPID" 2>/dev/null) || break
		[ "$f" -gt "$mf" ] && mf=$f
		[ "${r:-0}" -gt "$mr" ] && mr=$r
		echo "$mf $mr" >"$WORK/peak.tmp" && mv "$WORK/peak.tmp" "$WORK/peak"
		sleep 0.2
	done
) &
ckpt_helper $!

ckpt_take "$M" scale
log "checkpoint of $N files: pause ${CKPT_PAUSE_US}us"
view_mount "$M" scale "$V"

"$PYTHON" - "$M" "$WORK/changed.list" <<'EOF' &
import os, random, sys
top = sys.argv[1]
names = open(sys.argv[2]).read().split()
r = random.Random(88)
for i, n in enumerate(names):
    p = os.path.join(top, n)
    k = i % 4
    if k == 0:
        with open(p, 'ab') as f:
            f.write(r.randbytes(r.randrange(1, 5000)))
    elif k == 1:
        with open(p, 'r+b') as f:
            f.write(r.randbytes(100))
    elif k == 2:
        os.truncate(p, 0)
    else:
        os.unlink(p)
        with open(p, 'wb') as f:
            f.write(b'recreated after T\n')
    if i % 5 == 0:
        with open(os.path.join(top, 'd%03d' % (i % 100), 'new%04d' % i), 'wb') as f:
            f.write(b'new after T')
EOF
WPID=$!
ckpt_helper "$WPID"

find "$V" -type f | wc -l >"$WORK/find.count" &
FPID=$!
ckpt_helper "$FPID"
out=$(tar -cf - -C "$V" . | "$PYTHON" "$IT_DIR/ckpt_tarcheck.py" "$WORK/changed.json") ||
	fail "tar of the view: $out"
wait "$FPID" || fail "find in the view failed"
wait "$WPID" || fail "the writer failed"
log "tar of the view: $out (expected bytes=$EXP_BYTES)"
assert_eq "files found in the view" "$N" "$(cat "$WORK/find.count")"
assert_eq "size of the archive of the view" "bytes=$EXP_BYTES" "${out%% *}"
case $out in *" files=$N "*) ;; *) fail "the archive of the view holds the wrong number of files: $out" ;; esac
# the writer did change the live tree
[ "$(find "$M" -name 'new*' | wc -l)" -eq 200 ] || fail "writer did not create its files"

read -r mf mr <"$WORK/peak"
log "daemon peak: $mf open fds, VmRSS $mr KiB"
[ "$mf" -lt "$FD_BOUND" ] || fail "daemon had $mf open descriptors (cap $FD_BOUND)"
[ "$mr" -le "$RSS_BOUND_KB" ] || fail "daemon VmRSS peaked at $mr KiB (bound $RSS_BOUND_KB)"

view_umount "$V"
swafs_umount "$M"
log "ok"
