#!/usr/bin/env bash
# A directory of 10,000 entries (files, directories, symlinks, fifos, names
# of 1 to 255 bytes): the listing through the mount equals the backing
# listing with ls -f, find, python os.scandir (names and d_type), ls -l
# (metadata from readdirplus), telldir/seekdir and rewinddir; then removing
# entries while reading the directory (rm -r) empties it completely.
. "$(dirname "$0")/lib.sh"

B=$WORK/backing M=$WORK/mnt
mkdir "$B" "$M"
swafs_mount "$B" "$M"
N=10000

"$PYTHON" - "$M/big" "$N" <<'PYEOF' || fail "creating the entries failed"
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.mkdir(d)
for i in range(n):
    name = 'e%05d-' % i + 'x' * (i % 249)
    p = os.path.join(d, name)
    k = i % 10
    if k == 0:
        os.mkdir(p)
    elif k == 1:
        os.symlink('target-%d' % i, p)
    elif k == 2:
        os.mkfifo(p)
    else:
        with open(p, 'wb') as f:
            f.write(b'%d' % i)
PYEOF

list_cmp() {
	local what=$1
	shift
	(cd "$M/big" && "$@") >"$WORK/mnt.raw" || fail "$what through the mount failed"
	(cd "$B/big" && "$@") >"$WORK/backing.raw" || fail "$what in BACKING failed"
	LC_ALL=C sort "$WORK/mnt.raw" >"$WORK/mnt.list"
	LC_ALL=C sort "$WORK/backing.raw" >"$WORK/backing.list"
	assert_text_eq "$what listings" "$WORK/backing.list" "$WORK/mnt.list"
	dups=$(uniq -d "$WORK/mnt.list" | head -5)
	[ -z "$dups" ] || fail "$what: duplicate entries through the mount: $dups"
}

list_cmp "ls -f" ls -f
assert_eq "ls -f entries" $((N + 2)) "$(wc -l <"$WORK/mnt.list")"
list_cmp "find" find . -mindepth 1 -maxdepth 1 -printf '%f %y %s %n %m %U\n'
assert_eq "find entries" "$N" "$(wc -l <"$WORK/mnt.list")"
list_cmp "ls -lan" ls -lan --time-style=+%s.%N
list_cmp "scandir" "$PYTHON" -c '
import os
for e in os.scandir("."):
    print(e.name, e.is_dir(follow_symlinks=False),
          e.is_file(follow_symlinks=False), e.is_symlink(),
          e.inode() == os.lstat(e.name).st_ino)'

# raw d_type from getdents64 must be right (no DT_UNKNOWN shortcut that
# differs from BACKING)
list_cmp "d_type" "$PYTHON" -c '
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
buf = ctypes.create_string_buffer(1 << 16)
while True:
    n = libc.syscall(217, fd, buf, len(buf))  # getdents64
    if n < 0:
        raise OSError(ctypes.get_errno(), "getdents64")
    if n == 0:
        break
    off = 0
    raw = buf.raw
    while off < n:
        reclen = int.from_bytes(raw[off + 16:off + 18], "little")
        dtype = raw[off + 18]
        name = raw[off + 19:off + reclen].split(b"\0")[0]
        print(name.decode(), dtype)
        off += reclen'

# telldir/seekdir/rewinddir: resuming at a saved position gives the same
# remaining entries; rewinding gives all of them again
"$PYTHON" - "$M/big" <<'PYEOF' || fail "telldir/seekdir"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.opendir.restype = ctypes.c_void_p
libc.opendir.argtypes = [ctypes.c_char_p]
libc.readdir64.restype = ctypes.c_void_p
libc.readdir64.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long
libc.telldir.argtypes = [ctypes.c_void_p]
libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
libc.rewinddir.argtypes = [ctypes.c_void_p]
libc.closedir.argtypes = [ctypes.c_void_p]
NAME_OFF = 19  # struct dirent64: ino 8, off 8, reclen 2, type 1, name


def read(d, count=None):
    out = []
    while count is None or len(out) < count:
        e = libc.readdir64(d)
        if not e:
            break
        out.append(ctypes.string_at(e + NAME_OFF))
    return out


d = libc.opendir(sys.argv[1].encode())
assert d, 'opendir'
first = read(d, 4321)
pos = libc.telldir(d)
rest = read(d)
libc.seekdir(d, pos)
again = read(d)
libc.rewinddir(d)
everything = read(d)
libc.closedir(d)
bad = []
if again != rest:
    bad.append('after seekdir: %d entries, %d before (first diff at %s)' % (
        len(again), len(rest),
        next((i for i, (a, b) in enumerate(zip(again, rest)) if a != b),
             min(len(again), len(rest)))))
if sorted(everything) != sorted(first + rest):
    bad.append('after rewinddir: %d entries, %d before' % (
        len(everything), len(first + rest)))
if len(set(first + rest)) != len(first + rest):
    bad.append('duplicates in one pass')
if len(first + rest) != 10002:
    bad.append('%d entries in one pass' % len(first + rest))
for b in bad:
    print('MISMATCH:', b)
sys.exit(1 if bad else 0)
PYEOF

# the same listing after a remount (nothing cached)
swafs_umount "$M"
swafs_mount "$B" "$M"
list_cmp "ls -f after remount" ls -f

# remove files while reading the directory
"$PYTHON" - "$M/big" <<'PYEOF' || fail "unlink during readdir"
import os, sys
d = sys.argv[1]
n = 0
with os.scandir(d) as it:
    for e in it:
        if not e.is_dir(follow_symlinks=False):
            os.unlink(e.path)
            n += 1
left = [x for x in os.listdir(d) if not os.path.isdir(os.path.join(d, x))]
if n != 9000 or left:
    print('MISMATCH: unlinked %d of 9000, %d non-directories left' % (n, len(left)))
    sys.exit(1)
PYEOF
rm -r "$M/big" || fail "rm -r of the big directory failed"
[ ! -e "$B/big" ] || fail "'$B/big' still exists after rm -r through the mount"
left=$(find "$M" -mindepth 1 | head)
[ -z "$left" ] || fail "mount not empty: $left"
swafs_umount "$M"
log ok
