#!/usr/bin/env python3
"""G6: every modifying call on a view must fail with EROFS.

  ckpt_g6ops.py VIEW [--expect ERRNAME]

VIEW holds (from the test): f (file with xattr user.x), d/ (dir) with
d/inner, e/ (empty dir), l (symlink to f), p (fifo), h (hard link to f).
Prints every call whose result is not the expected errno; exit 1 if any.
"""
import ctypes
import errno
import os
import sys

view = sys.argv[1]
want = errno.EROFS
# --rw-remounted: the view's ro flag was lifted by root, the daemon answers.
# Two calls are then decided by the kernel alone: renaming a name over
# another name of the same inode is a no-op that returns 0, and O_TMPFILE
# cannot reach a libfuse 3.14 daemon at all (EOPNOTSUPP).
rw = '--rw-remounted' in sys.argv
if '--expect' in sys.argv:
    want = getattr(errno, sys.argv[sys.argv.index('--expect') + 1])
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100


def P(n):
    return os.path.join(view, n)


def c_call(fn, *args):
    if fn(*args) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def renameat2(a, b, flags):
    c_call(libc.renameat2, AT_FDCWD, P(a).encode(), AT_FDCWD, P(b).encode(),
           flags)


def open_close(p, flags, mode=0o644):
    fd = os.open(p, flags, mode)
    os.close(fd)


calls = [
    ('open O_WRONLY', lambda: open_close(P('f'), os.O_WRONLY)),
    ('open O_RDWR', lambda: open_close(P('f'), os.O_RDWR)),
    ('open O_WRONLY|O_APPEND', lambda: open_close(P('f'), os.O_WRONLY | os.O_APPEND)),
    ('open O_RDONLY|O_TRUNC', lambda: open_close(P('f'), os.O_RDONLY | os.O_TRUNC)),
    ('open O_WRONLY|O_TRUNC', lambda: open_close(P('f'), os.O_WRONLY | os.O_TRUNC)),
    ('create', lambda: open_close(P('new'), os.O_CREAT | os.O_WRONLY)),
    ('create O_EXCL rdonly', lambda: open_close(P('new2'), os.O_CREAT | os.O_EXCL | os.O_RDONLY)),
    ('create in subdir', lambda: open_close(P('d/new'), os.O_CREAT | os.O_WRONLY)),
    ('O_TMPFILE', lambda: open_close(P('d'), os.O_TMPFILE | os.O_WRONLY)),
    ('truncate', lambda: os.truncate(P('f'), 0)),
    ('truncate grow', lambda: os.truncate(P('f'), 1 << 20)),
    ('truncate via symlink', lambda: os.truncate(P('l'), 0)),
    ('mkdir', lambda: os.mkdir(P('newdir'))),
    ('mkdir in subdir', lambda: os.mkdir(P('d/newdir'))),
    ('rmdir', lambda: os.rmdir(P('e'))),
    ('unlink', lambda: os.unlink(P('f'))),
    ('unlink symlink', lambda: os.unlink(P('l'))),
    ('unlink fifo', lambda: os.unlink(P('p'))),
    ('unlink in subdir', lambda: os.unlink(P('d/inner'))),
    ('rename', lambda: os.rename(P('f'), P('g'))),
    ('rename over', lambda: os.rename(P('f'), P('d/inner'))),
    ('rename hard link over its twin', lambda: os.rename(P('f'), P('h'))),
    ('rename dir', lambda: os.rename(P('d'), P('d2'))),
    ('rename into dir', lambda: os.rename(P('f'), P('d/f'))),
    ('rename exchange', lambda: renameat2('f', 'l', 2)),
    ('rename noreplace', lambda: renameat2('f', 'zz', 1)),
    ('link', lambda: os.link(P('f'), P('newlink'))),
    ('symlink', lambda: os.symlink('f', P('newsym'))),
    ('mkfifo', lambda: os.mkfifo(P('newfifo'))),
    ('mknod reg', lambda: os.mknod(P('newnod'), 0o644 | 0o100000)),
    ('mknod chr', lambda: os.mknod(P('newchr'), 0o600 | 0o020000, os.makedev(1, 3))),
    ('chmod', lambda: os.chmod(P('f'), 0o600)),
    ('chmod dir', lambda: os.chmod(P('d'), 0o700)),
    ('chmod via symlink', lambda: os.chmod(P('l'), 0o600)),
    ('chown', lambda: os.chown(P('f'), 1, 1)),
    ('chown dir', lambda: os.chown(P('d'), 1, 1)),
    ('lchown', lambda: os.chown(P('l'), 1, 1, follow_symlinks=False)),
    ('utime', lambda: os.utime(P('f'), (1, 1))),
    ('utime now', lambda: os.utime(P('f'), None)),
    ('utime dir', lambda: os.utime(P('d'), (1, 1))),
    ('lutime', lambda: os.utime(P('l'), (1, 1), follow_symlinks=False)),
    ('setxattr', lambda: os.setxattr(P('f'), 'user.y', b'1')),
    ('setxattr replace', lambda: os.setxattr(P('f'), 'user.x', b'2')),
    ('setxattr dir', lambda: os.setxattr(P('d'), 'user.y', b'1')),
    ('removexattr', lambda: os.removexattr(P('f'), 'user.x')),
    ('removexattr missing', lambda: os.removexattr(P('f'), 'user.none')),
]

bad = []
for c in calls:
    what, fn = c
    try:
        fn()
        if rw and what == 'rename hard link over its twin':
            continue
        bad.append('%s: succeeded' % what)
    except OSError as e:
        if rw and what == 'O_TMPFILE' and e.errno == errno.EOPNOTSUPP:
            continue
        if e.errno != want:
            bad.append('%s: %s' % (what, errno.errorcode.get(e.errno, e.errno)))

# calls on descriptors opened read-only (the only kind a view gives)
fd = os.open(P('f'), os.O_RDONLY)
for what, fn in [('write on O_RDONLY fd', lambda: os.write(fd, b'x')),
                 ('ftruncate on O_RDONLY fd', lambda: os.ftruncate(fd, 0)),
                 ('fchmod', lambda: os.fchmod(fd, 0o600)),
                 ('fchown', lambda: os.fchown(fd, 1, 1)),
                 ('futimens', lambda: os.utime(fd, (1, 1))),
                 ('fsetxattr', lambda: os.setxattr(fd, 'user.z', b'1'))]:
    try:
        fn()
        bad.append('%s: succeeded' % what)
    except OSError as e:
        # write/ftruncate on a read-only descriptor: EBADF/EINVAL is the
        # kernel's answer before the file system is asked; never success
        if what.startswith(('write', 'ftruncate')):
            if e.errno not in (errno.EBADF, errno.EINVAL, want):
                bad.append('%s: %s' % (what, errno.errorcode.get(e.errno)))
        elif e.errno != want:
            bad.append('%s: %s' % (what, errno.errorcode.get(e.errno)))
os.close(fd)

print('%d calls checked, %d not %s' % (len(calls) + 6, len(bad),
                                     errno.errorcode[want]))
for b in bad:
    print('ERROR:', b)
sys.exit(1 if bad else 0)
