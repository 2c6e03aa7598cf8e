#!/usr/bin/env bash
# Concurrent writers through the mount, checked byte by byte in BACKING:
#  - 4 processes, each pwrite()ing its own file (odd 4099-byte blocks);
#  - 4 processes pwrite()ing disjoint interleaved blocks of one file;
#  - 4 processes appending fixed-size records with O_APPEND to one file;
#  - stores through a shared writable mmap are in BACKING after msync;
#  - a writer killed with SIGKILL mid-stream: every write it logged as
#    completed (log kept outside the mount) is in BACKING.
. "$(dirname "$0")/lib.sh"

B=$WORK/backing M=$WORK/mnt L=$WORK/logs
mkdir "$B" "$M" "$L"
swafs_mount "$B" "$M"
H=$IT_DIR/helpers.py
BS=4099 COUNT=600

pids=()
for k in 0 1 2 3; do
	"$PYTHON" "$H" writer "$M/own$k" "$L/own$k" --tag "own$k" --block $BS \
		--count $COUNT &
	pids+=($!)
	track_pid $!
	"$PYTHON" "$H" writer "$M/shared" "$L/shared$k" --tag shared --block $BS \
		--index $k --stride 4 --count $COUNT &
	pids+=($!)
	track_pid $!
done
"$PYTHON" - "$M/appended" <<'PYEOF' &
import os, sys
kids = []
for k in range(4):
    pid = os.fork()
    if pid == 0:
        fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        for i in range(1500):
            rec = b'writer %d record %06d ' % (k, i)
            rec += b'.' * (99 - len(rec)) + b'\n'
            if os.write(fd, rec) != 100:
                os._exit(1)
        os._exit(0)
    kids.append(pid)
sys.exit(max(os.waitpid(p, 0)[1] for p in kids) and 1)
PYEOF
pids+=($!)
track_pid $!
for p in "${pids[@]}"; do
	wait "$p" || fail "a writer failed (pid $p)"
done

for k in 0 1 2 3; do
	"$PYTHON" "$H" verify "$B/own$k" --tag "own$k" --block $BS --all $COUNT >/dev/null ||
		fail "own$k: $("$PYTHON" "$H" verify "$B/own$k" --tag "own$k" --block $BS --all $COUNT)"
done
"$PYTHON" "$H" verify "$B/shared" --tag shared --block $BS --all $((4 * COUNT)) ||
	fail "shared file in BACKING is wrong"
cmp "$B/shared" "$M/shared" || fail "shared file differs between mount and BACKING"
"$PYTHON" - "$B/appended" <<'PYEOF' || fail "O_APPEND records in BACKING are wrong"
import sys
data = open(sys.argv[1], 'rb').read()
bad = []
if len(data) != 4 * 1500 * 100:
    bad.append('size %d, expected %d' % (len(data), 4 * 1500 * 100))
seen = {k: [] for k in range(4)}
for off in range(0, len(data) - 99, 100):
    rec = data[off:off + 100]
    try:
        parts = rec.split()
        k, i = int(parts[1]), int(parts[3])
        ok = rec == (b'writer %d record %06d ' % (k, i)).ljust(99, b'.') + b'\n'
    except (IndexError, ValueError):
        ok = False
    if not ok:
        bad.append('torn record at %d: %r' % (off, rec[:40]))
        break
    seen[k].append(i)
for k, lst in seen.items():
    if lst != list(range(1500)):
        bad.append('writer %d: %d records, out of order or missing' % (k, len(lst)))
for b in bad:
    print('MISMATCH:', b)
sys.exit(1 if bad else 0)
PYEOF

# shared writable mmap: after msync() the bytes are in BACKING
"$PYTHON" - "$M/mapped" "$B/mapped" <<'PYEOF' || fail "mmap writes are not in BACKING after msync"
import mmap, os, sys
size = 1 << 20
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, size)
m = mmap.mmap(fd, size, mmap.MAP_SHARED)
bad = []
for rnd in range(3):
    for off in range(rnd * 4096 + 17, size, 65536):
        m[off:off + 8] = b'r%dx%05d' % (rnd, off // 65536)
    m.flush()
    with open(sys.argv[2], 'rb') as f:
        back = f.read()
    for off in range(rnd * 4096 + 17, size, 65536):
        if back[off:off + 8] != b'r%dx%05d' % (rnd, off // 65536):
            bad.append('round %d offset %d: %r' % (rnd, off, back[off:off + 8]))
m.close()
os.close(fd)
for b in bad[:5]:
    print('MISMATCH:', b)
sys.exit(1 if bad else 0)
PYEOF

# a writer killed mid-stream
"$PYTHON" "$H" writer "$M/killed" "$L/killed" --tag killed --block 65536 --count 0 &
wp=$!
track_pid $wp
logged() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
logged_at_least() { [ "$(logged "$1")" -ge "$2" ]; }
wait_until 20 logged_at_least "$L/killed" 200 ||
	fail "the writer did not get going"
kill -KILL $wp
wait $wp 2>/dev/null || true
n=$(wc -l <"$L/killed")
log "killed writer had logged $n completed 64 KiB writes"
"$PYTHON" "$H" verify "$B/killed" --tag killed --block 65536 --log "$L/killed" ||
	fail "BACKING lacks writes the killed writer completed"
"$PYTHON" "$H" verify "$M/killed" --tag killed --block 65536 --log "$L/killed" ||
	fail "the mount lacks writes the killed writer completed"
pid_alive "$SWAFS_PID" || fail "daemon died"
swafs_umount "$M"
log ok
