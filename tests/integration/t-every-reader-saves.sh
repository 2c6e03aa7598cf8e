#!/bin/bash
# Every reader saves (DESIGN.md 4, issue 11): on a tree of small, big,
# sparse, empty and hard-linked files that writers keep changing, a view is
# saved by each real reader in turn: GNU tar with and without --sparse,
# cp -a, rsync -aHAX, and per file dd bs=4k, dd bs=1M, cat and a reader
# that reads every file backwards in 4 KiB steps.  After each: the copy
# equals the tree at T; status says saved_pct 100, every file released,
# held_bytes 0; and a live write to any block of any file costs no capture.
. "$(dirname "$0")/ckpt-lib.sh"

B=$WORK/backing M=$WORK/mnt S=$WORK/store V=$WORK/v
mkdir -p "$B" "$M" "$S"

"$PYTHON" - "$B" <<'EOF'
import os, random, sys
b = sys.argv[1]
r = random.Random(11)
def put(p, data):
    p = os.path.join(b, p)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, 'wb') as f:
        f.write(data)
for i in range(120):
    put('small/d%d/f%03d' % (i % 5, i), r.randbytes(r.randrange(1, 200000)))
put('big', r.randbytes(40 << 20))
put('empty', b'')
with open(os.path.join(b, 'sparse'), 'wb') as f:	# holes inside blocks too
    for off, n in ((1 << 20, 10000), ((37 << 20) + 5000, 200000),
                   (80 << 20, 65536)):
        f.seek(off)
        f.write(r.randbytes(n))
    f.truncate(100 << 20)
with open(os.path.join(b, 'sparse-head'), 'wb') as f:	# data at the end
    f.seek(30 << 20)
    f.write(r.randbytes(123457))
os.link(os.path.join(b, 'small/d3/f003'), os.path.join(b, 'link-small'))
os.link(os.path.join(b, 'big'), os.path.join(b, 'small/link-big'))
EOF

swafs_mount "$B" "$M" "events=$WORK/events,store=$S"

# writers: overwrites everywhere (holes of the sparse files included),
# appends to small files
"$PYTHON" - "$M" 2>"$WORK/writer.err" <<'EOF' &
import os, random, sys, time
m = sys.argv[1]
files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(m) for f in fs)
r = random.Random(5)
while True:
    p = r.choice(files)
    with open(p, 'r+b') as f:
        size = os.fstat(f.fileno()).st_size
        if 'small' in p and r.random() < 0.2:
            os.pwrite(f.fileno(), r.randbytes(r.randrange(1, 9000)), size)
        elif size:
            span = 2 << 20 if 'sparse' in p else size
            os.pwrite(f.fileno(), r.randbytes(4096), r.randrange(0, span))
    time.sleep(0.003)
EOF
WPID=$!
ckpt_helper "$WPID"

status_json() { swactl status "$M" "$1" --json; }
field() {
	"$PYTHON" -c 'import json,sys; v=json.load(sys.stdin)[0][sys.argv[1]]
print("null" if v is None else v)' "$1"
}
tsize_done() { [ "$(status_json "$1" | field t_size_state)" = done ]; }
writer_stop() {
	kill -STOP "$WPID"
	wait_until 5 grep -q '^State:.*T (stopped)' "/proc/$WPID/status" ||
		fail "writer did not stop"
}

# t_data DIR: bytes of data of the non-empty files under DIR, each inode
# once: a sparse file counts the 64 KiB blocks holding data, not its holes
t_data() {
	"$PYTHON" - "$1" <<'EOF'
import os, sys
seen, total = set(), 0
for dp, _, fs in os.walk(sys.argv[1]):
    for f in fs:
        st = os.lstat(os.path.join(dp, f))
        if not os.path.isfile(os.path.join(dp, f)) or st.st_ino in seen:
            continue
        seen.add(st.st_ino)
        if st.st_blocks * 512 >= st.st_size:
            total += st.st_size
            continue
        fd, pos = os.open(os.path.join(dp, f), os.O_RDONLY), 0
        while pos < st.st_size:
            try:
                d = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            pos = (d // 65536 + 1) * 65536
            total += min(pos, st.st_size) - (pos - 65536)
        os.close(fd)
print(total)
EOF
}

# take NAME [SUBDIR]: checkpoint the tree (or --path SUBDIR) with the
# writer paused; the manifest of the tree at T in T.manifest, of $TDIR
take() {
	pid_alive "$WPID" || fail "writer died: $(cat "$WORK/writer.err")"
	writer_stop
	TDIR=$M${2:+/$2}
	mfst "$TDIR" "$WORK/T.manifest"
	tdata=$(t_data "$TDIR")
	ckpt_take "$M" "$1" ${2:+--path "$2"}
	kill -CONT "$WPID"
	wait_until 30 tsize_done "$1" ||
		fail "$1: T size not computed: $(status_json "$1")"
	[ "$(status_json "$1" | field t_size_bytes)" = "$tdata" ] ||
		fail "$1: T size is not the data of the tree at T ($tdata): $(status_json "$1")"
	view_mount "$M" "$1" "$V"
}

# every file saved, released and free to write
saved_and_released() {
	local s
	s=$(status_json "$1")
	[ "$(field saved_pct <<<"$s")" = 100.0 ] &&
		[ "$(field files_released <<<"$s")" = "$(field t_files <<<"$s")" ] &&
		[ "$(field held_bytes <<<"$s")" = 0 ]
}

# one byte written into every block of every file (inside its T size, as
# it was; a hole stays a hole)
probe_writes() {
	"$PYTHON" - "$TDIR" "$WORK/T.manifest" <<'EOF'
import ctypes, os, sys
m, mf = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
for line in open(mf):
    path, fields = line.rstrip('\n').split('\t', 1)
    kv = dict(x.split('=', 1) for x in fields.split())
    if kv['type'] != 'f':
        continue
    fd = os.open(os.path.join(m, path), os.O_RDWR)
    for off in range(0, int(kv['size']), 65536):
        try:
            data = os.lseek(fd, off, os.SEEK_DATA) == off
        except OSError:
            data = False
        os.pwrite(fd, os.pread(fd, 1, off) if data else b'\0', off)
        if not data and libc.fallocate(fd, 3, off, 4096) != 0:
            sys.exit('punch %s at %d: errno %d' % (path, off, ctypes.get_errno()))
    os.close(fd)
EOF
}

# check NAME [COPY_MANIFEST [--ignore FIELD]...]: the copy equals T;
# saved, released, free
check() {
	local name=$1 s caps
	[ -z "${2:-}" ] || assert_manifest_eq "$name: copy differs from the tree at T" \
		"$WORK/T.manifest" "$2" "${@:3}"
	wait_until 10 saved_and_released "$name" ||
		fail "$name: not every file saved and released: $(status_json "$name")"
	writer_stop
	caps=$(status_json "$name" | field captured_bytes)
	probe_writes || fail "$name: probe writes failed"
	s=$(status_json "$name")
	[ "$(field captured_bytes <<<"$s")" = "$caps" ] ||
		fail "$name: live writes after the save were captured: $s"
	kill -CONT "$WPID"
	view_umount "$V"
	log "$name: saved, released, no capture after the save"
}

TARX=(--numeric-owner --format=posix --xattrs --xattrs-include='user.*')
for sparse in "" --sparse; do
	name=tar${sparse:+-sparse}
	take "$name"
	rm -rf "$WORK/c"
	mkdir "$WORK/c"
	tar "${TARX[@]}" $sparse -cf "$WORK/a.tar" -C "$V" . ||
		fail "$name: tar -c failed"
	tar "${TARX[@]}" -xpf "$WORK/a.tar" -C "$WORK/c" || fail "$name: tar -x failed"
	mfst "$WORK/c" "$WORK/c.manifest"
	check "$name" "$WORK/c.manifest"
done

# a --path checkpoint: its progress counts its scope only (a hard link
# from the scope to big brings big in; the links from outside are not
# copied)
take scoped small
rm -rf "$WORK/c"
mkdir "$WORK/c"
tar "${TARX[@]}" -cf - -C "$V/small" . | tar "${TARX[@]}" -xpf - -C "$WORK/c" ||
	fail "scoped: tar failed"
mfst "$WORK/c" "$WORK/c.manifest"
check scoped "$WORK/c.manifest" --ignore link --ignore nlink

take cp
rm -rf "$WORK/c"
cp -a "$V" "$WORK/c" || fail "cp -a failed"
mfst "$WORK/c" "$WORK/c.manifest"
check cp "$WORK/c.manifest"

take rsync
rm -rf "$WORK/c"
rsync -aHAX --numeric-ids "$V/" "$WORK/c/" || fail "rsync -aHAX failed"
mfst "$WORK/c" "$WORK/c.manifest"
check rsync "$WORK/c.manifest"

# per-file readers: each inode once, by its first name; the copies are
# compared by contents (attributes are the tools' above)
backwards() {
	"$PYTHON" - "$1" "$2" <<'EOF'
import os, sys
src, dst = os.open(sys.argv[1], os.O_RDONLY), os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644)
off = os.fstat(src).st_size // 4096 * 4096
while off >= 0:
    os.pwrite(dst, os.pread(src, 4096, off), off)
    off -= 4096
EOF
}
per_file() {
	local name=$1 ino p
	shift
	take "$name"
	rm -rf "$WORK/c"
	while IFS=$'\t' read -r ino p; do
		mkdir -p "$WORK/c/$(dirname "$p")"
		"$@" "$V/$p" "$WORK/c/$p" || fail "$name: copying $p failed"
	done < <(cd "$V" && find . -type f -printf '%i\t%P\n' | sort -t$'\t' -k1,1n -u)
	mfst "$WORK/c" "$WORK/c.manifest" --mtime none
	"$PYTHON" - "$WORK/T.manifest" "$WORK/c.manifest" <<'EOF' || fail "$name: copy differs from T"
import sys
def files(p):
    out = {}
    for line in open(p):
        path, fields = line.rstrip('\n').split('\t', 1)
        kv = dict(x.split('=', 1) for x in fields.split())
        if kv['type'] == 'f':
            out[path] = (kv.get('link', path), kv['sha256'])
    return out
t, c = files(sys.argv[1]), files(sys.argv[2])
inodes = {v[0] for v in t.values()}
bad = [p for p in c if p not in t or c[p][1] != t[p][1]]
if bad or len(c) != len(inodes):
    sys.exit('%d files copied of %d inodes; differ: %s' % (len(c), len(inodes), bad[:5]))
EOF
	check "$name"
}
dd4k() { dd if="$1" of="$2" bs=4k status=none; }
dd1m() { dd if="$1" of="$2" bs=1M status=none; }
catf() { cat "$1" >"$2"; }
per_file dd-4k dd4k
per_file dd-1m dd1m
per_file cat catf
per_file backwards backwards

stop_helper "$WPID"
swafs_umount "$M"
log "ok"
