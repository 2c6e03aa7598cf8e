#!/usr/bin/env python3
"""Helpers for the swafs integration tests (python3 stdlib only).

  manifest DIR [--all-mtimes] [--no-blocks] [--no-dirsize] [--ctimes]
      print one line per object below DIR (sorted, DIR itself as '.') with
      what a faithful copy or passthrough must preserve: type, mode, owner,
      size, link count, hard-link group, rdev, symlink target, xattrs,
      sha256 of the contents, allocated blocks. Modification times are
      printed when --all-mtimes is given, else only when they were clearly
      set explicitly (before 2001 or after 2096); atime/ctime/inode numbers
      never.
  writer FILE LOG --tag T --index K --stride N --block B --count C [--sync]
      pwrite blocks K, K+N, K+2N, ... (C of them) of B bytes each into FILE
      (created if missing, never truncated), appending the block number to
      LOG (O_APPEND, one line per block) after each pwrite() returned.
      --count 0 writes until killed or until a write fails.
  verify FILE --tag T --block B (--log LOG... | --all N)
      check that every block named in the LOGs (or blocks 0..N-1) of FILE
      holds its pattern; prints the first bad blocks and exits 1.
  many MNT BACKING N
      the 100k test: see t-100k.sh.
"""
import argparse
import errno
import hashlib
import os
import stat
import sys
import time


def pattern(tag, j, size):
    """Deterministic, block-unique bytes for block j of a file tagged tag."""
    seed = hashlib.sha256(b'%s:%d' % (tag.encode(), j)).digest()
    reps = size // len(seed) + 1
    return (seed * reps)[:size]


def q(name):
    """A printable, unambiguous form of a path (bytes)."""
    s = repr(name)[2:-1]
    return s.replace(' ', '\\x20')


def alloc(st):
    """Allocated space: exact for small files; for larger ones only whether
    the file has holes, since ext4 may add extent-tree blocks depending on
    free-space layout."""
    if st.st_blocks <= 128:
        return 'blocks=%d' % st.st_blocks
    return 'alloc=%s' % ('sparse' if st.st_blocks * 512 < st.st_size
                         else 'full')


def xattrs(path):
    out = []
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        return ['<listxattr:%s>' % e.strerror]
    for n in sorted(names):
        try:
            v = os.getxattr(path, n, follow_symlinks=False)
            out.append('%s=%s' % (n, hashlib.sha256(v).hexdigest()[:16]
                                  if len(v) > 32 else repr(v)))
        except OSError as e:
            out.append('%s=<%s>' % (n, e.strerror))
    return out


def file_hash(path, budget=1 << 30):
    """sha256 over the size and every non-zero 64 KiB-aligned chunk with its
    index: the same for equal contents whatever the hole layout, and reads
    only the data segments (SEEK_DATA/SEEK_HOLE) of sparse files."""
    ch = 1 << 16
    h = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        return '<%s>' % e.strerror
    try:
        size = os.fstat(fd).st_size
        h.update(b'size %d\n' % size)
        off, last = 0, -1
        while off < size:
            try:
                d = os.lseek(fd, off, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:
                    break
                d = off
            try:
                e = os.lseek(fd, d, os.SEEK_HOLE)
            except OSError:
                e = size
            e = max(e, d + 1)
            for k in range(max(d // ch, last + 1), (e - 1) // ch + 1):
                b = os.pread(fd, ch, k * ch)
                budget -= len(b)
                if budget < 0:
                    return '<more than 1 GiB of data>'
                if b.count(0) != len(b):
                    h.update(b'%d:' % k + b)
                last = k
            off = e
    except OSError as e:
        return '<%s>' % e.strerror
    finally:
        os.close(fd)
    return h.hexdigest()


def manifest(top, all_mtimes=False, blocks=True, dirsize=True, ctimes=False):
    top = os.fsencode(top)
    entries = [b'.']

    def walk_error(e):
        raise e
    for dirpath, dirnames, filenames in os.walk(top, onerror=walk_error):
        for n in dirnames + filenames:
            entries.append(os.path.relpath(os.path.join(dirpath, n), top))
    groups = {}
    stats = {}
    for rel in entries:
        st = os.lstat(os.path.join(top, rel))
        stats[rel] = st
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            groups.setdefault((st.st_dev, st.st_ino), []).append(rel)
    lines = []
    for rel in sorted(entries):
        p = os.path.join(top, rel)
        st = stats[rel]
        m = st.st_mode
        f = ['mode=%o' % m, 'uid=%d' % st.st_uid, 'gid=%d' % st.st_gid,
             'nlink=%d' % st.st_nlink]
        if stat.S_ISREG(m):
            f += ['size=%d' % st.st_size, 'sha=%s' % file_hash(p)[:32]]
            if blocks:
                f.append(alloc(st))
        elif stat.S_ISLNK(m):
            f += ['size=%d' % st.st_size, 'target=%s' % q(os.readlink(p))]
        elif stat.S_ISDIR(m):
            if dirsize:
                f.append('size=%d' % st.st_size)
        elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
            f.append('rdev=%d,%d' % (os.major(st.st_rdev),
                                     os.minor(st.st_rdev)))
        secs = st.st_mtime_ns // 10**9
        if all_mtimes or secs < 10**9 or secs > 4 * 10**9:
            f.append('mtime=%d' % st.st_mtime_ns)
        if ctimes:
            f.append('ctime=%d' % st.st_ctime_ns)
        g = groups.get((st.st_dev, st.st_ino))
        if g:
            f.append('hardlinks=%s' % ','.join(q(x) for x in sorted(g)))
        xa = xattrs(p)
        if xa:
            f.append('xattrs={%s}' % ' '.join(xa))
        lines.append('%s %s' % (q(rel), ' '.join(f)))
    return lines


def cmd_manifest(a):
    for line in manifest(a.dir, a.all_mtimes, not a.no_blocks,
                         not a.no_dirsize, a.ctimes):
        print(line)


def cmd_writer(a):
    fd = os.open(a.file, os.O_WRONLY | os.O_CREAT, 0o644)
    lfd = os.open(a.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    i = 0
    while a.count == 0 or i < a.count:
        j = a.index + i * a.stride
        data = pattern(a.tag, j, a.block)
        try:
            n = os.pwrite(fd, data, j * a.block)
        except OSError as e:
            print('writer %s/%d: pwrite block %d: %s'
                  % (a.tag, a.index, j, e), file=sys.stderr)
            sys.exit(3)
        if n != len(data):
            print('writer: short write %d at block %d' % (n, j),
                  file=sys.stderr)
            sys.exit(3)
        if a.sync:
            os.fsync(fd)
        os.write(lfd, b'%d\n' % j)
        i += 1
    os.close(fd)


def cmd_verify(a):
    blocks = set()
    if a.all is not None:
        blocks = set(range(a.all))
    for lg in a.log or []:
        with open(lg, 'rb') as f:
            for line in f:
                if line.endswith(b'\n'):
                    blocks.add(int(line))
    bad = []
    with open(a.file, 'rb', buffering=0) as f:
        for j in sorted(blocks):
            want = pattern(a.tag, j, a.block)
            got = os.pread(f.fileno(), a.block, j * a.block)
            if got != want:
                desc = 'short read (%d bytes)' % len(got) \
                    if len(got) != len(want) else 'wrong bytes'
                bad.append('block %d (offset %d): %s'
                           % (j, j * a.block, desc))
    if a.all is not None:
        size = os.stat(a.file).st_size
        if size != a.all * a.block:
            bad.append('size %d, expected %d' % (size, a.all * a.block))
    if bad:
        print('%s: %d of %d checked blocks bad, first: %s'
              % (a.file, len(bad), len(blocks), '; '.join(bad[:5])))
        sys.exit(1)
    print('%s: %d blocks ok' % (a.file, len(blocks)))


def fd_count(pid):
    try:
        return len(os.listdir('/proc/%d/fd' % pid))
    except OSError:
        return -1


def cmd_many(a):
    """Create N files through MNT in 100 dirs, keep them all in the kernel's
    cache (stat all, long entry timeout), hold HOLD of them open, read and
    write every one through MNT, check BACKING, drop the caches (forgets),
    stat and read every one again. The daemon's fd count is sampled."""
    n, mnt, back = a.n, a.mnt, a.backing
    pid = a.pid
    ndirs = 100
    maxfd = [0]
    errors = []
    t0 = time.time()

    def sample():
        if pid:
            c = fd_count(pid)
            if c < 0:
                errors.append('daemon %d is gone' % pid)
                raise SystemExit(report())
            maxfd[0] = max(maxfd[0], c)

    def report():
        for e in errors[:10]:
            print('ERROR:', e)
        print('%d errors; daemon max fds seen %d; %.1fs'
              % (len(errors), maxfd[0], time.time() - t0))
        return 1 if errors else 0

    def name(i):
        return 'd%02d/f%06d' % (i % ndirs, i)

    def phase(msg):
        print('%6.1fs %s (daemon fds %d)' % (time.time() - t0, msg,
                                             fd_count(pid) if pid else -1),
              flush=True)

    for d in range(ndirs):
        os.mkdir(os.path.join(mnt, 'd%02d' % d))
    for i in range(n):
        fd = os.open(os.path.join(mnt, name(i)),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b'v1 %d\n' % i)
        os.close(fd)
        if i % 5000 == 0:
            sample()
    phase('created %d files' % n)
    for i in range(n):
        st = os.stat(os.path.join(mnt, name(i)))
        if st.st_size != len(b'v1 %d\n' % i):
            errors.append('%s: size %d after create' % (name(i), st.st_size))
        if i % 5000 == 0:
            sample()
    phase('stat all')
    # hold some files open for the whole rest of the test
    held = {}
    for i in range(0, n, n // a.hold if a.hold else n + 1):
        held[i] = os.open(os.path.join(mnt, name(i)), os.O_RDWR)
    phase('holding %d open fds' % len(held))
    for i in range(n):
        p = os.path.join(mnt, name(i))
        fd = os.open(p, os.O_RDWR)
        data = os.read(fd, 100)
        if data != b'v1 %d\n' % i:
            errors.append('%s: read %r' % (name(i), data))
        os.pwrite(fd, b'v2 %d\n' % i, 0)
        os.close(fd)
        if i % 5000 == 0:
            sample()
    phase('read and wrote every file')
    for i in range(n):
        with open(os.path.join(back, name(i)), 'rb') as f:
            data = f.read()
        if data != b'v2 %d\n' % i:
            errors.append('BACKING/%s: %r after write' % (name(i), data))
    phase('checked BACKING')
    for i, fd in held.items():
        if os.pread(fd, 100, 0) != b'v2 %d\n' % i:
            errors.append('held fd of %s: stale data' % name(i))
        os.pwrite(fd, b'v3 %d\n' % i, 0)
        os.fsync(fd)
        os.close(fd)
    phase('wrote through held fds')
    if a.drop_caches:
        os.sync()
        with open('/proc/sys/vm/drop_caches', 'w') as f:
            f.write('2\n')
        phase('dropped dentry/inode caches')
    for i in range(n):
        p = os.path.join(mnt, name(i))
        want = (b'v3 %d\n' if i in held else b'v2 %d\n') % i
        with open(p, 'rb') as f:
            data = f.read()
        if data != want:
            errors.append('%s: read %r, expected %r' % (name(i), data, want))
        if i % 5000 == 0:
            sample()
    phase('re-read every file')
    got = sum(len(os.listdir(os.path.join(mnt, 'd%02d' % d)))
              for d in range(ndirs))
    if got != n:
        errors.append('listing shows %d files, expected %d' % (got, n))
    sample()
    if a.fd_limit and maxfd[0] > a.fd_limit:
        errors.append('daemon held %d fds, limit for this test %d'
                      % (maxfd[0], a.fd_limit))
    return report()


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('manifest')
    p.add_argument('dir')
    p.add_argument('--all-mtimes', action='store_true')
    p.add_argument('--no-blocks', action='store_true')
    p.add_argument('--no-dirsize', action='store_true')
    p.add_argument('--ctimes', action='store_true')
    p.set_defaults(fn=cmd_manifest)
    p = sub.add_parser('writer')
    p.add_argument('file')
    p.add_argument('log')
    p.add_argument('--tag', required=True)
    p.add_argument('--index', type=int, default=0)
    p.add_argument('--stride', type=int, default=1)
    p.add_argument('--block', type=int, default=4096)
    p.add_argument('--count', type=int, default=0)
    p.add_argument('--sync', action='store_true')
    p.set_defaults(fn=cmd_writer)
    p = sub.add_parser('verify')
    p.add_argument('file')
    p.add_argument('--tag', required=True)
    p.add_argument('--block', type=int, default=4096)
    p.add_argument('--log', action='append')
    p.add_argument('--all', type=int)
    p.set_defaults(fn=cmd_verify)
    p = sub.add_parser('many')
    p.add_argument('mnt')
    p.add_argument('backing')
    p.add_argument('n', type=int)
    p.add_argument('--pid', type=int, default=0)
    p.add_argument('--hold', type=int, default=0)
    p.add_argument('--fd-limit', type=int, default=0)
    p.add_argument('--drop-caches', action='store_true')
    p.set_defaults(fn=cmd_many)
    a = ap.parse_args()
    sys.exit(a.fn(a))


if __name__ == '__main__':
    main()
