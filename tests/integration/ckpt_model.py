#!/usr/bin/env python3
"""Randomized model test of checkpoints.

  ckpt_model.py --mnt MNT --shadow DIR --view VIEWDIR --work DIR --seed S
                [--swactl PATH] [--retain saved|all] [--ops N]
                [--scoped] [--selftest]

Random operations (write, append, O_TRUNC rewrite, truncate, punch hole,
copy_file_range, shared mmap write, unlink, mkdir, rmdir, rename, link,
symlink, mkfifo, chmod, chown, utime, setxattr, removexattr) are applied to
MNT (a swafs live tree) and identically to DIR (a plain directory, the
model); every result (value or errno) must be the same on both.  At a
random moment the expected image is recorded (manifests of MNT and of the
model, and a copy of the model) and a checkpoint is taken and its view
mounted on VIEWDIR.  More random operations follow, interleaved with partial
reads of random T files through the view, each compared with the T copy.
At the end the view must equal the recorded image and MNT must equal the
model.

--scoped takes the checkpoint with --path for one to three random
directories or files of the tree at T (nested ones too); the recorded image
is then what lies under them plus the directories leading to them, and
the operations after T also rename, remove and recreate the scope roots
and their ancestors (a T path, wherever it is now).  Everything is decided by the seed: a failure is reproduced by the
same seed (and the same block size, chosen by the calling test).

--selftest applies one operation between recording the image and taking the
checkpoint, so the recorded image is wrong: the run must then fail.
Exit 0 if all held, 1 with the differences otherwise.
"""
import argparse
import ctypes
import errno
import hashlib
import mmap
import os
import random
import shutil
import stat
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import manifest  # noqa: E402

libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long,
                           ctypes.c_long]

# O_NONBLOCK on every open: a name may be a fifo (no open may block)
NB = os.O_NONBLOCK
DIRS = ['', 'a', 'b', 'a/c', 'a/c/d', 'b/e']
NAMES = ['f%d' % i for i in range(8)] + ['g', 'h']


class Model:
    def __init__(self, a):
        self.a = a
        self.r = random.Random(a.seed)
        self.errors = []
        self.n = 0
        self.log = open(os.path.join(a.work, 'ops.%d.log' % a.seed), 'w')

    # ---- helpers ---------------------------------------------------------
    def rpath(self):
        d = self.r.choice(DIRS)
        k = self.r.random()
        if k < 0.15:
            return d or '.'
        return os.path.join(d, self.r.choice(NAMES)) if d else \
            self.r.choice(NAMES)

    def rdata(self, n):
        return self.r.randbytes(n)

    def both(self, what, fn):
        """Run fn(top) on MNT and on the model; results must agree."""
        self.n += 1
        res = []
        for top in (self.a.mnt, self.a.shadow):
            try:
                v = fn(top)
                if isinstance(v, bytes):
                    v = hashlib.sha256(v).hexdigest()[:16]
                res.append('ok %r' % (v,))
            except OSError as e:
                res.append('err %s' % errno.errorcode.get(e.errno, e.errno))
        self.log.write('%05d %s: %s\n' % (self.n, what, res[0]))
        if res[0] != res[1]:
            self.errors.append('op %d %s: live tree %s, model %s'
                               % (self.n, what, res[0], res[1]))

    # ---- operations ------------------------------------------------------
    def op(self):
        r = self.r
        p = self.rpath()
        q = self.rpath()
        k = r.randrange(100)
        J = os.path.join
        if k < 18:
            off = r.choice([0, r.randrange(300000), r.randrange(4) * 65536,
                            r.randrange(1, 20) * 4096 - 1])
            data = self.rdata(r.choice([1, 100, 4096, 65536, 70000,
                                        r.randrange(1, 200000)]))

            def f(t):
                fd = os.open(J(t, p), os.O_WRONLY | os.O_CREAT | NB, 0o644)
                try:
                    return os.pwrite(fd, data, off)
                finally:
                    os.close(fd)
            self.both('pwrite %s off=%d len=%d' % (p, off, len(data)), f)
        elif k < 26:
            data = self.rdata(r.randrange(1, 100000))

            def f(t):
                fd = os.open(J(t, p), os.O_WRONLY | os.O_APPEND | os.O_CREAT | NB,
                             0o600)
                try:
                    return os.write(fd, data)
                finally:
                    os.close(fd)
            self.both('append %s len=%d' % (p, len(data)), f)
        elif k < 30:
            data = self.rdata(r.randrange(0, 150000))

            def f(t):
                fd = os.open(J(t, p), os.O_WRONLY | os.O_TRUNC | os.O_CREAT | NB,
                             0o640)
                try:
                    return os.write(fd, data)
                finally:
                    os.close(fd)
            self.both('rewrite O_TRUNC %s len=%d' % (p, len(data)), f)
        elif k < 36:
            size = r.choice([0, 1, 4095, 65536, r.randrange(400000)])
            self.both('truncate %s %d' % (p, size),
                      lambda t: os.truncate(J(t, p), size))
        elif k < 39:
            off, ln = r.randrange(200000), r.randrange(1, 150000)

            def f(t):
                fd = os.open(J(t, p), os.O_WRONLY | NB)
                try:
                    if libc.fallocate(fd, 3, off, ln):   # punch|keep size
                        e = ctypes.get_errno()
                        raise OSError(e, os.strerror(e))
                finally:
                    os.close(fd)
            self.both('punch %s %d+%d' % (p, off, ln), f)
        elif k < 42:
            o1, o2, ln = r.randrange(100000), r.randrange(200000), \
                r.randrange(1, 100000)

            def f(t):
                s = os.open(J(t, q), os.O_RDONLY | NB)
                try:
                    d = os.open(J(t, p), os.O_WRONLY | NB)
                    try:
                        return os.copy_file_range(s, d, ln, o1, o2)
                    finally:
                        os.close(d)
                finally:
                    os.close(s)
            self.both('copy_file_range %s->%s' % (q, p), f)
        elif k < 44:
            data = self.rdata(r.randrange(1, 5000))
            rel = r.random()

            def f(t):
                fd = os.open(J(t, p), os.O_RDWR | NB)
                try:
                    size = os.fstat(fd).st_size
                    if size < len(data):
                        return 'small'
                    off = int(rel * (size - len(data)))
                    m = mmap.mmap(fd, size)
                    m[off:off + len(data)] = data
                    m.flush()
                    m.close()
                    return off
                finally:
                    os.close(fd)
            self.both('mmap write %s' % p, f)
        elif k < 52:
            self.both('unlink %s' % p, lambda t: os.unlink(J(t, p)))
        elif k < 58:
            self.both('mkdir %s' % p, lambda t: os.mkdir(J(t, p)))
        elif k < 61:
            self.both('rmdir %s' % p, lambda t: os.rmdir(J(t, p)))
        elif k < 69:
            self.both('rename %s %s' % (p, q),
                      lambda t: os.rename(J(t, p), J(t, q)))
        elif k < 73:
            self.both('link %s %s' % (p, q),
                      lambda t: os.link(J(t, p), J(t, q)))
        elif k < 76:
            # relative targets without '..' only: nothing can resolve
            # outside the tree (writes and truncates follow symlinks)
            tgt = r.choice(['f1', 'g', 'a/c', 'c', 'nowhere', 'x' * 80])
            self.both('symlink %s %s' % (tgt, q),
                      lambda t: os.symlink(tgt, J(t, q)))
        elif k < 78:
            self.both('mkfifo %s' % p, lambda t: os.mkfifo(J(t, p)))
        elif k < 82:
            mode = r.choice([0o600, 0o644, 0o755, 0o4755, 0o1777, 0o000])
            self.both('chmod %s %o' % (p, mode),
                      lambda t: os.chmod(J(t, p), mode))
        elif k < 85:
            uid, gid = r.choice([(0, 0), (4242, 4243), (65534, 65534)])
            self.both('lchown %s %d' % (p, uid),
                      lambda t: os.chown(J(t, p), uid, gid,
                                         follow_symlinks=False))
        elif k < 89:
            ns = r.randrange(10**17, 9 * 10**17)
            self.both('utime %s %d' % (p, ns),
                      lambda t: os.utime(J(t, p), ns=(ns, ns),
                                         follow_symlinks=False))
        elif k < 95:
            n = 'user.' + r.choice(['a', 'b', 'c'])
            v = self.rdata(r.randrange(0, 300))
            self.both('setxattr %s %s' % (p, n),
                      lambda t: os.setxattr(J(t, p), n, v))
        else:
            n = 'user.' + r.choice(['a', 'b', 'c'])
            self.both('removexattr %s %s' % (p, n),
                      lambda t: os.removexattr(J(t, p), n))

    def scope_op(self):
        """Rename, remove or replace a scope root or one of its ancestors
        (by its T path: it may be gone or be another object now)."""
        r = self.r
        root = r.choice(self.scope)
        parts = root.split('/')
        p = '/'.join(parts[:r.randrange(1, len(parts) + 1)])
        q = self.rpath()
        k = r.randrange(4)
        J = os.path.join

        def create(path, data):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NB,
                         0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        def rm_rf(path):
            # rmtree opens its argument, and it may be a fifo now
            if stat.S_ISDIR(os.lstat(path).st_mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        if k == 0:
            self.both('scope rename %s %s' % (p, q),
                      lambda t: os.rename(J(t, p), J(t, q)))
        elif k == 1:
            self.both('scope rm -rf %s' % p, lambda t: rm_rf(J(t, p)))
        elif k == 2:
            def f(t):
                os.rename(J(t, p), J(t, q))
                os.makedirs(J(t, root))
                create(J(t, root, 'f1'), b'after T')
            self.both('scope replace %s (moved to %s), recreate %s'
                      % (p, q, root), f)
        else:
            def f(t):
                os.rename(J(t, p), J(t, q))
                create(J(t, p), b'a file now')
            self.both('scope replace %s by a file' % p, f)

    # ---- the view ----------------------------------------------------------
    def view_read(self):
        if not self.tfiles:
            return
        r = self.r
        rel, size = r.choice(self.tfiles)
        off = r.choice([0, r.randrange(max(1, size)),
                        r.randrange(max(1, size // 4096 + 1)) * 4096])
        ln = r.choice([1, 4096, 65536, 200000, r.randrange(1, 300000)])
        with open(os.path.join(self.tcopy, rel), 'rb') as f:
            f.seek(off)
            want = f.read(ln)
        pages = set(range(off // 4096, (off + len(want) + 4095) // 4096))
        seen = self.served.setdefault(rel, set())
        how = ('re-read of data the view served before' if pages <= seen else
               'part of it never served before' if pages & seen else
               'never served before')
        try:
            fd = os.open(os.path.join(self.a.view, rel), os.O_RDONLY)
            try:
                got = os.pread(fd, ln, off)
            finally:
                os.close(fd)
        except OSError as e:
            self.errors.append('view read %s %d+%d: %s (%s)'
                               % (rel, off, ln, e.strerror, how))
            return
        self.log.write('view read %s %d+%d\n' % (rel, off, ln))
        if got == want:
            seen |= pages
        elif want.startswith(got):
            self.errors.append('view read %s %d+%d: short read, %d of %d '
                               'bytes (%s)' % (rel, off, ln, len(got),
                                               len(want), how))
        else:
            self.errors.append('view read %s %d+%d: WRONG BYTES (%d bytes, '
                               'T has %d) (%s)' % (rel, off, ln, len(got),
                                                   len(want), how))

    def pick_scope(self):
        """One to three random paths of the tree now, directories
        mostly, nested ones allowed."""
        dirs, others = [], []
        for dp, dns, fns in os.walk(self.a.shadow):
            rel = os.path.relpath(dp, self.a.shadow)
            for n, acc in [(x, dirs) for x in dns] + [(x, others)
                                                       for x in fns]:
                n = n if rel == '.' else os.path.join(rel, n)
                # --path never goes through a symlink
                if not os.path.islink(os.path.join(self.a.shadow, n)):
                    acc.append(n)
        pool = sorted(dirs) * 3 + sorted(others)
        return sorted(set(self.r.choice(pool)
                          for _ in range(self.r.randrange(1, 4))))

    def take(self):
        a = self.a
        self.scope = self.pick_scope() if a.scoped else []
        sc = self.scope
        self.tcopy = os.path.join(a.work, 'T-copy')
        subprocess.run(['cp', '-a', a.shadow, self.tcopy], check=True)
        self.t_mnt = manifest.make(a.mnt, 'all', scope=sc)
        self.t_model = manifest.make(a.shadow, 'explicit', scope=sc)
        self.tfiles = []
        self.served = {}
        for dp, dns, fns in os.walk(self.tcopy):
            for n in fns:
                full = os.path.join(dp, n)
                rel = os.path.relpath(full, self.tcopy)
                if os.path.isfile(full) and not os.path.islink(full) and \
                        manifest.in_scope(os.fsencode(rel),
                                          [os.fsencode(x) for x in sc]):
                    self.tfiles.append((rel, os.path.getsize(full)))
        if a.selftest:
            print('SELFTEST: one more operation after the image was recorded')
            self.both('selftest append', lambda t: open(
                os.path.join(t, 'selftest'), 'ab').write(b'after the image'))
        cmd = [a.swactl, 'checkpoint', a.mnt, '--name', 'model']
        if a.retain == 'all':
            cmd += ['--retain', 'all']
        for x in sc:
            cmd += ['--path', x]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([a.swactl, 'mount', a.mnt, 'model', a.view],
                       check=True, stdout=subprocess.DEVNULL)
        self.log.write('---- checkpoint taken after op %d, scope %s\n'
                       % (self.n, ' '.join(sc) or 'all'))

    def populate(self):
        """A starting tree (the same in both): most names of every
        directory hold a file, some with xattrs, some hard-linked."""
        r = self.r
        for d in DIRS:
            if d:
                self.both('mkdir %s' % d, lambda t: os.mkdir(os.path.join(t, d)))
        for d in DIRS:
            for n in NAMES:
                if r.random() < 0.4:
                    continue
                p = os.path.join(d, n) if d else n
                data = self.rdata(r.choice([0, 1, 5000, 65536, 70000,
                                            r.randrange(300000)]))
                self.both('create %s' % p, lambda t: open(
                    os.path.join(t, p), 'wb').write(data))
                if r.random() < 0.3:
                    v = self.rdata(r.randrange(1, 100))
                    self.both('setxattr %s' % p, lambda t: os.setxattr(
                        os.path.join(t, p), 'user.a', v))

    def run(self):
        r = self.r
        self.populate()
        n1 = r.randrange(self.a.ops // 3, self.a.ops)
        n2 = self.a.ops
        for _ in range(n1):
            self.op()
        self.take()
        print('seed %d: checkpoint after %d operations (%d T files%s)'
              % (self.a.seed, n1, len(self.tfiles),
                 ', --path ' + ' '.join(self.scope) if self.scope else ''))
        for _ in range(n2):
            k = r.random()
            if k < 0.2:
                self.view_read()
            elif self.scope and k < 0.25:
                self.scope_op()
            else:
                self.op()
        self.log.flush()
        # the view equals the recorded image
        v_all = manifest.make(self.a.view, 'all')
        v_exp = manifest.make(self.a.view, 'explicit')
        t_copy = manifest.make(self.tcopy, 'explicit', root=False,
                               scope=self.scope)
        for what, x, y in [
                ('view vs live tree at T', self.t_mnt, v_all),
                ('view vs model at T', self.t_model, v_exp),
                ('model at T vs its copy',
                 [x for x in self.t_model if not x.startswith('.\t')],
                 t_copy)]:
            out = self.cmp(x, y)
            if out:
                self.errors.append('%s:\n%s' % (what, out))
        out = self.cmp(manifest.make(self.a.shadow, 'explicit'),
                       manifest.make(self.a.mnt, 'explicit'))
        if out:
            self.errors.append('live tree vs model at the end:\n%s' % out)

    @staticmethod
    def cmp(x, y):
        import io
        import contextlib
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = manifest.compare(x, y, names=('expected', 'actual'))
        return buf.getvalue() if rc else ''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--mnt', required=True)
    ap.add_argument('--shadow', required=True)
    ap.add_argument('--view', required=True)
    ap.add_argument('--work', required=True)
    ap.add_argument('--seed', type=int, required=True)
    ap.add_argument('--swactl', default='swactl')
    ap.add_argument('--retain', choices=('saved', 'all'), default='saved')
    ap.add_argument('--ops', type=int, default=600)
    ap.add_argument('--scoped', action='store_true')
    ap.add_argument('--selftest', action='store_true')
    a = ap.parse_args()
    m = Model(a)
    m.run()
    for e in m.errors[:20]:
        print('ERROR:', e)
    if len(m.errors) > 20:
        print('ERROR: ... %d errors in all' % len(m.errors))
    print('seed %d: %d operations, %s' % (a.seed, m.n,
                                          'FAILED' if m.errors else 'ok'))
    return 1 if m.errors else 0


if __name__ == '__main__':
    sys.exit(main())
