#!/usr/bin/env python3
"""Passthrough conformance: the same system calls in a plain directory and
through a swafs mount must give the same results.

  conformance.py PLAIN MOUNT BACKING [--no-user] [--no-root]
                 [--only SECTION...] [--dump PREFIX]

PLAIN and MOUNT are empty directories on the same filesystem as BACKING
(MOUNT is swafs over BACKING, mounted with allow_other). For each of the two
directories, in a fresh child process:
  1. as root, the general sections (s_*) in r/; s_other_users forks
     children with uids 4242 and 4243 for the sticky-directory rules;
  2. as root, fixtures for the unprivileged run (fx/, u/);
  3. as uid 65534, gid 65534, supplementary groups 65534 and 4244: the
     u_* sections in u/ and against fx/ (permissions, set-group-id
     directories, sticky directories, ownership of what it creates);
  4. as the same unprivileged user, the general sections again in nb/r/.
Every call's result (value or errno name) is recorded; stat results keep
only what must match between two directories (type, mode, owner, size,
nlink, allocation, rdev, explicitly set times). The two logs are aligned by
label and compared, then the manifests (helpers.py) of PLAIN vs MOUNT, and
of MOUNT vs BACKING (same objects: every mtime and ctime too).
Each difference is printed; the exit status is 1 if there was any.
Groups of records for what FUSE itself cannot pass on (TOLERATED) are
skipped with a NOTE when the mount answers EOPNOTSUPP there.
stdlib only.
"""
import ctypes
import difflib
import errno
import fcntl
import hashlib
import json
import mmap
import os
import signal
import socket
import stat
import struct
import sys
import termios
import time
import traceback

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers  # noqa: E402

UID_A, GID_A = 4242, 4243          # "other" users for root-run children
UID_B, GID_B = 4243, 4246
NOBODY, NOGROUP, EXTRA_GID, FOREIGN_GID = 65534, 65534, 4244, 4245

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_SYMLINK_FOLLOW = 0x400
RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
FL_KEEP_SIZE, FL_PUNCH_HOLE = 0x01, 0x02
FL_COLLAPSE_RANGE, FL_ZERO_RANGE, FL_INSERT_RANGE = 0x08, 0x10, 0x20
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
FS_IOC_GETFLAGS = 0x80086601
SEEK_DATA, SEEK_HOLE = 3, 4

libc = ctypes.CDLL(None, use_errno=True)
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                           ctypes.c_char_p, ctypes.c_uint]
libc.linkat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                        ctypes.c_char_p, ctypes.c_int]
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64,
                           ctypes.c_int64]
libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p,
                           ctypes.c_int]


class Timespec(ctypes.Structure):
    _fields_ = [('tv_sec', ctypes.c_long), ('tv_nsec', ctypes.c_long)]


def _check(rc):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def renameat2(old, new, flags):
    _check(libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD,
                          os.fsencode(new), flags))


def linkat(old, new, flags):
    """os.link() calls link(2), which never follows; this is linkat(2)."""
    _check(libc.linkat(AT_FDCWD, os.fsencode(old), AT_FDCWD,
                       os.fsencode(new), flags))


def fallocate(fd, mode, off, length):
    _check(libc.fallocate(fd, mode, off, length))


def utimensat(path, atime, mtime, nofollow=False):
    """atime/mtime: (sec, nsec) or UTIME_NOW / UTIME_OMIT."""
    ts = (Timespec * 2)()
    for i, t in enumerate((atime, mtime)):
        if isinstance(t, tuple):
            ts[i].tv_sec, ts[i].tv_nsec = t
        else:
            ts[i].tv_sec, ts[i].tv_nsec = 0, t
    _check(libc.utimensat(AT_FDCWD, os.fsencode(path), ts,
                          AT_SYMLINK_NOFOLLOW if nofollow else 0))


def ftype(m):
    for t, n in ((stat.S_ISREG, 'reg'), (stat.S_ISDIR, 'dir'),
                 (stat.S_ISLNK, 'lnk'), (stat.S_ISFIFO, 'fifo'),
                 (stat.S_ISSOCK, 'sock'), (stat.S_ISCHR, 'chr'),
                 (stat.S_ISBLK, 'blk')):
        if t(m):
            return n
    return '?'


def explicit(ns):
    """A time the sequence set on purpose (all such are < 2001 or > 2096)."""
    s = ns // 10**9
    return s < 10**9 or s > 4 * 10**9


def fmt_stat(st, times=False):
    m = st.st_mode
    f = ['%s mode=%04o uid=%d gid=%d nlink=%d' % (
        ftype(m), stat.S_IMODE(m), st.st_uid, st.st_gid, st.st_nlink)]
    if stat.S_ISREG(m) or stat.S_ISLNK(m) or stat.S_ISDIR(m):
        f.append('size=%d' % st.st_size)
    if stat.S_ISREG(m):
        f.append(helpers.alloc(st))
    if stat.S_ISCHR(m) or stat.S_ISBLK(m):
        f.append('rdev=%d,%d' % (os.major(st.st_rdev), os.minor(st.st_rdev)))
    if times or explicit(st.st_mtime_ns):
        f.append('mtime=%d' % st.st_mtime_ns)
    if times:
        f.append('atime=%d' % st.st_atime_ns)
    return ' '.join(f)


def fmt(v):
    if v is None:
        return ''
    if isinstance(v, os.stat_result):
        return ' ' + fmt_stat(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        v = bytes(v)
        if len(v) > 64:
            return ' %d bytes sha=%s' % (len(v),
                                         hashlib.sha256(v).hexdigest()[:16])
        return ' ' + repr(v)
    if isinstance(v, os.statvfs_result):
        return ' bsize=%d frsize=%d blocks=%d files=%d namemax=%d' % (
            v.f_bsize, v.f_frsize, v.f_blocks, v.f_files, v.f_namemax)
    if isinstance(v, list):
        return ' [%s]' % ','.join(fmt(x).strip() for x in v)
    return ' ' + repr(v)


def errname(e):
    return errno.errorcode.get(e, str(e))


class Crash(Exception):
    pass


class Run:
    """Records (group, label, result) for one directory."""

    def __init__(self, is_mount):
        self.is_mount = is_mount
        self.log = []
        self.group = ''

    def add(self, label, result):
        self.log.append((self.group, label, result))

    def rec(self, label, fn, *args, **kw):
        """Call fn, record 'ok VALUE' or 'ERR ENAME'; return value or None."""
        try:
            v = fn(*args, **kw)
        except OSError as e:
            self.add(label, 'ERR ' + errname(e.errno))
            return None
        self.add(label, 'ok' + fmt(v))
        return v

    def open(self, label, path, flags, mode=0o644, **kw):
        """os.open recorded without the fd number; returns fd or None."""
        try:
            fd = os.open(path, flags, mode, **kw)
        except OSError as e:
            self.add(label, 'ERR ' + errname(e.errno))
            return None
        self.add(label, 'ok fd')
        return fd

    def st(self, path, follow=False, times=False, label=None):
        fn = os.stat if follow else os.lstat
        try:
            v = fmt_stat(fn(path), times)
        except OSError as e:
            v = 'ERR ' + errname(e.errno)
        self.add(label or ('%s %r' % ('stat' if follow else 'lstat', path)),
                 v)

    def fst(self, fd, label, times=False):
        try:
            v = fmt_stat(os.fstat(fd), times)
        except OSError as e:
            v = 'ERR ' + errname(e.errno)
        self.add(label, v)

    def same(self, a, b):
        """Record whether a and b are the same inode (lstat)."""
        try:
            sa, sb = os.lstat(a), os.lstat(b)
            v = 'ok %s' % ((sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino))
        except OSError as e:
            v = 'ERR ' + errname(e.errno)
        self.add('same inode %r %r' % (a, b), v)

    def content(self, path, label=None):
        def rd():
            with open(path, 'rb') as f:
                return f.read()
        return self.rec(label or 'content %r' % path, rd)

    def ls(self, path):
        return self.rec('listdir %r' % path, lambda: sorted(os.listdir(path)))

    def close(self, fd):
        if fd is not None:
            os.close(fd)

    def child(self, label, fn, uid=None, gid=None, groups=()):
        """Run fn(Run) in a forked child, optionally as another user, and
        record what it recorded under label."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                signal.alarm(120)
                if uid is not None:
                    os.setgroups(list(groups))
                    os.setgid(gid)
                    os.setuid(uid)
                sub = Run(self.is_mount)
                try:
                    fn(sub)
                except Exception:
                    sub.add('CRASH', traceback.format_exc().splitlines()[-1])
                data = json.dumps(sub.log).encode()
                while data:
                    data = data[os.write(w, data):]
            finally:
                os._exit(0)
        os.close(w)
        chunks = []
        while True:
            b = os.read(r, 65536)
            if not b:
                break
            chunks.append(b)
        os.close(r)
        _, status = os.waitpid(pid, 0)
        try:
            out = json.loads(b''.join(chunks) or b'[]')
        except ValueError:
            out = [('', 'bad output', repr(b''.join(chunks)[:100]))]
        if status != 0:
            out.append(('', 'exit', 'status %d' % status))
        for grp, lab, res in out:
            self.log.append((grp or self.group, '%s: %s' % (label, lab), res))


def pat(n, seed=0):
    return helpers.pattern('c%d' % seed, 0, n)


def writefile(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


# --------------------------------------------------------------- root run

def s_open_flags(R):
    R.rec('umask', os.umask, 0o022)
    fd = R.open('create excl', 'r/f1', os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                0o666)
    R.fst(fd, 'fstat new')
    R.rec('write', os.write, fd, b'hello world\n')
    R.rec('read on O_WRONLY', os.read, fd, 10)
    R.close(fd)
    R.open('create excl again', 'r/f1', os.O_RDWR | os.O_CREAT | os.O_EXCL)
    fd = R.open('O_RDONLY', 'r/f1', os.O_RDONLY)
    R.rec('read', os.read, fd, 100)
    R.rec('read at eof', os.read, fd, 100)
    R.rec('pread', os.pread, fd, 5, 6)
    R.rec('pread past eof', os.pread, fd, 5, 600)
    R.rec('write on O_RDONLY', os.write, fd, b'x')
    R.rec('lseek end', os.lseek, fd, 0, os.SEEK_END)
    R.close(fd)
    fd = R.open('O_WRONLY|O_TRUNC', 'r/f1', os.O_WRONLY | os.O_TRUNC)
    R.fst(fd, 'fstat after O_TRUNC')
    R.rec('write', os.write, fd, b'abc')
    R.close(fd)
    fd = R.open('O_RDONLY|O_TRUNC', 'r/f1', os.O_RDONLY | os.O_TRUNC)
    R.fst(fd, 'fstat after O_RDONLY|O_TRUNC')
    R.close(fd)
    writefile('r/f1', b'abc')
    fd = R.open('O_APPEND', 'r/f1', os.O_WRONLY | os.O_APPEND)
    R.rec('append', os.write, fd, b'def')
    R.rec('pwrite with O_APPEND', os.pwrite, fd, b'XY', 0)
    R.rec('offset', os.lseek, fd, 0, os.SEEK_CUR)
    R.close(fd)
    R.content('r/f1')
    fd = R.open('O_RDWR|O_CREAT no excl', 'r/f1', os.O_RDWR | os.O_CREAT,
                0o600)
    R.fst(fd, 'mode unchanged by O_CREAT on existing')
    R.rec('overwrite middle', os.pwrite, fd, b'__', 2)
    R.close(fd)
    R.content('r/f1')
    R.open('missing', 'r/missing', os.O_RDONLY)
    R.open('file as dir', 'r/f1/x', os.O_RDONLY)
    R.open('create under file', 'r/f1/x', os.O_RDWR | os.O_CREAT)
    R.open('create in missing dir', 'r/nodir/x', os.O_RDWR | os.O_CREAT)
    R.open('dir O_WRONLY', 'r', os.O_WRONLY)
    R.open('dir O_RDWR|O_CREAT', 'r', os.O_RDWR | os.O_CREAT)
    fd = R.open('dir O_DIRECTORY', 'r', os.O_RDONLY | os.O_DIRECTORY)
    R.rec('read on dir fd', os.read, fd, 10)
    R.close(fd)
    R.open('file O_DIRECTORY', 'r/f1', os.O_RDONLY | os.O_DIRECTORY)
    R.open('O_CREAT|O_DIRECTORY', 'r/newdir',
           os.O_RDONLY | os.O_CREAT | os.O_DIRECTORY)
    for name, fl in (('O_SYNC', os.O_SYNC), ('O_DSYNC', os.O_DSYNC),
                     ('O_NOATIME', os.O_NOATIME), ('O_CLOEXEC', os.O_CLOEXEC),
                     ('O_NONBLOCK', os.O_NONBLOCK), ('O_NOCTTY', os.O_NOCTTY)):
        fd = R.open(name, 'r/fl_' + name,
                    os.O_RDWR | os.O_CREAT | os.O_EXCL | fl, 0o640)
        R.rec(name + ' write', os.write, fd, name.encode() * 100)
        R.rec(name + ' pread', os.pread, fd, 20, 10)
        R.rec(name + ' fsync', os.fsync, fd)
        R.rec(name + ' fdatasync', os.fdatasync, fd)
        R.close(fd)
        R.st('r/fl_' + name)
    # O_PATH
    fd = R.open('O_PATH', 'r/f1', os.O_PATH)
    R.fst(fd, 'fstat O_PATH')
    R.rec('read O_PATH', os.read, fd, 1)
    R.close(fd)
    # O_TMPFILE, then give it a name (group: see TOLERATED)
    R.group = 'tmpfile'
    fd = R.open('O_TMPFILE', 'r', os.O_TMPFILE | os.O_RDWR, 0o600)
    if fd is not None:
        R.rec('tmpfile write', os.write, fd, b'anonymous')
        R.fst(fd, 'tmpfile fstat')
        R.rec('tmpfile link', linkat, '/proc/self/fd/%d' % fd,
              'r/tmp_linked', AT_SYMLINK_FOLLOW)
        R.fst(fd, 'tmpfile fstat after link')
        R.close(fd)
        R.content('r/tmp_linked')
        R.rec('unlink', os.unlink, 'r/tmp_linked')
    fd = R.open('O_TMPFILE|O_EXCL', 'r', os.O_TMPFILE | os.O_RDWR |
                os.O_EXCL, 0o600)
    if fd is not None:
        R.rec('link O_EXCL tmpfile', linkat, '/proc/self/fd/%d' % fd,
              'r/tmp_linked', AT_SYMLINK_FOLLOW)
        R.close(fd)
    R.open('O_TMPFILE on file', 'r/f1', os.O_TMPFILE | os.O_RDWR)
    R.group = ''
    R.ls('r')


def s_direct(R):
    size = 1 << 16
    wbuf = mmap.mmap(-1, size)
    wbuf.write(pat(size, 7))
    fd = R.open('O_DIRECT create', 'r/direct',
                os.O_RDWR | os.O_CREAT | os.O_DIRECT)
    if fd is None:
        return
    R.rec('O_DIRECT write 64k', os.write, fd, wbuf)
    R.rec('O_DIRECT pwrite 8k at 96k', os.pwrite, fd,
          memoryview(wbuf)[:8192], 3 * 32768)
    R.fst(fd, 'fstat O_DIRECT')
    rbuf = mmap.mmap(-1, size)
    R.rec('lseek 0', os.lseek, fd, 0, os.SEEK_SET)
    n = R.rec('O_DIRECT readv 64k', os.readv, fd, [rbuf])
    R.add('O_DIRECT read back equal', str(n == size and rbuf[:] == wbuf[:]))
    rbuf2 = mmap.mmap(-1, 8192)
    R.rec('O_DIRECT preadv 8k at 96k', os.preadv, fd, [rbuf2], 3 * 32768)
    R.add('O_DIRECT preadv equal', str(rbuf2[:] == wbuf[:8192]))
    R.rec('O_DIRECT read at eof', os.preadv, fd, [rbuf2], 1 << 20)
    R.close(fd)
    R.content('r/direct')
    R.rec('unlink', os.unlink, 'r/direct')


def s_dirs(R):
    R.rec('mkdir', os.mkdir, 'r/d', 0o777)
    R.st('r/d')
    R.rec('mkdir existing', os.mkdir, 'r/d')
    R.rec('mkdir in missing', os.mkdir, 'r/nope/x')
    R.rec('mkdir under file', os.mkdir, 'r/f1/x')
    R.rec('mkdir sub', os.mkdir, 'r/d/sub', 0o700)
    R.st('r/d')
    R.st('r/d/sub')
    writefile('r/d/sub/file', b'x')
    R.rec('rmdir non-empty', os.rmdir, 'r/d')
    R.rec('rmdir non-empty 2', os.rmdir, 'r/d/sub')
    R.rec('rmdir file', os.rmdir, 'r/f1')
    R.rec('rmdir missing', os.rmdir, 'r/missing')
    R.rec('rmdir dot', os.rmdir, 'r/d/sub/.')
    R.rec('rmdir dotdot', os.rmdir, 'r/d/sub/..')
    R.rec('unlink dir', os.unlink, 'r/d')
    R.rec('unlink missing', os.unlink, 'r/missing')
    R.rec('unlink file/', os.unlink, 'r/f1/')
    R.rec('stat file/', os.stat, 'r/f1/')
    R.rec('stat dir/.', os.stat, 'r/d/.')
    R.rec('stat dir/sub/..', os.stat, 'r/d/sub/..')
    R.rec('unlink in sub', os.unlink, 'r/d/sub/file')
    R.rec('rmdir empty', os.rmdir, 'r/d/sub')
    R.st('r/d')
    R.rec('mkdir deep', os.makedirs, 'r/deep/a/b/c/d/e/f/g/h')
    R.rec('umask 0', os.umask, 0)
    R.rec('mkdir 0777', os.mkdir, 'r/d777', 0o777)
    R.rec('mkdir 1777', os.mkdir, 'r/d1777', 0o1777)
    R.rec('mkdir 2755', os.mkdir, 'r/d2755', 0o2755)
    R.rec('mkdir 7777', os.mkdir, 'r/d7777', 0o7777)
    R.rec('create 0666', writefile, 'r/f666', b'', 0o666)
    R.rec('create 06777', writefile, 'r/f6777', b'', 0o6777)
    R.rec('umask 077', os.umask, 0o077)
    R.rec('mkdir 0777 umask 077', os.mkdir, 'r/d700', 0o777)
    R.rec('create 0666 umask 077', writefile, 'r/f600', b'', 0o666)
    R.rec('umask 022', os.umask, 0o022)
    for p in ('r/d777', 'r/d1777', 'r/d2755', 'r/d7777', 'r/d700',
              'r/f666', 'r/f6777', 'r/f600'):
        R.st(p)
    # set-group-id directory inheritance
    R.rec('mkdir sgid', os.mkdir, 'r/sg')
    R.rec('chown sgid dir', os.chown, 'r/sg', 0, GID_A)
    R.rec('chmod sgid dir', os.chmod, 'r/sg', 0o2775)
    R.rec('mkdir in sgid', os.mkdir, 'r/sg/sub', 0o755)
    R.rec('create in sgid', writefile, 'r/sg/file', b'', 0o2755)
    R.rec('mkfifo in sgid', os.mkfifo, 'r/sg/fifo')
    R.rec('symlink in sgid', os.symlink, 'file', 'r/sg/link')
    for p in ('r/sg', 'r/sg/sub', 'r/sg/file', 'r/sg/fifo', 'r/sg/link'):
        R.st(p)
    R.rec('scandir types', lambda: sorted(
        (e.name, e.is_dir(follow_symlinks=False),
         e.is_file(follow_symlinks=False), e.is_symlink())
        for e in os.scandir('r/sg')))
    R.rec('listdir via fd', lambda: sorted(os.listdir(
        os.open('r/sg', os.O_RDONLY))))
    R.ls('r')
    R.rec('statvfs', os.statvfs, 'r')


def s_names(R):
    names = ['sp ace', 'tab\there', 'new\nline', 'ü-ñ-€', '-dash',
             '..dots', '...', 'x' * 255, '#%*?[]{}', 'back\\slash', "quo'te\"s"]
    os.mkdir('r/names')
    for n in names:
        R.rec('create %r' % n, writefile, 'r/names/' + n, n.encode())
    R.rec('create bytes name', writefile, b'r/names/\xff\xfe\x80', b'bin')
    R.rec('listdir bytes', lambda: sorted(os.listdir(b'r/names')))
    for n in names:
        R.content('r/names/' + n)
    long = 'y' * 256
    R.rec('create 256', writefile, 'r/names/' + long, b'')
    R.rec('stat 256', os.stat, 'r/names/' + long)
    R.rec('mkdir 256', os.mkdir, 'r/names/' + long)
    R.rec('symlink name 256', os.symlink, 'x', 'r/names/' + long)
    R.rec('link to 256', os.link, 'r/f1', 'r/names/' + long)
    R.rec('rename to 256', os.rename, 'r/names/-dash', 'r/names/' + long)
    R.rec('mkfifo 256', os.mkfifo, 'r/names/' + long)
    R.rec('path > PATH_MAX', os.stat, 'r/' + 'a/' * 2100)
    R.rec('component 255 in deep path', os.stat,
          'r/names/' + 'x' * 255 + '/../' + 'x' * 255)
    R.rec('symlink target 4095', os.symlink, 't' * 4095, 'r/names/lt')
    R.st('r/names/lt')
    R.rec('symlink target 4096', os.symlink, 't' * 4096, 'r/names/lt2')
    R.rec('readlink 4095', lambda: len(os.readlink('r/names/lt')))


def s_symlinks(R):
    R.rec('symlink', os.symlink, 'f1', 'r/l1')
    R.rec('readlink', os.readlink, 'r/l1')
    R.st('r/l1')
    R.st('r/l1', follow=True)
    R.rec('symlink existing', os.symlink, 'x', 'r/l1')
    R.rec('symlink over file', os.symlink, 'x', 'r/f1')
    R.rec('readlink on file', os.readlink, 'r/f1')
    R.rec('readlink missing', os.readlink, 'r/missing')
    R.rec('dangling', os.symlink, 'nowhere', 'r/dangling')
    R.rec('stat dangling', os.stat, 'r/dangling')
    R.st('r/dangling')
    R.open('O_CREAT|O_EXCL on dangling', 'r/dangling',
           os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    fd = R.open('O_CREAT through dangling', 'r/dangling',
                os.O_WRONLY | os.O_CREAT, 0o640)
    R.close(fd)
    R.st('r/nowhere')
    R.rec('loop1', os.symlink, 'loop2', 'r/loop1')
    R.rec('loop2', os.symlink, 'loop1', 'r/loop2')
    R.rec('stat loop', os.stat, 'r/loop1')
    R.open('open loop', 'r/loop1', os.O_RDONLY)
    R.rec('self loop', os.symlink, 'self', 'r/self')
    R.rec('stat self loop', os.stat, 'r/self/x')
    R.open('O_NOFOLLOW', 'r/l1', os.O_RDONLY | os.O_NOFOLLOW)
    fd = R.open('O_PATH|O_NOFOLLOW', 'r/l1', os.O_PATH | os.O_NOFOLLOW)
    R.fst(fd, 'fstat O_PATH symlink')
    R.close(fd)
    R.rec('symlink to dir', os.symlink, 'd', 'r/ld')
    R.rec('stat via dir link', os.stat, 'r/ld/.')
    fd = R.open('O_DIRECTORY via link', 'r/ld', os.O_RDONLY | os.O_DIRECTORY)
    R.close(fd)
    R.open('O_DIRECTORY|O_NOFOLLOW via link', 'r/ld',
           os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    R.rec('abs symlink', os.symlink, '/nonexistent/abs', 'r/labs')
    R.rec('readlink abs', os.readlink, 'r/labs')
    R.rec('lchown symlink', os.chown, 'r/l1', UID_A, GID_A,
          follow_symlinks=False)
    R.st('r/l1')
    R.st('r/f1')
    R.rec('lutimes symlink', os.utime, 'r/l1', ns=(123456789012345678,
                                                  223456789012345678),
          follow_symlinks=False)
    R.st('r/l1', times=True)
    R.st('r/f1')
    R.rec('setxattr on symlink', os.setxattr, 'r/l1', 'user.x', b'1',
          follow_symlinks=False)
    R.rec('getxattr on symlink', os.getxattr, 'r/l1', 'user.x',
          follow_symlinks=False)
    R.rec('listxattr on symlink', os.listxattr, 'r/l1',
          follow_symlinks=False)
    R.rec('unlink symlink', os.unlink, 'r/loop2')
    R.rec('rename symlink', os.rename, 'r/loop1', 'r/d/loop1')
    R.rec('readlink moved', os.readlink, 'r/d/loop1')


def s_hardlinks(R):
    writefile('r/h', b'hard')
    R.rec('link', os.link, 'r/h', 'r/d/h2')
    R.rec('link 3', os.link, 'r/d/h2', 'r/h3')
    for p in ('r/h', 'r/d/h2', 'r/h3'):
        R.st(p)
    R.same('r/h', 'r/d/h2')
    R.same('r/h', 'r/h3')
    R.same('r/h', 'r/f1')
    R.rec('link existing', os.link, 'r/h', 'r/f1')
    R.rec('link dir', os.link, 'r/d', 'r/dlink')
    R.rec('link missing', os.link, 'r/missing', 'r/x')
    R.rec('link into missing dir', os.link, 'r/h', 'r/nodir/x')
    R.rec('link symlink itself', os.link, 'r/l1', 'r/l1hard',
          follow_symlinks=False)
    R.st('r/l1hard')
    R.st('r/l1')
    R.same('r/l1', 'r/l1hard')
    R.rec('link following symlink', linkat, 'r/l1', 'r/l1follow',
          AT_SYMLINK_FOLLOW)
    R.same('r/l1follow', 'r/f1')
    R.st('r/f1')
    R.rec('rename onto own hard link', os.rename, 'r/h', 'r/h3')
    R.ls('r')
    R.st('r/h3')
    with open('r/d/h2', 'ab') as f:
        f.write(b' more')
    R.content('r/h3')
    R.st('r/h3')
    R.rec('unlink one', os.unlink, 'r/h3')
    R.st('r/d/h2')
    R.rec('unlink second', os.unlink, 'r/h')
    R.st('r/d/h2')
    R.rec('chmod via one name', os.chmod, 'r/l1follow', 0o600)
    R.st('r/f1')
    R.rec('chmod back', os.chmod, 'r/f1', 0o644)


def s_rename(R):
    writefile('r/ra', b'A')
    writefile('r/rb', b'B')
    os.mkdir('r/rd1')
    os.mkdir('r/rd2')
    os.mkdir('r/rd3')
    writefile('r/rd3/inner', b'i')
    R.rec('rename', os.rename, 'r/ra', 'r/ra2')
    R.rec('stat old', os.stat, 'r/ra')
    R.rec('rename over file', os.rename, 'r/ra2', 'r/rb')
    R.content('r/rb')
    R.rec('rename missing', os.rename, 'r/ra', 'r/x')
    R.rec('rename to self', os.rename, 'r/rb', 'r/rb')
    R.rec('rename dir over empty dir', os.rename, 'r/rd1', 'r/rd2')
    R.rec('rename dir over non-empty', os.rename, 'r/rd2', 'r/rd3')
    R.rec('rename file over dir', os.rename, 'r/rb', 'r/rd3')
    R.rec('rename dir over file', os.rename, 'r/rd3', 'r/rb')
    R.rec('rename dir into itself', os.rename, 'r/rd3', 'r/rd3/inner2')
    R.rec('rename into missing dir', os.rename, 'r/rb', 'r/nodir/rb')
    R.rec('rename across dirs', os.rename, 'r/rb', 'r/rd3/rb')
    R.rec('rename dir across dirs', os.rename, 'r/rd2', 'r/rd3/rd2')
    R.st('r/rd3')
    R.ls('r/rd3')
    writefile('r/rc', b'C')
    R.rec('NOREPLACE onto existing', renameat2, 'r/rc', 'r/rd3/rb',
          RENAME_NOREPLACE)
    R.rec('NOREPLACE to new', renameat2, 'r/rc', 'r/rc2', RENAME_NOREPLACE)
    R.rec('NOREPLACE missing src', renameat2, 'r/rc', 'r/rc3',
          RENAME_NOREPLACE)
    R.rec('EXCHANGE file/dir', renameat2, 'r/rc2', 'r/rd3',
          RENAME_EXCHANGE)
    R.st('r/rc2')
    R.st('r/rd3')
    R.ls('r/rc2')
    R.content('r/rd3')
    R.rec('EXCHANGE back across dirs', renameat2, 'r/rc2/rb', 'r/rd3',
          RENAME_EXCHANGE)
    R.content('r/rd3')
    R.content('r/rc2/rb')
    R.rec('EXCHANGE with missing', renameat2, 'r/rd3', 'r/nothere',
          RENAME_EXCHANGE)
    R.rec('EXCHANGE|NOREPLACE', renameat2, 'r/rd3', 'r/rc2',
          RENAME_EXCHANGE | RENAME_NOREPLACE)
    R.rec('bad flags', renameat2, 'r/rd3', 'r/rc2', 0x80)
    writefile('r/wh', b'W')
    R.rec('WHITEOUT', renameat2, 'r/wh', 'r/wh2', RENAME_WHITEOUT)
    R.st('r/wh')
    R.st('r/wh2')
    R.ls('r')


def s_unlinked(R):
    # open-unlinked file
    writefile('r/ou', b'0123456789')
    fd = R.open('open', 'r/ou', os.O_RDWR)
    R.rec('unlink open file', os.unlink, 'r/ou')
    R.rec('stat by name', os.stat, 'r/ou')
    R.fst(fd, 'fstat unlinked')
    R.rec('pwrite unlinked', os.pwrite, fd, b'abc', 20)
    R.rec('pread unlinked', os.pread, fd, 100, 0)
    R.rec('ftruncate unlinked', os.ftruncate, fd, 5)
    R.fst(fd, 'fstat after ftruncate')
    R.rec('fchmod unlinked', os.fchmod, fd, 0o600)
    R.rec('fchown unlinked', os.fchown, fd, UID_A, GID_A)
    R.rec('futimes unlinked', os.utime, fd, ns=(10**17, 2 * 10**17))
    R.rec('fsetxattr unlinked', os.setxattr, fd, 'user.u', b'v')
    R.rec('fgetxattr unlinked', os.getxattr, fd, 'user.u')
    R.rec('fallocate unlinked', os.posix_fallocate, fd, 0, 8192)
    R.fst(fd, 'fstat unlinked 2')
    R.rec('pread unlinked 2', os.pread, fd, 10, 0)
    writefile('r/ou', b'new file same name')
    R.rec('old fd still old', os.pread, fd, 5, 0)
    R.content('r/ou')
    R.close(fd)
    # rename over an open file
    writefile('r/ro', b'old contents')
    writefile('r/ro.new', b'new contents!')
    fd = R.open('open target', 'r/ro', os.O_RDONLY)
    fdw = R.open('open target rw', 'r/ro', os.O_RDWR)
    R.rec('rename over open', os.rename, 'r/ro.new', 'r/ro')
    R.rec('read old via fd', os.pread, fd, 100, 0)
    R.fst(fd, 'fstat replaced')
    R.rec('write replaced via fd', os.pwrite, fdw, b'OLD', 0)
    R.rec('read old via fd 2', os.pread, fd, 100, 0)
    R.content('r/ro')
    R.close(fd)
    R.close(fdw)
    # directory removed while open
    os.mkdir('r/gone')
    dfd = R.open('open dir', 'r/gone', os.O_RDONLY | os.O_DIRECTORY)
    R.rec('rmdir open dir', os.rmdir, 'r/gone')
    R.close(R.open('create in removed dir', 'x', os.O_CREAT | os.O_RDWR,
                   0o644, dir_fd=dfd))
    R.rec('mkdir in removed dir', os.mkdir, 'y', dir_fd=dfd)
    R.rec('listdir removed dir', os.listdir, dfd)
    R.fst(dfd, 'fstat removed dir')
    R.close(dfd)
    # directory renamed while open: *at calls follow the directory
    os.mkdir('r/mv1')
    dfd = R.open('open dir', 'r/mv1', os.O_RDONLY | os.O_DIRECTORY)
    R.rec('rename open dir', os.rename, 'r/mv1', 'r/mv2')
    fd = R.open('create via dirfd', 'x', os.O_CREAT | os.O_RDWR, 0o644,
                dir_fd=dfd)
    if fd is not None:
        os.write(fd, b'via dirfd')
        os.close(fd)
    R.content('r/mv2/x')
    R.rec('rename open dir across', os.rename, 'r/mv2', 'r/d/mv3')
    R.rec('mkdir via dirfd', os.mkdir, 'sub', dir_fd=dfd)
    R.rec('symlink via dirfd', os.symlink, 'x', 'lnk', dir_fd=dfd)
    R.rec('stat via dirfd', lambda: fmt_stat(os.stat('x', dir_fd=dfd)))
    R.rec('listdir dirfd', lambda: sorted(os.listdir(dfd)))
    R.rec('rename via dirfds', os.rename, 'x', 'y', src_dir_fd=dfd,
          dst_dir_fd=dfd)
    R.rec('unlink via dirfd', os.unlink, 'lnk', dir_fd=dfd)
    R.ls('r/d/mv3')
    R.close(dfd)


def s_truncate(R):
    writefile('r/t', pat(10000))
    R.rec('truncate grow', os.truncate, 'r/t', 100000)
    R.st('r/t')
    R.rec('read tail zeros', lambda: open('r/t', 'rb').read()[9990:10010])
    R.rec('truncate shrink', os.truncate, 'r/t', 5000)
    R.st('r/t')
    R.rec('truncate same', os.truncate, 'r/t', 5000)
    R.rec('truncate 0', os.truncate, 'r/t', 0)
    R.st('r/t')
    R.rec('truncate negative', os.truncate, 'r/t', -1)
    R.rec('truncate dir', os.truncate, 'r/d', 0)
    R.rec('truncate missing', os.truncate, 'r/missing', 0)
    R.rec('truncate huge', os.truncate, 'r/t', 1 << 50)
    R.rec('truncate 16T-4k', os.truncate, 'r/t', (1 << 44) - 4096)
    R.st('r/t')
    R.rec('truncate fifo', os.truncate, 'r/sg/fifo', 0)
    fd = os.open('r/t', os.O_RDONLY)
    R.rec('ftruncate O_RDONLY', os.ftruncate, fd, 10)
    os.close(fd)
    fd = os.open('r/t', os.O_RDWR)
    R.rec('ftruncate', os.ftruncate, fd, 12345)
    R.fst(fd, 'fstat after ftruncate')
    R.rec('write after shrink', os.pwrite, fd, b'end', 20000)
    R.fst(fd, 'fstat after write past eof')
    R.rec('pread hole', os.pread, fd, 16, 15000)
    os.close(fd)
    R.content('r/t')


def s_times(R):
    writefile('r/tm', b'times')
    R.rec('utime ns', os.utime, 'r/tm', ns=(500000000123456789,
                                            600000000987654321))
    R.st('r/tm', times=True)
    R.rec('utime negative', os.utime, 'r/tm', ns=(-1000000000,
                                                  -5000000001))
    R.st('r/tm', times=True)
    R.rec('utime far future', os.utime, 'r/tm', ns=(2**33 * 10**9 + 1,
                                                    2**33 * 10**9 + 7))
    R.st('r/tm', times=True)
    R.rec('utime mtime only (atime OMIT)', utimensat, 'r/tm', UTIME_OMIT,
          (300000000, 5))
    R.st('r/tm', times=True)
    R.rec('utime atime only (mtime OMIT)', utimensat, 'r/tm', (100, 1),
          UTIME_OMIT)
    R.st('r/tm', times=True)
    R.rec('utime mtime NOW', utimensat, 'r/tm', UTIME_OMIT, UTIME_NOW)
    R.rec('mtime is now', lambda: abs(os.stat('r/tm').st_mtime - time.time())
          < 60)
    R.rec('utime None', os.utime, 'r/tm')
    R.rec('mtime is now 2', lambda: abs(os.stat('r/tm').st_mtime -
                                        time.time()) < 60)
    fd = os.open('r/tm', os.O_RDWR)
    R.rec('futimens', os.utime, fd, ns=(700000000000000001,
                                        800000000000000002))
    R.fst(fd, 'fstat after futimens', times=True)
    R.rec('write updates mtime', lambda: (os.write(fd, b'x'),
                                          os.fstat(fd).st_mtime_ns !=
                                          800000000000000002))
    os.close(fd)
    R.rec('utime dir', os.utime, 'r/deep', ns=(1, 2))
    R.st('r/deep', times=True)
    R.rec('utime missing', os.utime, 'r/missing', ns=(1, 2))
    R.rec('utime fifo', os.utime, 'r/sg/fifo', ns=(3, 4))
    R.st('r/sg/fifo', times=True)
    R.rec('utime dangling nofollow', os.utime, 'r/dangling', ns=(5, 6),
          follow_symlinks=False)
    R.st('r/dangling', times=True)
    R.rec('utime through symlink', os.utime, 'r/l1', ns=(7, 8))
    R.st('r/f1', times=True)
    R.rec('utime dangling follow', os.utime, 'r/labs', ns=(5, 6))


def s_chmod_chown(R):
    writefile('r/cm', b'#!/bin/sh\n')
    for m in (0o4755, 0o2755, 0o1755, 0o7777, 0o0, 0o6711, 0o644):
        R.rec('chmod %o' % m, os.chmod, 'r/cm', m)
        R.st('r/cm')
    R.rec('chmod missing', os.chmod, 'r/missing', 0o644)
    R.rec('chmod dir 7777', os.chmod, 'r/d', 0o7777)
    R.st('r/d')
    R.rec('chmod dir back', os.chmod, 'r/d', 0o755)
    R.rec('chown', os.chown, 'r/cm', UID_A, GID_A)
    R.st('r/cm')
    R.rec('chown -1 -1', os.chown, 'r/cm', -1, -1)
    R.rec('chown uid only', os.chown, 'r/cm', UID_B, -1)
    R.rec('chown gid only', os.chown, 'r/cm', -1, 0)
    R.st('r/cm')
    R.rec('chmod 6755', os.chmod, 'r/cm', 0o6755)
    R.rec('chown clears suid', os.chown, 'r/cm', UID_A, GID_A)
    R.st('r/cm')
    R.rec('chmod 2745', os.chmod, 'r/cm', 0o2745)
    R.rec('chown clears sgid?', os.chown, 'r/cm', 0, 0)
    R.st('r/cm')
    R.rec('chmod 6755 root', os.chmod, 'r/cm', 0o6755)
    with open('r/cm', 'ab') as f:
        f.write(b'# root write keeps suid\n')
    R.st('r/cm')
    fd = os.open('r/cm', os.O_RDONLY)
    R.rec('fchmod', os.fchmod, fd, 0o640)
    R.rec('fchown', os.fchown, fd, UID_B, GID_B)
    R.fst(fd, 'fstat after fchmod/fchown')
    os.close(fd)
    R.rec('chown dir', os.chown, 'r/deep/a', UID_A, GID_A)
    R.st('r/deep/a')
    R.rec('chown large ids', os.chown, 'r/deep/a/b', 2**31 + 5, 2**31 + 6)
    R.st('r/deep/a/b')
    R.rec('access R_OK 0000 file', lambda: (os.chmod('r/cm', 0),
                                            os.access('r/cm', os.R_OK),
                                            os.access('r/cm', os.W_OK),
                                            os.access('r/cm', os.X_OK))[1:])
    R.rec('access X_OK 0100 file', lambda: (os.chmod('r/cm', 0o100),
                                            os.access('r/cm', os.X_OK))[1])
    R.rec('access missing', os.access, 'r/missing', os.F_OK)
    R.rec('chmod back', os.chmod, 'r/cm', 0o755)


def s_xattr(R):
    writefile('r/xa', b'x')
    p = 'r/xa'
    R.rec('getxattr none', os.getxattr, p, 'user.a')
    R.rec('listxattr none', lambda: sorted(os.listxattr(p)))
    R.rec('setxattr', os.setxattr, p, 'user.a', b'1')
    R.rec('setxattr CREATE existing', os.setxattr, p, 'user.a', b'2',
          os.XATTR_CREATE)
    R.rec('setxattr REPLACE missing', os.setxattr, p, 'user.b', b'2',
          os.XATTR_REPLACE)
    R.rec('setxattr REPLACE', os.setxattr, p, 'user.a', b'3',
          os.XATTR_REPLACE)
    R.rec('setxattr CREATE new', os.setxattr, p, 'user.b', b'4',
          os.XATTR_CREATE)
    R.rec('setxattr empty', os.setxattr, p, 'user.empty', b'')
    R.rec('setxattr binary', os.setxattr, p, 'user.bin', bytes(range(256)))
    R.rec('setxattr 3000', os.setxattr, p, 'user.big', pat(3000))
    R.rec('setxattr 65537', os.setxattr, p, 'user.huge', pat(65537))
    R.rec('setxattr long name', os.setxattr, p, 'user.' + 'n' * 251, b'1')
    R.rec('setxattr bad namespace', os.setxattr, p, 'bogus.a', b'1')
    R.rec('setxattr no name', os.setxattr, p, 'user.', b'1')
    R.rec('getxattr', os.getxattr, p, 'user.a')
    R.rec('getxattr empty', os.getxattr, p, 'user.empty')
    R.rec('getxattr binary', os.getxattr, p, 'user.bin')
    R.rec('getxattr 3000', os.getxattr, p, 'user.big')
    R.rec('listxattr', lambda: sorted(os.listxattr(p)))
    R.rec('removexattr', os.removexattr, p, 'user.b')
    R.rec('removexattr missing', os.removexattr, p, 'user.b')
    R.rec('getxattr removed', os.getxattr, p, 'user.b')
    R.rec('listxattr after remove', lambda: sorted(os.listxattr(p)))
    R.rec('setxattr dir', os.setxattr, 'r/d', 'user.dir', b'd')
    R.rec('getxattr dir', os.getxattr, 'r/d', 'user.dir')
    R.rec('setxattr fifo', os.setxattr, 'r/sg/fifo', 'user.f', b'1')
    R.rec('getxattr missing file', os.getxattr, 'r/missing', 'user.a')
    R.rec('getxattr via symlink', os.getxattr, 'r/l1follow', 'user.a')
    fd = os.open(p, os.O_RDONLY)
    R.rec('fsetxattr', os.setxattr, fd, 'user.fd', b'via fd')
    R.rec('fgetxattr', os.getxattr, fd, 'user.fd')
    R.rec('flistxattr', lambda: sorted(os.listxattr(fd)))
    R.rec('fremovexattr', os.removexattr, fd, 'user.fd')
    os.close(fd)
    os.link(p, 'r/xa.hard')
    R.rec('xattr seen via hard link', os.getxattr, 'r/xa.hard', 'user.a')
    R.rec('xattr survives rename', lambda: (
        os.rename('r/xa.hard', 'r/d/xa.hard'),
        os.getxattr('r/d/xa.hard', 'user.big'))[1])


def s_fallocate(R):
    fd = os.open('r/fa', os.O_RDWR | os.O_CREAT, 0o644)
    R.rec('posix_fallocate 1M', os.posix_fallocate, fd, 0, 1 << 20)
    R.fst(fd, 'after posix_fallocate')
    R.rec('1M allocated', lambda: os.fstat(fd).st_blocks * 512 >= 1 << 20)
    R.rec('KEEP_SIZE beyond eof', fallocate, fd, FL_KEEP_SIZE, 1 << 20,
          1 << 20)
    R.fst(fd, 'after KEEP_SIZE')
    R.rec('2M allocated', lambda: os.fstat(fd).st_blocks * 512 >= 2 << 20)
    before = os.fstat(fd).st_blocks
    R.rec('write 256k', os.pwrite, fd, pat(256 << 10, 1), 0)
    R.rec('PUNCH_HOLE|KEEP_SIZE', fallocate, fd,
          FL_PUNCH_HOLE | FL_KEEP_SIZE, 64 << 10, 64 << 10)
    R.fst(fd, 'after punch')
    R.rec('punch freed 64k', lambda: before - os.fstat(fd).st_blocks >= 128)
    R.rec('seek map after punch', seekmap, fd)
    R.rec('punched range reads zeros',
          lambda: os.pread(fd, 64 << 10, 64 << 10) == bytes(64 << 10))
    R.rec('PUNCH_HOLE without KEEP_SIZE', fallocate, fd, FL_PUNCH_HOLE,
          0, 4096)
    R.rec('ZERO_RANGE', fallocate, fd, FL_ZERO_RANGE, 128 << 10, 32 << 10)
    R.rec('zeroed range', lambda: os.pread(fd, 32 << 10, 128 << 10) ==
          bytes(32 << 10))
    R.rec('ZERO_RANGE unaligned', fallocate, fd, FL_ZERO_RANGE, 1000, 3000)
    R.rec('ZERO_RANGE past eof', fallocate, fd, FL_ZERO_RANGE,
          3 << 20, 8192)
    R.fst(fd, 'after zero range past eof')
    R.rec('ZERO_RANGE|KEEP_SIZE past eof', fallocate, fd,
          FL_ZERO_RANGE | FL_KEEP_SIZE, 5 << 20, 8192)
    R.fst(fd, 'after zero range keep size')
    R.rec('fallocate bad mode', fallocate, fd, 0x4000, 0, 4096)
    R.rec('fallocate negative', fallocate, fd, 0, -1, 4096)
    R.rec('fallocate zero len', fallocate, fd, 0, 0, 0)
    R.rec('contents', lambda: hashlib.sha256(
        os.pread(fd, 8 << 20, 0)).hexdigest())
    os.close(fd)
    fd = os.open('r/fa', os.O_RDONLY)
    R.rec('fallocate on O_RDONLY', os.posix_fallocate, fd, 0, 4096)
    os.close(fd)
    R.rec('fallocate on dir fd', lambda: os.posix_fallocate(
        os.open('r/d', os.O_RDONLY), 0, 10))


def s_collapse(R):
    # collapse/insert range: separate group, see TOLERATED in compare()
    R.group = 'collapse'
    fd = os.open('r/cr', os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, pat(512 << 10, 3), 0)
    R.rec('COLLAPSE_RANGE', fallocate, fd, FL_COLLAPSE_RANGE, 64 << 10,
          64 << 10)
    R.fst(fd, 'after collapse')
    R.rec('contents after collapse',
          lambda: hashlib.sha256(os.pread(fd, 1 << 20, 0)).hexdigest())
    R.rec('COLLAPSE unaligned', fallocate, fd, FL_COLLAPSE_RANGE, 1000,
          4096)
    R.rec('COLLAPSE past eof', fallocate, fd, FL_COLLAPSE_RANGE, 4 << 20,
          4096)
    R.rec('INSERT_RANGE', fallocate, fd, FL_INSERT_RANGE, 128 << 10,
          16 << 10)
    R.fst(fd, 'after insert')
    R.rec('contents after insert',
          lambda: hashlib.sha256(os.pread(fd, 1 << 20, 0)).hexdigest())
    os.close(fd)
    os.unlink('r/cr')
    R.group = ''


def seekmap(fd):
    out = []
    off = 0
    size = os.fstat(fd).st_size
    while off < size:
        try:
            d = os.lseek(fd, off, SEEK_DATA)
        except OSError as e:
            out.append(('data', errname(e.errno)))
            break
        h = os.lseek(fd, d, SEEK_HOLE)
        out.append((d, h))
        off = h
    return out


def s_seek(R):
    fd = os.open('r/sparse', os.O_RDWR | os.O_CREAT, 0o644)
    R.rec('write at 0', os.pwrite, fd, pat(4096, 4), 0)
    R.rec('write at 1M', os.pwrite, fd, pat(8192, 5), 1 << 20)
    R.rec('write at 1G', os.pwrite, fd, pat(100, 6), 1 << 30)
    R.rec('write at 2^40', os.pwrite, fd, b'far', 1 << 40)
    R.fst(fd, 'sparse fstat')
    R.rec('seek map', seekmap, fd)
    R.rec('SEEK_DATA at 5000', os.lseek, fd, 5000, SEEK_DATA)
    R.rec('SEEK_HOLE at 0', os.lseek, fd, 0, SEEK_HOLE)
    R.rec('SEEK_HOLE in last block', os.lseek, fd, (1 << 40) + 1, SEEK_HOLE)
    R.rec('SEEK_DATA past eof', os.lseek, fd, (1 << 40) + 10, SEEK_DATA)
    R.rec('SEEK_HOLE past eof', os.lseek, fd, (1 << 40) + 10, SEEK_HOLE)
    R.rec('SEEK_DATA negative', os.lseek, fd, -1, SEEK_DATA)
    R.rec('SEEK_END', os.lseek, fd, -3, os.SEEK_END)
    R.rec('read at end', os.read, fd, 10)
    R.rec('SEEK_SET negative', os.lseek, fd, -1, os.SEEK_SET)
    R.rec('bad whence', os.lseek, fd, 0, 17)
    R.rec('read in hole', os.pread, fd, 8, 1 << 29)
    os.close(fd)
    fd = os.open('r/f1', os.O_RDONLY)
    R.rec('seek map small file', seekmap, fd)
    os.close(fd)
    fd = os.open('r/t2', os.O_RDWR | os.O_CREAT, 0o644)
    R.rec('seek map empty file', seekmap, fd)
    R.rec('SEEK_DATA empty', os.lseek, fd, 0, SEEK_DATA)
    R.rec('SEEK_HOLE empty', os.lseek, fd, 0, SEEK_HOLE)
    os.ftruncate(fd, 1 << 20)
    R.rec('seek map all hole', seekmap, fd)
    os.close(fd)


def s_copy_file_range(R):
    writefile('r/cs', pat(300000, 8))
    src = os.open('r/cs', os.O_RDONLY)
    dst = os.open('r/cd', os.O_RDWR | os.O_CREAT, 0o644)
    R.rec('cfr offsets', os.copy_file_range, src, dst, 100000, 1000, 0)
    R.rec('cfr file positions', os.copy_file_range, src, dst, 50000)
    R.rec('positions after', lambda: (os.lseek(src, 0, os.SEEK_CUR),
                                      os.lseek(dst, 0, os.SEEK_CUR)))
    R.rec('cfr to a hole', os.copy_file_range, src, dst, 4096, 0, 1 << 20)
    R.rec('cfr past src eof', os.copy_file_range, src, dst, 100, 400000,
          0)
    R.rec('cfr partly past eof', os.copy_file_range, src, dst, 10000,
          295000, 200000)
    R.rec('cfr zero length', os.copy_file_range, src, dst, 0, 0, 0)
    R.fst(dst, 'dst fstat')
    R.rec('dst contents', lambda: hashlib.sha256(
        os.pread(dst, 2 << 20, 0)).hexdigest())
    R.rec('cfr same file overlap', os.copy_file_range, dst, dst, 1000, 0,
          500)
    R.rec('cfr same file no overlap', os.copy_file_range, dst, dst, 1000,
          0, 100000)
    R.rec('cfr to O_RDONLY', os.copy_file_range, src, src, 10, 0, 100)
    ap = os.open('r/cd', os.O_WRONLY | os.O_APPEND)
    R.rec('cfr to O_APPEND', os.copy_file_range, src, ap, 10, 0, 0)
    os.close(ap)
    d = os.open('r/d', os.O_RDONLY)
    R.rec('cfr from dir', os.copy_file_range, d, dst, 10, 0, 0)
    os.close(d)
    os.close(src)
    os.close(dst)
    R.content('r/cd')
    R.st('r/cd')


class Flock(object):
    fmt = 'hhqqi4x'

    @classmethod
    def getlk(cls, fd, typ, start, length):
        b = struct.pack(cls.fmt, typ, os.SEEK_SET, start, length, 0)
        r = struct.unpack(cls.fmt, fcntl.fcntl(fd, fcntl.F_GETLK, b))
        return r[0], r[2], r[3], r[4]


def s_locks(R):
    writefile('r/lk', pat(1000))
    me = os.getpid()
    fd1 = os.open('r/lk', os.O_RDWR)
    R.rec('flock EX', fcntl.flock, fd1, fcntl.LOCK_EX)
    fd2 = os.open('r/lk', os.O_RDWR)
    R.rec('second open EX|NB', fcntl.flock, fd2,
          fcntl.LOCK_EX | fcntl.LOCK_NB)

    def try_flock(C):
        fd = os.open('r/lk', os.O_RDONLY)
        C.rec('EX|NB', fcntl.flock, fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        C.rec('SH|NB', fcntl.flock, fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    R.child('child vs flock EX', try_flock)
    R.rec('downgrade to SH', fcntl.flock, fd1, fcntl.LOCK_SH)
    R.child('child vs flock SH', try_flock)
    R.rec('flock UN', fcntl.flock, fd1, fcntl.LOCK_UN)
    R.child('child vs no flock', try_flock)
    R.rec('flock EX after child', fcntl.flock, fd2,
          fcntl.LOCK_EX | fcntl.LOCK_NB)
    R.rec('flock UN 2', fcntl.flock, fd2, fcntl.LOCK_UN)
    # POSIX record locks
    R.rec('lockf EX 0..100', fcntl.lockf, fd1, fcntl.LOCK_EX, 100, 0)
    R.rec('lockf SH 200..300', fcntl.lockf, fd1, fcntl.LOCK_SH, 100, 200)

    def try_lockf(C):
        fd = os.open('r/lk', os.O_RDWR)
        C.rec('EX|NB overlapping', fcntl.lockf, fd,
              fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 50)
        C.rec('SH|NB overlapping EX', fcntl.lockf, fd,
              fcntl.LOCK_SH | fcntl.LOCK_NB, 10, 50)
        C.rec('SH|NB on SH', fcntl.lockf, fd,
              fcntl.LOCK_SH | fcntl.LOCK_NB, 10, 250)
        C.rec('EX|NB on SH', fcntl.lockf, fd,
              fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 250)
        C.rec('EX|NB disjoint', fcntl.lockf, fd,
              fcntl.LOCK_EX | fcntl.LOCK_NB, 50, 500)
        r = Flock.getlk(fd, fcntl.F_WRLCK, 0, 100)
        C.add('F_GETLK 0..100', 'type=%d start=%d len=%d pid-is-parent=%s'
              % (r[0], r[1], r[2], r[3] == me))
        r = Flock.getlk(fd, fcntl.F_WRLCK, 600, 100)
        C.add('F_GETLK free range', 'type=%d' % r[0])
        C.rec('F_SETLKW on own region',
              fcntl.lockf, fd, fcntl.LOCK_EX, 10, 500)
    R.child('child vs lockf', try_lockf)
    R.rec('lockf UN', fcntl.lockf, fd1, fcntl.LOCK_UN, 0, 0)
    R.child('child after unlock', try_lockf)
    # locks are dropped when any fd of the file is closed by the owner
    R.rec('lockf EX again', fcntl.lockf, fd1, fcntl.LOCK_EX, 100, 0)
    fd3 = os.open('r/lk', os.O_RDONLY)
    os.close(fd3)
    R.child('child after close of other fd', try_lockf)
    # OFD locks conflict between open file descriptions of one process
    if hasattr(fcntl, 'F_OFD_SETLK'):
        b = struct.pack(Flock.fmt, fcntl.F_WRLCK, os.SEEK_SET, 0, 10, 0)
        R.rec('OFD lock fd1', lambda: fcntl.fcntl(fd1, fcntl.F_OFD_SETLK, b)
              and None)
        R.rec('OFD lock fd2', lambda: fcntl.fcntl(fd2, fcntl.F_OFD_SETLK, b)
              and None)
    os.close(fd1)
    os.close(fd2)


def s_special(R):
    R.rec('mkfifo', os.mkfifo, 'r/fifo', 0o644)
    R.st('r/fifo')
    R.rec('mkfifo existing', os.mkfifo, 'r/fifo')
    R.open('fifo WRONLY|NONBLOCK no reader', 'r/fifo',
           os.O_WRONLY | os.O_NONBLOCK)
    rd = R.open('fifo reader', 'r/fifo', os.O_RDONLY | os.O_NONBLOCK)
    wr = R.open('fifo writer', 'r/fifo', os.O_WRONLY | os.O_NONBLOCK)
    if rd is not None and wr is not None:
        R.rec('fifo write', os.write, wr, b'ping')
        R.rec('fifo read', os.read, rd, 10)
        R.rec('fifo read empty', os.read, rd, 10)
    R.close(rd)
    R.close(wr)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    R.rec('bind', s.bind, 'r/sock')
    R.st('r/sock')
    R.rec('listen', s.listen, 1)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    R.rec('connect', c.connect, 'r/sock')
    a = s.accept()[0]
    R.rec('send', c.send, b'hello')
    R.rec('recv', a.recv, 10)
    s2 = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    R.rec('bind existing', s2.bind, 'r/sock')
    for x in (s, s2, c, a):
        x.close()
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    R.rec('connect after close', c.connect, 'r/sock')
    c.close()
    d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    R.rec('bind dgram', d.bind, 'r/dsock')
    d.close()
    R.st('r/dsock')
    R.rec('mknod reg', os.mknod, 'r/mkreg', stat.S_IFREG | 0o600)
    R.rec('mknod fifo', os.mknod, 'r/mkfifo', stat.S_IFIFO | 0o600)
    R.rec('mknod sock', os.mknod, 'r/mksock', stat.S_IFSOCK | 0o600)
    R.rec('mknod chr', os.mknod, 'r/cdev', stat.S_IFCHR | 0o600,
          os.makedev(1, 3))
    R.rec('mknod blk', os.mknod, 'r/bdev', stat.S_IFBLK | 0o640,
          os.makedev(7, 200))
    R.rec('mknod chr big', os.mknod, 'r/cdev2', stat.S_IFCHR | 0o600,
          os.makedev(4095, 1048575))
    R.rec('mknod existing', os.mknod, 'r/cdev', stat.S_IFCHR | 0o600,
          os.makedev(1, 3))
    R.rec('mknod bad type', os.mknod, 'r/bad', 0o170000 | 0o600)
    for p in ('r/mkreg', 'r/mkfifo', 'r/mksock', 'r/cdev', 'r/bdev',
              'r/cdev2'):
        R.st(p)
    R.rec('chmod fifo', os.chmod, 'r/fifo', 0o600)
    R.rec('chown dev', os.chown, 'r/cdev', UID_A, GID_A)
    R.st('r/cdev')
    R.rec('link dev', os.link, 'r/cdev', 'r/cdev.link')
    R.st('r/cdev')
    R.rec('rename fifo', os.rename, 'r/mkfifo', 'r/d/mkfifo')


def s_mmap_io(R):
    fd = os.open('r/mm', os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(fd, 3 * 4096 + 100)
    m = R.rec('mmap shared', mmap.mmap, fd, 3 * 4096 + 100,
              mmap.MAP_SHARED)
    if m is not None:
        m[100:110] = b'0123456789'
        m[8190:8200] = b'ABCDEFGHIJ'
        m[-5:] = b'tail!'
        R.rec('msync', m.flush)
        m.close()
    R.rec('read after mmap write', lambda: hashlib.sha256(
        os.pread(fd, 1 << 20, 0)).hexdigest())
    p = R.rec('mmap private', mmap.mmap, fd, 4096, mmap.MAP_PRIVATE)
    if p is not None:
        p[0:4] = b'PRIV'
        p.close()
    R.rec('private map not written', os.pread, fd, 4, 0)
    os.close(fd)
    R.content('r/mm')
    # big write and odd-sized reads
    data = pat(3 * (1 << 20) + 17, 9)
    fd = os.open('r/big', os.O_RDWR | os.O_CREAT, 0o644)
    R.rec('write 3M+17', os.write, fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    got = []
    for n in (1, 4095, 4097, 65537, 1 << 20, 3 << 20):
        got.append(os.read(fd, n))
    R.rec('odd reads equal', lambda: b''.join(got) == data)
    R.rec('pread at odd offsets', lambda: [
        os.pread(fd, 7, o) == data[o:o + 7]
        for o in (0, 4093, 65535, 1 << 20, len(data) - 3)])
    R.rec('pwrite across pages', os.pwrite, fd, b'Z' * 10000, 4090)
    R.rec('writev', os.writev, fd, [b'a' * 3, b'b' * 5000, b'c'])
    bufs = [bytearray(3), bytearray(5000)]
    R.rec('preadv', os.preadv, fd, bufs, 4090)
    R.add('preadv data', repr([hashlib.sha256(b).hexdigest()[:16]
                               for b in bufs]))
    R.fst(fd, 'big fstat')
    os.close(fd)
    R.content('r/big')
    fd = os.open('r/f1', os.O_RDONLY)
    R.rec('ioctl TCGETS on file', fcntl.ioctl, fd, termios.TCGETS,
          bytes(64))
    if R.is_mount:
        R.rec('ioctl FS_IOC_GETFLAGS', fcntl.ioctl, fd, FS_IOC_GETFLAGS,
              bytes(8))
    else:   # expected through the mount: swafs implements no ioctl
        R.add('ioctl FS_IOC_GETFLAGS', 'ERR ENOTTY')
    os.close(fd)


def s_other_users(R):
    """root run: rules that need two unprivileged users"""
    R.rec('mkdir sticky', os.mkdir, 'r/sticky')
    R.rec('chmod 1777', os.chmod, 'r/sticky', 0o1777)
    R.rec('mkdir open', os.mkdir, 'r/open')
    R.rec('chmod 0777', os.chmod, 'r/open', 0o777)
    writefile('r/sticky/rootfile', b'root', 0o666)
    os.chmod('r/sticky/rootfile', 0o666)
    ga = [GID_A]

    def a_create(C):
        C.rec('umask', os.umask, 0o022)
        fd = C.open('create', 'r/sticky/a', os.O_RDWR | os.O_CREAT, 0o666)
        C.close(fd)
        C.st('r/sticky/a')
        C.rec('mkdir', os.mkdir, 'r/sticky/adir')
        C.st('r/sticky/adir')
        C.rec('symlink', os.symlink, 'a', 'r/sticky/alink')
        C.st('r/sticky/alink')
        C.rec('create in open', writefile, 'r/open/a', b'a', 0o644)
        C.rec('create in root dir', writefile, 'r/x', b'')
        C.rec('mkdir in root dir', os.mkdir, 'r/x')
        C.rec('unlink root file in sticky', os.unlink, 'r/sticky/rootfile')
        C.rec('write root file 0666', writefile, 'r/sticky/rootfile', b'A')
        C.rec('chmod root file', os.chmod, 'r/sticky/rootfile', 0o600)
        C.rec('chown own file', os.chown, 'r/sticky/a', 0, -1)
        C.rec('chgrp own file to own group', os.chown, 'r/sticky/a', -1,
              GID_A)
        C.rec('chgrp own file to other group', os.chown, 'r/sticky/a', -1,
              0)
        C.rec('mknod chr', os.mknod, 'r/sticky/cdev',
              stat.S_IFCHR | 0o600, os.makedev(1, 3))
        C.open('O_NOATIME on root file', 'r/sticky/rootfile',
              os.O_RDONLY | os.O_NOATIME)
        C.rec('utime explicit on root file', os.utime, 'r/sticky/rootfile',
              ns=(1, 1))
        C.rec('utime now on writable root file', os.utime,
              'r/sticky/rootfile')
    R.child('uid A', a_create, UID_A, GID_A, ga)

    def b_attack(C):
        C.rec('unlink A file in sticky', os.unlink, 'r/sticky/a')
        C.rec('rename A file in sticky', os.rename, 'r/sticky/a',
              'r/sticky/b')
        C.rec('rename over A file', lambda: (
            writefile('r/sticky/b', b'b'),
            os.rename('r/sticky/b', 'r/sticky/a')))
        C.rec('rmdir A dir', os.rmdir, 'r/sticky/adir')
        C.rec('unlink A symlink', os.unlink, 'r/sticky/alink')
        C.rec('write A file', writefile, 'r/sticky/a', b'b')
        C.open('O_CREAT existing A file', 'r/sticky/a',
              os.O_RDWR | os.O_CREAT)
        C.rec('unlink A file in open dir', os.unlink, 'r/open/a')
        C.rec('setxattr on A file', os.setxattr, 'r/sticky/a', 'user.b',
              b'1')
        C.rec('setxattr on sticky dir', os.setxattr, 'r/sticky', 'user.b',
              b'1')
        C.rec('hardlink A file', os.link, 'r/sticky/a', 'r/sticky/alnk')
        C.rec('unlink own', os.unlink, 'r/sticky/b')
    R.child('uid B', b_attack, UID_B, GID_B, [GID_B])

    def a_cleanup(C):
        C.rec('unlink own in sticky', os.unlink, 'r/sticky/a')
        C.rec('rmdir own in sticky', os.rmdir, 'r/sticky/adir')
        C.rec('unlink own symlink', os.unlink, 'r/sticky/alink')
    R.child('uid A again', a_cleanup, UID_A, GID_A, ga)
    R.ls('r/sticky')
    R.ls('r/open')


def s_fd_perms(R):
    """an open fd keeps the access it was opened with"""
    fd = R.open('create mode 0', 'r/p0', os.O_CREAT | os.O_EXCL | os.O_RDWR,
                0)
    R.rec('write to mode-0 file via create fd', os.write, fd, b'abc')
    R.rec('read it back', os.pread, fd, 10, 0)
    R.fst(fd, 'fstat mode 0')
    R.close(fd)
    R.open('reopen mode 0 file', 'r/p0', os.O_RDONLY)
    fd = R.open('create 0444 O_WRONLY', 'r/p2', os.O_CREAT | os.O_WRONLY,
                0o444)
    R.rec('write to 0444 file via create fd', os.write, fd, b'ro')
    R.close(fd)
    fd = R.open('open rw', 'r/p1', os.O_RDWR | os.O_CREAT, 0o600)
    R.rec('write', os.write, fd, b'0123456789')
    R.rec('chmod 0 by path', os.chmod, 'r/p1', 0)
    R.rec('pwrite after chmod 0', os.pwrite, fd, b'XY', 3)
    R.rec('pread after chmod 0', os.pread, fd, 20, 0)
    R.rec('ftruncate after chmod 0', os.ftruncate, fd, 6)
    R.rec('fallocate after chmod 0', os.posix_fallocate, fd, 0, 8192)
    R.rec('futimens after chmod 0', os.utime, fd, ns=(5 * 10**17,
                                                      5 * 10**17))
    R.rec('fsetxattr after chmod 0', os.setxattr, fd, 'user.z', b'1')
    R.fst(fd, 'fstat after chmod 0')
    R.rec('fsync', os.fsync, fd)
    R.close(fd)
    R.open('reopen rw after chmod 0', 'r/p1', os.O_RDWR)
    R.rec('truncate by path after chmod 0', os.truncate, 'r/p1', 1)
    R.rec('chmod back', os.chmod, 'r/p1', 0o600)
    R.content('r/p1')
    R.rec('chmod p0', os.chmod, 'r/p0', 0o600)
    R.content('r/p0')
    R.rec('chmod dir 0', lambda: (os.mkdir('r/pd'), os.chmod('r/pd', 0)))
    R.rec('create in mode-0 dir', writefile, 'r/pd/x', b'')
    R.rec('listdir mode-0 dir', os.listdir, 'r/pd')
    R.rec('chmod dir 0700', os.chmod, 'r/pd', 0o700)


def s_deep(R):
    """paths longer than PATH_MAX, reached with *at() calls"""
    comp = 'D' * 250
    dfd = os.open('r', os.O_RDONLY | os.O_DIRECTORY)
    ok = True
    for i in range(20):
        try:
            os.mkdir('%s%02d' % (comp, i), dir_fd=dfd)
            nd = os.open('%s%02d' % (comp, i), os.O_RDONLY | os.O_DIRECTORY,
                         dir_fd=dfd)
        except OSError as e:
            R.add('mkdir level %d' % i, 'ERR ' + errname(e.errno))
            ok = False
            break
        os.close(dfd)
        dfd = nd
    R.add('20 levels of 252-byte names', str(ok))
    fd = R.open('create at depth', 'leaf', os.O_RDWR | os.O_CREAT, 0o640,
                dir_fd=dfd)
    if fd is not None:
        R.rec('write at depth', os.write, fd, b'deep data')
        R.close(fd)
    R.rec('stat at depth', lambda: fmt_stat(os.stat('leaf', dir_fd=dfd)))
    R.rec('listdir at depth', os.listdir, dfd)
    R.rec('symlink at depth', os.symlink, 'leaf', 'lnk', dir_fd=dfd)
    R.rec('link at depth', os.link, 'leaf', 'hard', src_dir_fd=dfd,
          dst_dir_fd=dfd)
    R.rec('rename at depth', os.rename, 'hard', 'hard2', src_dir_fd=dfd,
          dst_dir_fd=dfd)
    R.rec('rename top of chain', os.rename, 'r/%s00' % comp, 'r/deeptop')
    R.rec('read at depth after rename', lambda: os.pread(
        os.open('lnk', os.O_RDONLY, dir_fd=dfd), 100, 0))
    R.rec('full path too long', os.stat, 'r/deeptop/' + '/'.join(
        '%s%02d' % (comp, i) for i in range(1, 20)) + '/leaf')
    R.rec('setxattr at depth', lambda: os.setxattr(
        '/proc/self/fd/%d/leaf' % dfd, 'user.deep', b'1'))
    R.rec('getxattr at depth', lambda: os.getxattr(
        '/proc/self/fd/%d/leaf' % dfd, 'user.deep'))
    os.close(dfd)

    def rmtree_fd(parent, name):
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=parent)
        for n in os.listdir(fd):
            st = os.stat(n, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                rmtree_fd(fd, n)
            else:
                os.unlink(n, dir_fd=fd)
        os.close(fd)
        os.rmdir(name, dir_fd=parent)
    R.rec('remove the chain', rmtree_fd, AT_FDCWD, 'r/deeptop')
    R.rec('chain gone', os.path.exists, 'r/deeptop')


def s_final_times(R):
    """explicit times last, so the manifests compare them"""
    for p in ('r/f1', 'r/d', 'r/sg', 'r/names', 'r/sparse', 'r/big'):
        R.rec('final utime %s' % p, os.utime, p, ns=(10**17 + 1, 10**17 + 3))
    R.rec('final lutime', os.utime, 'r/dangling', ns=(10**17, 10**17 + 9),
          follow_symlinks=False)
    R.rec('statvfs', os.statvfs, '.')


ROOT_SECTIONS = [s_open_flags, s_direct, s_dirs, s_names, s_symlinks,
                 s_hardlinks, s_rename, s_unlinked, s_truncate, s_times,
                 s_chmod_chown, s_xattr, s_fallocate, s_collapse, s_seek,
                 s_copy_file_range, s_locks, s_special, s_mmap_io,
                 s_fd_perms, s_deep, s_other_users, s_final_times]


# sections that need root (they switch to other uids)
ROOT_ONLY = [s_other_users]


# ------------------------------------------------------ unprivileged run

def fixtures(R):
    """root: what the unprivileged run works against"""
    R.rec('umask', os.umask, 0o022)

    def mk(p, mode, uid=0, gid=0, data=b'data'):
        if data is None:
            os.mkdir(p)
        else:
            writefile(p, data)
        os.chown(p, uid, gid)
        os.chmod(p, mode)
        R.st(p)
    mk('fx', 0o755, data=None)
    mk('u', 0o755, NOBODY, NOGROUP, data=None)
    mk('fx/secret', 0o600, data=b'secret')
    mk('fx/grp', 0o640, 0, EXTRA_GID, b'group readable')
    mk('fx/grpw', 0o660, 0, EXTRA_GID, b'group writable')
    mk('fx/pub', 0o666, data=b'public')
    mk('fx/ro', 0o644, data=b'read only')
    mk('fx/suid', 0o4777, data=b'suid')
    mk('fx/sgidx', 0o2777, data=b'sgid+gx')
    mk('fx/mine_suid', 0o6755, NOBODY, NOGROUP, b'mine')
    mk('fx/noexec', 0o744, data=None)
    mk('fx/noexec/f', 0o644)
    mk('fx/nowrite', 0o755, data=None)
    mk('fx/nowrite/f', 0o666)
    mk('fx/sticky', 0o1777, data=None)
    mk('fx/sticky/rootfile', 0o666)
    mk('fx/sticky/otherfile', 0o666, UID_A, GID_A)
    mk('fx/sgid', 0o2777, 0, EXTRA_GID, None)
    mk('fx/sgid_foreign', 0o2777, 0, FOREIGN_GID, None)
    mk('fx/otherdir', 0o777, UID_A, GID_A, None)
    mk('fx/otherdir/f', 0o644, UID_A, GID_A)
    mk('fx/grpdir', 0o770, 0, EXTRA_GID, None)
    mk('fx/grpdir/f', 0o660, 0, EXTRA_GID)
    R.rec('xattr on pub', os.setxattr, 'fx/pub', 'user.k', b'v')


def u_basic(R):
    R.rec('ids', lambda: (os.getuid(), os.getgid(), sorted(os.getgroups())))
    R.rec('umask', os.umask, 0o022)
    fd = R.open('create', 'u/a', os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
    R.rec('write', os.write, fd, b'user data')
    R.fst(fd, 'fstat own file')
    R.close(fd)
    R.rec('mkdir', os.mkdir, 'u/d', 0o777)
    R.rec('symlink', os.symlink, 'a', 'u/l')
    R.rec('mkfifo', os.mkfifo, 'u/p')
    R.rec('mknod reg', os.mknod, 'u/mkreg', stat.S_IFREG | 0o644)
    R.rec('mknod chr', os.mknod, 'u/cdev', stat.S_IFCHR | 0o644,
          os.makedev(1, 3))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    R.rec('bind', s.bind, 'u/sock')
    s.close()
    R.rec('link own', os.link, 'u/a', 'u/a.hard')
    for p in ('u/a', 'u/d', 'u/l', 'u/p', 'u/mkreg', 'u/sock', 'u/a.hard'):
        R.st(p)
    R.group = 'tmpfile'
    fd = R.open('O_TMPFILE', 'u', os.O_TMPFILE | os.O_RDWR, 0o640)
    if fd is not None:
        R.fst(fd, 'fstat tmpfile')
        R.rec('link tmpfile', linkat, '/proc/self/fd/%d' % fd,
              'u/tmp_linked', AT_SYMLINK_FOLLOW)
        R.close(fd)
        R.st('u/tmp_linked')
        R.rec('unlink', os.unlink, 'u/tmp_linked')
    R.group = ''
    R.rec('O_NOATIME own', lambda: os.close(os.open('u/a', os.O_RDONLY |
                                                    os.O_NOATIME)))
    R.open('O_NOATIME other', 'fx/pub', os.O_RDONLY | os.O_NOATIME)
    R.rec('utime own explicit', os.utime, 'u/a', ns=(10**15, 10**15 + 1))
    R.st('u/a', times=True)
    R.rec('lutime own symlink', os.utime, 'u/l', ns=(10**15, 10**15 + 2),
          follow_symlinks=False)
    R.st('u/l', times=True)
    R.rec('setxattr own', os.setxattr, 'u/a', 'user.mine', b'1')
    R.rec('getxattr own', os.getxattr, 'u/a', 'user.mine')
    R.rec('setxattr own dir', os.setxattr, 'u/d', 'user.mine', b'2')
    R.rec('truncate own', os.truncate, 'u/a', 4)
    R.rec('rename own', os.rename, 'u/a.hard', 'u/d/a.hard')
    R.rec('EXCHANGE own', renameat2, 'u/d', 'u/a', RENAME_EXCHANGE)
    R.rec('EXCHANGE back', renameat2, 'u/d', 'u/a', RENAME_EXCHANGE)
    R.rec('NOREPLACE own', renameat2, 'u/l', 'u/a', RENAME_NOREPLACE)
    R.rec('WHITEOUT unprivileged', renameat2, 'u/mkreg', 'u/mkreg2',
          RENAME_WHITEOUT)
    R.rec('fallocate own', lambda: (
        os.posix_fallocate(os.open('u/a', os.O_RDWR), 0, 65536)))
    R.st('u/a')
    fd = os.open('u/a', os.O_RDWR)
    R.rec('flock own', fcntl.flock, fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    R.rec('lockf own', fcntl.lockf, fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10)
    R.rec('copy_file_range own', os.copy_file_range, os.open(
        'fx/pub', os.O_RDONLY), fd, 6, 0, 100)
    os.close(fd)
    R.content('u/a')
    R.rec('statvfs', os.statvfs, 'u')


def u_perms(R):
    R.open('read secret', 'fx/secret', os.O_RDONLY)
    R.rec('access secret R', os.access, 'fx/secret', os.R_OK)
    fd = R.open('read group file (supplementary group)', 'fx/grp',
                os.O_RDONLY)
    if fd is not None:
        R.rec('read', os.read, fd, 100)
    R.close(fd)
    R.open('write group file', 'fx/grp', os.O_WRONLY)
    fd = R.open('write group-writable (supplementary)', 'fx/grpw',
                os.O_WRONLY)
    if fd is not None:
        R.rec('write', os.write, fd, b'GROUP')
    R.close(fd)
    R.rec('listdir group dir', os.listdir, 'fx/grpdir')
    R.rec('create in group dir', writefile, 'fx/grpdir/mine', b'm')
    R.st('fx/grpdir/mine')
    R.rec('access grpw W', os.access, 'fx/grpw', os.W_OK)
    R.open('write ro', 'fx/ro', os.O_WRONLY)
    R.open('O_TRUNC ro', 'fx/ro', os.O_RDONLY | os.O_TRUNC)
    R.rec('truncate ro', os.truncate, 'fx/ro', 0)
    R.rec('access ro W', os.access, 'fx/ro', os.W_OK)
    R.rec('write pub', writefile, 'fx/pub', b'PUBLIC')
    R.rec('truncate pub', os.truncate, 'fx/pub', 3)
    R.rec('utime now pub', os.utime, 'fx/pub')
    R.rec('utime explicit pub', os.utime, 'fx/pub', ns=(1, 1))
    R.rec('chmod pub', os.chmod, 'fx/pub', 0o600)
    R.rec('chown pub', os.chown, 'fx/pub', NOBODY, -1)
    R.rec('setxattr pub', os.setxattr, 'fx/pub', 'user.u', b'1')
    R.rec('getxattr pub', os.getxattr, 'fx/pub', 'user.k')
    R.rec('removexattr pub', os.removexattr, 'fx/pub', 'user.k')
    R.rec('setxattr ro', os.setxattr, 'fx/ro', 'user.u', b'1')
    R.rec('getxattr ro', os.getxattr, 'fx/ro', 'user.u')
    R.rec('getxattr secret', os.getxattr, 'fx/secret', 'user.u')
    R.rec('stat in noexec dir', os.stat, 'fx/noexec/f')
    R.open('open in noexec dir', 'fx/noexec/f', os.O_RDONLY)
    R.rec('listdir noexec dir', lambda: sorted(os.listdir('fx/noexec')))
    R.rec('create in nowrite dir', writefile, 'fx/nowrite/x', b'')
    R.rec('mkdir in nowrite dir', os.mkdir, 'fx/nowrite/x')
    R.rec('unlink in nowrite dir', os.unlink, 'fx/nowrite/f')
    R.rec('rename into nowrite dir', os.rename, 'u/mkreg',
          'fx/nowrite/mkreg')
    R.rec('rename out of nowrite dir', os.rename, 'fx/nowrite/f', 'u/f')
    R.rec('write in nowrite dir (file 0666)', writefile, 'fx/nowrite/f',
          b'ok')
    R.rec('link secret (protected_hardlinks)', os.link, 'fx/secret',
          'u/secret')
    R.rec('link pub', os.link, 'fx/pub', 'u/pub')
    R.rec('symlink to secret', os.symlink, '../fx/secret', 'u/ls')
    R.open('read via symlink', 'u/ls', os.O_RDONLY)
    R.rec('chown own to root', os.chown, 'u/a', 0, -1)
    R.rec('chgrp own to supplementary', os.chown, 'u/a', -1, EXTRA_GID)
    R.st('u/a')
    R.rec('chgrp own to foreign', os.chown, 'u/a', -1, FOREIGN_GID)
    R.rec('chown own -1 -1', os.chown, 'u/a', -1, -1)
    R.rec('chmod own 2755 (member)', os.chmod, 'u/a', 0o2755)
    R.st('u/a')
    R.rec('chmod own 4755', os.chmod, 'u/a', 0o4755)
    R.rec('write own suid', writefile, 'u/a', b'rewritten')
    R.st('u/a')
    R.rec('write root suid 0777', lambda: (
        os.close(os.open('fx/suid', os.O_WRONLY | os.O_APPEND)),
        writefile('fx/suid', b'x')))
    R.st('fx/suid')
    R.rec('write root sgid+gx 0777', writefile, 'fx/sgidx', b'y')
    R.st('fx/sgidx')
    R.rec('truncate own 6755', os.truncate, 'fx/mine_suid', 1)
    R.st('fx/mine_suid')
    R.rec('mknod in u', os.mknod, 'u/blk', stat.S_IFBLK | 0o600,
          os.makedev(7, 0))
    R.rec('chmod other-owned dir', os.chmod, 'fx/otherdir', 0o700)
    R.rec('unlink in other-owned 0777 dir', os.unlink, 'fx/otherdir/f')
    R.rec('create in other-owned 0777 dir', writefile, 'fx/otherdir/m',
          b'm')
    R.st('fx/otherdir/m')


def u_sgid_sticky(R):
    R.close(R.open('create in sgid dir (member)', 'fx/sgid/f',
                   os.O_WRONLY | os.O_CREAT, 0o2755))
    R.rec('mkdir in sgid dir (member)', os.mkdir, 'fx/sgid/d', 0o2775)
    R.rec('mkdir in sgid dir, no S_ISGID asked', os.mkdir, 'fx/sgid/d2')
    R.rec('symlink in sgid dir', os.symlink, 'f', 'fx/sgid/l')
    R.close(R.open('create in sgid dir (foreign)', 'fx/sgid_foreign/f',
                   os.O_WRONLY | os.O_CREAT, 0o2755))
    R.rec('mkdir in sgid dir (foreign)', os.mkdir, 'fx/sgid_foreign/d',
          0o2775)
    R.group = 'tmpfile'
    R.rec('O_TMPFILE in sgid dir', lambda: fmt_stat(os.fstat(os.open(
        'fx/sgid', os.O_TMPFILE | os.O_RDWR, 0o2750))))
    R.group = ''
    for p in ('fx/sgid/f', 'fx/sgid/d', 'fx/sgid/d2', 'fx/sgid/l',
              'fx/sgid_foreign/f', 'fx/sgid_foreign/d'):
        R.st(p)
    R.rec('chmod 2755 foreign-group file', os.chmod, 'fx/sgid_foreign/f',
          0o2755)
    R.st('fx/sgid_foreign/f')
    R.rec('unlink root file in sticky', os.unlink, 'fx/sticky/rootfile')
    R.rec('unlink other file in sticky', os.unlink, 'fx/sticky/otherfile')
    R.rec('rename other file in sticky', os.rename, 'fx/sticky/otherfile',
          'fx/sticky/x')
    R.rec('rename own over other in sticky', lambda: (
        writefile('fx/sticky/mine', b'm'),
        os.rename('fx/sticky/mine', 'fx/sticky/otherfile')))
    R.rec('write other file in sticky 0666', writefile,
          'fx/sticky/otherfile', b'w')
    R.rec('setxattr sticky dir', os.setxattr, 'fx/sticky', 'user.x', b'1')
    R.rec('unlink own in sticky', os.unlink, 'fx/sticky/mine')
    R.ls('fx/sticky')
    R.ls('fx/sgid')


USER_SECTIONS = [u_basic, u_perms, u_sgid_sticky]


# ------------------------------------------------------------- driver

def run_sections(R, sections, where):
    for s in sections:
        R.group = ''
        R.add('== section', s.__name__)
        try:
            s(R)
        except Exception:
            R.add('CRASH in %s' % s.__name__, traceback.format_exc())
        R.group = ''


def run_dir(target, is_mount, sections, user_sections):
    """Run everything for one directory in a child; return its records."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            signal.alarm(300)
            os.chdir(target)
            R = Run(is_mount)
            os.umask(0o022)
            if sections:
                os.mkdir('r')
                run_sections(R, sections, 'root')
            if user_sections:
                R.add('== phase', 'fixtures')
                try:
                    fixtures(R)
                except Exception:
                    R.add('CRASH in fixtures', traceback.format_exc())

                def user(C):
                    run_sections(C, user_sections, 'user')
                R.child('nobody', user, NOBODY, NOGROUP,
                        [NOGROUP, EXTRA_GID])
            general = [x for x in sections if x not in ROOT_ONLY]
            if user_sections and general:
                # the general sections again, unprivileged, in nb/r
                R.add('== phase', 'general sections as nobody')
                os.mkdir('nb')
                os.chown('nb', NOBODY, NOGROUP)

                def user_general(C):
                    os.chdir('nb')
                    os.umask(0o022)
                    os.mkdir('r')
                    run_sections(C, general, 'user')
                R.child('nobody-general', user_general, NOBODY, NOGROUP,
                        [NOGROUP, EXTRA_GID])
            data = json.dumps(R.log).encode()
            while data:
                data = data[os.write(w, data):]
        except BaseException:
            traceback.print_exc()
            code = 2
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 1 << 20)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        print('ERROR: run in %s: child status %#x' % (target, status))
        return None
    return [tuple(x) for x in json.loads(b''.join(chunks))]


# groups whose ops the FUSE kernel module refuses before the daemon sees
# them: skipped (with a note) when the mount says EOPNOTSUPP there
NOTSUP = ('ERR EOPNOTSUPP', 'ERR ENOTSUP')
TOLERATED = {'tmpfile': 'libfuse 3.14 has no FUSE_TMPFILE, so O_TMPFILE '
             'gives EOPNOTSUPP through any libfuse 3.14 filesystem',
             'collapse': 'FUSE does not forward FALLOC_FL_COLLAPSE_RANGE/'
             'INSERT_RANGE (kernel returns EOPNOTSUPP)'}


def compare(plain, mount):
    """Align the two logs by label, compare results; print differences."""
    bad = 0
    for g, why in TOLERATED.items():
        pm = [x for x in mount if x[0] == g]
        pp = [x for x in plain if x[0] == g]
        if pm and pm[0][2] in NOTSUP and pp and pp[0][2] not in NOTSUP:
            print('NOTE: skipping %d records of group %r: %s'
                  % (len(pm), g, why))
            plain = [x for x in plain if x[0] != g]
            mount = [x for x in mount if x[0] != g]
    for x in plain + mount:
        if x[1].startswith('CRASH') or ': CRASH' in x[1]:
            print('ERROR: test code crashed: %s: %s' % (x[1], x[2]))
            bad += 1
    sections = {}
    section = ''
    for i, x in enumerate(plain):
        if x[1].endswith('== section'):
            section = x[2]
        sections[i] = section
    sm = difflib.SequenceMatcher(None, [x[1] for x in plain],
                                 [x[1] for x in mount], autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == 'equal':
            for a, b, i in zip(plain[i1:i2], mount[j1:j2], range(i1, i2)):
                if a[2] != b[2]:
                    bad += 1
                    print('MISMATCH [%s] #%d %s\n    plain: %s\n'
                          '    mount: %s' % (sections[i], i, a[1], a[2], b[2]))
            continue
        bad += 1
        print('MISMATCH [%s] #%d records differ:' % (sections.get(i1, ''),
                                                     i1))
        for x in plain[i1:i2]:
            print('    plain only: %s: %s' % (x[1], x[2]))
        for x in mount[j1:j2]:
            print('    mount only: %s: %s' % (x[1], x[2]))
    return bad, len(plain)


def compare_manifests(a, b, na, nb, same_objects=False):
    """same_objects: a and b show the same files (mount and BACKING), so
    every mtime and ctime must agree too."""
    la = helpers.manifest(a, all_mtimes=same_objects, ctimes=same_objects)
    lb = helpers.manifest(b, all_mtimes=same_objects, ctimes=same_objects)
    diff = list(difflib.unified_diff(la, lb, na, nb, lineterm='', n=0))
    for line in diff[:200]:
        print(line)
    return sum(1 for x in diff if x[:1] in '+-' and x[:3] not in
               ('+++', '---'))


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('plain')
    ap.add_argument('mount')
    ap.add_argument('backing')
    ap.add_argument('--no-user', action='store_true')
    ap.add_argument('--no-root', action='store_true')
    ap.add_argument('--only', nargs='*', default=None,
                    help='section names (s_xxx, u_xxx) to run')
    ap.add_argument('--dump', help='write both logs to DUMP.plain/.mount')
    a = ap.parse_args()
    if os.getuid() != 0:
        sys.exit('conformance.py must run as root')
    secs = [] if a.no_root else ROOT_SECTIONS
    usecs = [] if a.no_user else USER_SECTIONS
    if a.only is not None:
        secs = [s for s in secs if s.__name__ in a.only]
        usecs = [s for s in usecs if s.__name__ in a.only]
        if usecs:
            secs = secs or []
    t0 = time.time()
    lp = run_dir(a.plain, False, secs, usecs)
    lm = run_dir(a.mount, True, secs, usecs)
    if lp is None or lm is None:
        sys.exit(1)
    if a.dump:
        for n, lg in (('plain', lp), ('mount', lm)):
            with open('%s.%s' % (a.dump, n), 'w') as f:
                for x in lg:
                    f.write('%s: %s\n' % (x[1], x[2]))
    bad, n = compare(lp, lm)
    mbad = compare_manifests(a.plain, a.mount, 'plain-tree', 'mount-tree')
    bbad = compare_manifests(a.mount, a.backing, 'mount-tree',
                             'backing-tree', same_objects=True)
    print('conformance: %d records, %d mismatches; tree: %d differences '
          'plain/mount, %d mount/backing; %.1fs'
          % (n, bad, mbad, bbad, time.time() - t0))
    sys.exit(1 if bad or mbad or bbad else 0)


if __name__ == '__main__':
    main()
