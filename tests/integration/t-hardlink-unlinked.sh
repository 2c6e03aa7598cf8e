#!/usr/bin/env bash
# Hard links, open-unlinked files and rename over an open file, with
# absolute expectations (not only "same as a plain directory"): one st_ino
# for all names of a file, st_nlink counts, data reachable through every
# name and every open fd, and what BACKING holds afterwards.
. "$(dirname "$0")/lib.sh"

B=$WORK/backing M=$WORK/mnt
mkdir "$B" "$M"
swafs_mount "$B" "$M"

"$PYTHON" - "$M" "$B" <<'PYEOF' || fail "see above"
import os, sys
m, b = sys.argv[1], sys.argv[2]
errors = []


def check(what, got, want):
    if got != want:
        errors.append('%s: got %r, expected %r' % (what, got, want))


def M(p):
    return os.path.join(m, p)


def B(p):
    return os.path.join(b, p)


# hard links
os.mkdir(M('d1'))
os.mkdir(M('d2'))
with open(M('a'), 'wb') as f:
    f.write(b'shared')
os.link(M('a'), M('d1/b'))
os.link(M('d1/b'), M('d2/c'))
names = ['a', 'd1/b', 'd2/c']
inos = {os.stat(M(n)).st_ino for n in names}
check('st_ino of the 3 names', len(inos), 1)
for n in names:
    check('st_nlink of ' + n, os.stat(M(n)).st_nlink, 3)
    check('backing st_nlink of ' + n, os.stat(B(n)).st_nlink, 3)
check('backing inodes', len({os.stat(B(n)).st_ino for n in names}), 1)
with open(M('d2/c'), 'ab') as f:
    f.write(b' data')
for n in names:
    with open(M(n), 'rb') as f:
        check('content via ' + n, f.read(), b'shared data')
os.chmod(M('d1/b'), 0o600)
check('mode via other name', os.stat(M('a')).st_mode & 0o777, 0o600)
os.setxattr(M('a'), 'user.x', b'1')
check('xattr via other name', os.getxattr(M('d2/c'), 'user.x'), b'1')
os.unlink(M('a'))
check('nlink after unlink', os.stat(M('d1/b')).st_nlink, 2)
os.rename(M('d1/b'), M('d2/b'))
check('nlink after rename', os.stat(M('d2/c')).st_nlink, 2)
check('same ino after rename', os.stat(M('d2/b')).st_ino,
      os.stat(M('d2/c')).st_ino)
# rename one name of a file onto another name of the same file: no-op
os.rename(M('d2/b'), M('d2/c'))
check('both names after rename onto own link', sorted(os.listdir(M('d2'))),
      ['b', 'c'])
# a hard link made in BACKING-visible form matches through the mount
check('ino stable after forget', os.stat(M('d2/b')).st_ino,
      os.stat(M('d2/c')).st_ino)
# many links, and inode numbers of distinct files differ
with open(M('solo'), 'wb') as f:
    f.write(b'solo')
for i in range(50):
    os.link(M('solo'), M('d1/l%d' % i))
check('nlink 51', os.stat(M('solo')).st_nlink, 51)
check('inos of 51 names', len({os.stat(M('d1/l%d' % i)).st_ino
                               for i in range(50)} |
                              {os.stat(M('solo')).st_ino}), 1)
check('distinct files have distinct inos',
      os.stat(M('solo')).st_ino != os.stat(M('d2/c')).st_ino, True)
for i in range(50):
    os.unlink(M('d1/l%d' % i))
check('nlink back to 1', os.stat(M('solo')).st_nlink, 1)

# open-unlinked file: readable, writable, fstat-able, ftruncate-able
fd = os.open(M('ou'), os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b'0123456789')
ino = os.fstat(fd).st_ino
os.unlink(M('ou'))
check('name gone', os.path.exists(M('ou')), False)
check('gone from backing listing', 'ou' in os.listdir(b), False)
st = os.fstat(fd)
check('fstat nlink', st.st_nlink, 0)
check('fstat size', st.st_size, 10)
check('fstat ino unchanged', st.st_ino, ino)
check('pread', os.pread(fd, 100, 0), b'0123456789')
check('pwrite', os.pwrite(fd, b'ABC', 8), 3)
check('pread after pwrite', os.pread(fd, 100, 0), b'01234567ABC')
os.ftruncate(fd, 4)
check('size after ftruncate', os.fstat(fd).st_size, 4)
check('pread after ftruncate', os.pread(fd, 100, 0), b'0123')
os.ftruncate(fd, 1 << 20)
check('size after growing', os.fstat(fd).st_size, 1 << 20)
check('zeros after growing', os.pread(fd, 8, 100000), bytes(8))
os.fchmod(fd, 0o600)
check('fchmod on unlinked', os.fstat(fd).st_mode & 0o777, 0o600)
os.fsync(fd)
# a second open file of the same unlinked inode through /proc/self/fd
fd2 = os.open('/proc/self/fd/%d' % fd, os.O_RDONLY)
check('reopen via /proc', os.pread(fd2, 4, 0), b'0123')
os.close(fd2)
# a new file under the old name is a different file
with open(M('ou'), 'wb') as f:
    f.write(b'new')
check('new file has other ino', os.stat(M('ou')).st_ino != ino, True)
check('old fd still sees old data', os.pread(fd, 4, 0), b'0123')
os.close(fd)
with open(B('ou'), 'rb') as f:
    check('backing has the new file', f.read(), b'new')

# unlinked file kept open while many other files come and go (the daemon
# may reuse fds and inode slots)
fd = os.open(M('keep'), os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b'keep me')
os.unlink(M('keep'))
for i in range(300):
    p = M('churn%d' % i)
    with open(p, 'wb') as f:
        f.write(b'x' * i)
    os.stat(p)
    os.unlink(p)
check('unlinked survives churn', os.pread(fd, 100, 0), b'keep me')
os.close(fd)

# rename over an open file
with open(M('target'), 'wb') as f:
    f.write(b'old contents')
with open(M('target.tmp'), 'wb') as f:
    f.write(b'new contents!')
rfd = os.open(M('target'), os.O_RDONLY)
wfd = os.open(M('target'), os.O_RDWR)
old_ino = os.fstat(rfd).st_ino
os.rename(M('target.tmp'), M('target'))
check('old fd reads old', os.pread(rfd, 100, 0), b'old contents')
check('old fd nlink', os.fstat(rfd).st_nlink, 0)
check('name reads new', open(M('target'), 'rb').read(), b'new contents!')
check('name has new ino', os.stat(M('target')).st_ino != old_ino, True)
os.pwrite(wfd, b'OLD', 0)
check('write via old fd seen via old fd', os.pread(rfd, 100, 0),
      b'OLD contents')
check('write via old fd not in new file', open(M('target'), 'rb').read(),
      b'new contents!')
check('backing has new', open(B('target'), 'rb').read(), b'new contents!')
os.ftruncate(wfd, 2)
check('ftruncate replaced file', os.pread(rfd, 100, 0), b'OL')
os.close(rfd)
os.close(wfd)
check('listing', sorted(os.listdir(m)),
      ['d1', 'd2', 'ou', 'solo', 'target'])
check('backing listing', sorted(os.listdir(b)),
      ['d1', 'd2', 'ou', 'solo', 'target'])

# renaming a directory keeps open files in it working
os.mkdir(M('dir'))
fd = os.open(M('dir/f'), os.O_RDWR | os.O_CREAT, 0o644)
os.rename(M('dir'), M('d1/dir2'))
os.write(fd, b'after dir rename')
os.fsync(fd)
check('write after dir rename', open(B('d1/dir2/f'), 'rb').read(),
      b'after dir rename')
os.close(fd)

for e in errors:
    print('MISMATCH:', e)
print('%d checks failed' % len(errors))
sys.exit(1 if errors else 0)
PYEOF

# and after a remount (no cached state) the links are still one inode
swafs_umount "$M"
swafs_mount "$B" "$M"
i1=$(stat -c %i "$M/d2/b") i2=$(stat -c %i "$M/d2/c")
assert_eq "st_ino of two names after remount" "$i1" "$i2"
assert_eq "st_nlink after remount" 2 "$(stat -c %h "$M/d2/b")"
assert_eq "content after remount" "shared data" "$(cat "$M/d2/c")"
swafs_umount "$M"
log ok
