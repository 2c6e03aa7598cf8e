#!/usr/bin/env python3
"""G2 operation sequence: run the same calls in a directory and record every
result (return value, data read, stat fields, or errno name), one per line.

  ckpt_g2ops.py DIR LOG [--at-t CMD]

Builds a small tree under DIR, opens some descriptors, runs CMD with sh -c
(when given: the test takes the manifest and the checkpoint there), then
runs the operations, through descriptors opened before and after CMD.
Run it once on the swafs mount (with CMD) and once on a plain directory
(without): the two logs must be identical.  stdlib only (ctypes for
fallocate and renameat2).
"""
import ctypes
import errno
import mmap
import os
import stat
import subprocess
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long,
                           ctypes.c_long]
AT_FDCWD = -100
FALLOC_FL_KEEP_SIZE = 1
FALLOC_FL_PUNCH_HOLE = 2
FALLOC_FL_COLLAPSE_RANGE = 8
FALLOC_FL_ZERO_RANGE = 16
FALLOC_FL_INSERT_RANGE = 32
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2

top = sys.argv[1]
logf = open(sys.argv[2], 'w')
at_t = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == '--at-t' else None
n = [0]


def P(*parts):
    return os.path.join(top, *parts)


def rec(what, fn, *args, **kw):
    n[0] += 1
    try:
        r = fn(*args, **kw)
        if isinstance(r, bytes):
            import hashlib
            r = 'bytes[%d]:%s' % (len(r), hashlib.sha256(r).hexdigest()[:16])
        elif isinstance(r, os.stat_result):
            r = st_str(r)
        elif isinstance(r, list):
            r = sorted(r)
        out = 'ok %r' % (r,)
    except OSError as e:
        r = None
        out = 'err %s' % errno.errorcode.get(e.errno, e.errno)
    logf.write('%04d %s: %s\n' % (n[0], what, out))
    return r


def st_str(st):
    t = stat.S_IFMT(st.st_mode)
    s = 'mode=%o uid=%d gid=%d nlink=%d' % (st.st_mode, st.st_uid, st.st_gid,
                                            st.st_nlink)
    if not stat.S_ISDIR(st.st_mode):
        s += ' size=%d' % st.st_size
    secs = st.st_mtime_ns // 10**9
    if secs < 10**9:
        s += ' mtime=%d' % st.st_mtime_ns
    return s + (' t=%o' % t)


def c_fallocate(fd, mode, off, ln):
    if libc.fallocate(fd, mode, off, ln) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return 0


def c_renameat2(a, b, flags):
    if libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), flags):
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return 0


def pat(tag, size):
    import hashlib
    seed = hashlib.sha256(tag.encode()).digest()
    return (seed * (size // 32 + 1))[:size]


def write_file(p, data):
    with open(p, 'wb') as f:
        f.write(data)


def read_file(p):
    with open(p, 'rb') as f:
        return f.read()


def listdir(p):
    return sorted(os.listdir(p))


def seek(fd, off, whence):
    return os.lseek(fd, off, whence)


# ---- setup ----------------------------------------------------------------
os.makedirs(P('d/sub/subsub'))
os.makedirs(P('e'))
os.makedirs(P('full/x'))
for name, size in [('f0', 0), ('f1', 1), ('f64k', 65536), ('fbig', 1 << 20),
                   ('fodd', 200001), ('d/g', 70000), ('d/sub/h', 3000),
                   ('full/x/y', 10), ('trunc', 300000), ('fal', 1 << 20),
                   ('ren-a', 1000), ('ren-b', 2000), ('cfr', 200000),
                   ('mm', 131072), ('unl', 100000), ('append', 5000)]:
    write_file(P(name), pat(name, size))
with open(P('sparse'), 'wb') as f:
    f.seek(1 << 20)
    f.write(pat('sparse', 5000))
    f.truncate(4 << 20)
os.link(P('f1'), P('d/f1-link'))
os.symlink('f64k', P('sym'))
os.mkfifo(P('fifo'))
os.setxattr(P('f1'), 'user.k', b'v')
os.utime(P('fodd'), ns=(10**9, 10**9 + 7))
fd_pre = os.open(P('fbig'), os.O_RDWR)
fd_pre_app = os.open(P('append'), os.O_WRONLY | os.O_APPEND)
fd_unl = os.open(P('unl'), os.O_RDWR)
os.sync()

if at_t:
    subprocess.run(['sh', '-c', at_t], check=True)

# ---- operations -----------------------------------------------------------
# data through descriptors opened before T
rec('pwrite pre-T fd', os.pwrite, fd_pre, pat('w1', 100000), 30000)
rec('pread pre-T fd', os.pread, fd_pre, 200000, 0)
rec('pwrite pre-T fd again same block', os.pwrite, fd_pre, b'again', 30000)
rec('pread again', os.pread, fd_pre, 100, 29990)
rec('pwrite past EOF', os.pwrite, fd_pre, b'tail', (1 << 20) + 100000)
rec('fstat', os.fstat, fd_pre)
rec('append pre-T fd', os.write, fd_pre_app, pat('app', 70000))
rec('read append', read_file, P('append'))
# unlink of an open file: the descriptor keeps working
rec('unlink open', os.unlink, P('unl'))
rec('pwrite unlinked', os.pwrite, fd_unl, b'still here', 5)
rec('pread unlinked', os.pread, fd_unl, 100, 0)
rec('fstat unlinked', os.fstat, fd_unl)
rec('stat unlinked name', os.stat, P('unl'))
# new descriptors
fd = rec('open fodd rw', os.open, P('fodd'), os.O_RDWR)
rec('write fodd', os.write, fd, pat('x', 140000))
rec('lseek end', seek, fd, 0, os.SEEK_END)
rec('ftruncate shrink', os.ftruncate, fd, 65537)
rec('ftruncate grow', os.ftruncate, fd, 300000)
rec('pread grown', os.pread, fd, 300000, 0)
rec('close', os.close, fd)
rec('truncate path', os.truncate, P('trunc'), 4097)
rec('read trunc', read_file, P('trunc'))
rec('open O_TRUNC', lambda: os.close(os.open(P('f64k'), os.O_WRONLY | os.O_TRUNC)))
rec('stat f64k', os.stat, P('f64k'))
rec('read sym (O_TRUNCed target)', read_file, P('sym'))
rec('write f0', write_file, P('f0'), pat('f0new', 12345))
# fallocate, every mode FUSE passes on
fd = os.open(P('fal'), os.O_RDWR)
rec('fallocate keep size', c_fallocate, fd, FALLOC_FL_KEEP_SIZE, 0, 2 << 20)
rec('fallocate punch', c_fallocate, fd,
    FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 65536, 65536)
rec('fallocate zero', c_fallocate, fd, FALLOC_FL_ZERO_RANGE, 200000, 10000)
# (collapse and insert range are not here: the kernel's FUSE client
# refuses them with EOPNOTSUPP before they reach any daemon)
rec('fallocate grow', c_fallocate, fd, 0, 0, 3 << 20)
rec('fstat fal', os.fstat, fd)
rec('read fal', os.pread, fd, 4 << 20, 0)
os.close(fd)
# sparse file: SEEK_DATA / SEEK_HOLE
fd = os.open(P('sparse'), os.O_RDWR)
rec('seek data', seek, fd, 0, os.SEEK_DATA)
rec('seek hole', seek, fd, 1 << 20, os.SEEK_HOLE)
rec('write hole', os.pwrite, fd, b'in hole', 3 << 20)
rec('seek data 2', seek, fd, 2 << 20, os.SEEK_DATA)
rec('seek data past', seek, fd, 5 << 20, os.SEEK_DATA)
os.close(fd)
# copy_file_range into an existing file
src = os.open(P('fodd'), os.O_RDONLY)
dst = os.open(P('cfr'), os.O_WRONLY)
rec('copy_file_range', os.copy_file_range, src, dst, 100000, 0, 1000)
os.close(src)
os.close(dst)
rec('read cfr', read_file, P('cfr'))
# shared writable mmap
fd = os.open(P('mm'), os.O_RDWR)
m = mmap.mmap(fd, 131072)
m[70000:70010] = b'0123456789'
m.flush()
m.close()
os.close(fd)
rec('read mm', read_file, P('mm'))
# namespace
rec('mkdir', os.mkdir, P('new'))
rec('mkdir exists', os.mkdir, P('d'))
rec('create excl exists', os.open, P('f1'), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
rec('create new', lambda: os.close(os.open(P('new/n'), os.O_CREAT | os.O_WRONLY, 0o640)))
rec('link', os.link, P('f1'), P('new/f1-link2'))
rec('stat f1 nlink', os.stat, P('f1'))
rec('link exists', os.link, P('f1'), P('d/g'))
rec('unlink link', os.unlink, P('d/f1-link'))
rec('stat f1 nlink 2', os.stat, P('f1'))
rec('unlink dir', os.unlink, P('d'))
rec('rmdir nonempty', os.rmdir, P('d'))
rec('rmdir empty', os.rmdir, P('e'))
rec('rmdir missing', os.rmdir, P('e'))
rec('rename over file', os.rename, P('ren-a'), P('ren-b'))
rec('read ren-b', read_file, P('ren-b'))
rec('rename missing', os.rename, P('ren-a'), P('ren-c'))
rec('rename dir over nonempty', os.rename, P('new'), P('full'))
rec('rename file over dir', os.rename, P('ren-b'), P('full'))
rec('rename noreplace exists', c_renameat2, P('f1'), P('fbig'),
    RENAME_NOREPLACE)
rec('rename exchange', c_renameat2, P('f1'), P('fbig'), RENAME_EXCHANGE)
rec('stat f1 after exchange', os.stat, P('f1'))
rec('rename dir', os.rename, P('d/sub'), P('moved-sub'))
rec('listdir d', listdir, P('d'))
rec('listdir moved', listdir, P('moved-sub'))
rec('listdir top', listdir, top)
rec('symlink', os.symlink, 'nowhere', P('sym2'))
rec('symlink exists', os.symlink, 'x', P('sym'))
rec('readlink', os.readlink, P('sym2'))
rec('unlink symlink', os.unlink, P('sym'))
rec('mkfifo', os.mkfifo, P('fifo2'))
rec('mknod exists', os.mkfifo, P('fifo'))
rec('unlink fifo', os.unlink, P('fifo'))
# attributes
rec('chmod', os.chmod, P('f1'), 0o4711)
rec('stat chmod', os.stat, P('f1'))
rec('chown', os.chown, P('moved-sub/h'), 4242, 4243)
rec('lchown', os.chown, P('sym2'), 4242, 4243, follow_symlinks=False)
rec('lstat sym2', os.lstat, P('sym2'))
rec('utime', os.utime, P('moved-sub/h'), ns=(5, 6))
rec('lutime', os.utime, P('sym2'), ns=(7, 8), follow_symlinks=False)
rec('stat h', os.stat, P('moved-sub/h'))
rec('chmod dir', os.chmod, P('full'), 0o700)
rec('utime dir', os.utime, P('full'), ns=(1, 2))
rec('stat full', os.stat, P('full'))
rec('setxattr new', os.setxattr, P('f1'), 'user.n', b'new')
rec('setxattr create exists', os.setxattr, P('f1'), 'user.n', b'x',
    os.XATTR_CREATE)
rec('setxattr replace missing', os.setxattr, P('f1'), 'user.m', b'x',
    os.XATTR_REPLACE)
rec('setxattr replace', os.setxattr, P('f1'), 'user.k', b'v2',
    os.XATTR_REPLACE)
rec('getxattr', os.getxattr, P('f1'), 'user.k')
rec('listxattr', os.listxattr, P('f1'))
rec('removexattr', os.removexattr, P('f1'), 'user.n')
rec('removexattr missing', os.removexattr, P('f1'), 'user.n')
rec('getxattr removed', os.getxattr, P('f1'), 'user.n')
rec('setxattr dir', os.setxattr, P('full'), 'user.d', b'1')
rec('listxattr dir', os.listxattr, P('full'))
# last descriptors
rec('pread fbig (exchanged name)', read_file, P('f1'))
rec('close pre-T fd', os.close, fd_pre)
rec('close append', os.close, fd_pre_app)
rec('close unlinked', os.close, fd_unl)
rec('unlink big', os.unlink, P('fbig'))
rec('final listdir', listdir, top)
logf.close()
