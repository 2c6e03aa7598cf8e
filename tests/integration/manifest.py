#!/usr/bin/env python3
"""Canonical manifests of directory trees, for the checkpoint tests.

  manifest.py make DIR [-o FILE] [--mtime all|explicit|none] [--no-root]
                       [--no-data] [--exclude NAME]... [--scope PATH]...
      Walk DIR without following symlinks and print one line per object
      (DIR itself as '.'), sorted by path:

        PATH<TAB>type=T mode=OOOO uid=U gid=G nlink=N [size=S] [mtime=NS]
                 [link=LABEL] [target=T] [rdev=MA,MI] [xattr=...] [sha256=H]

      type is one of f d l p s c b.  size is printed for files and symlinks
      (not directories: their size is a property of the backing filesystem).
      mtime: 'all' (default) prints every object's mtime in nanoseconds,
      'explicit' only mtimes clearly set on purpose (before 2001 or after
      2096), 'none' never.  atime, ctime and raw inode numbers are never
      printed.  link=LABEL: names that share one inode (lstat st_dev and
      st_ino within the walk) get the same label, the smallest path of the
      group; printed for non-directories whose group has several names or
      whose st_nlink is above 1.  xattr= lists the user.* extended
      attributes sorted, each name=sha256(value)[:16].  sha256 is that of
      the whole contents of a regular file (read with 1 MiB reads).  An
      error while reading something is printed in place of the value, as
      <ERRNAME>, so that it shows up as a difference; with --strict the exit
      status is then 3.  --scope (repeatable) keeps only what a view of a
      checkpoint taken with those --path options shows: the subtrees and
      the directories leading to them (link labels among those names).
  manifest.py cmp A B [--ignore FIELD]...
      Compare two manifest files; print each difference (missing paths,
      fields that differ); exit 1 if there is any, else 0.
  manifest.py diff DIR_A DIR_B [make options] [--ignore FIELD]...
      make both manifests and compare them.

python3 stdlib only.
"""
import argparse
import errno
import hashlib
import os
import stat
import sys

TYPES = [(stat.S_ISREG, 'f'), (stat.S_ISDIR, 'd'), (stat.S_ISLNK, 'l'),
         (stat.S_ISFIFO, 'p'), (stat.S_ISSOCK, 's'), (stat.S_ISCHR, 'c'),
         (stat.S_ISBLK, 'b')]

read_errors = []


def ftype(m):
    for fn, t in TYPES:
        if fn(m):
            return t
    return '?'


def q(path):
    """Printable, unambiguous, whitespace-free form of a path (bytes)."""
    out = []
    for c in path:
        if c <= 0x20 or c >= 0x7f or c in b'\\%':
            out.append('%%%02x' % c)
        else:
            out.append(chr(c))
    return ''.join(out)


def errname(e):
    return '<%s>' % errno.errorcode.get(e.errno, str(e.errno))


def sha256_file(path):
    h = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        read_errors.append((path, e))
        return errname(e)
    try:
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            h.update(b)
    except OSError as e:
        read_errors.append((path, e))
        return errname(e)
    finally:
        os.close(fd)
    return h.hexdigest()


def xattr_field(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return ''
        read_errors.append((path, e))
        return errname(e)
    out = []
    for n in sorted(x for x in names if x.startswith('user.')):
        try:
            v = os.getxattr(path, n, follow_symlinks=False)
            out.append('%s=%s' % (q(n.encode()),
                                  hashlib.sha256(v).hexdigest()[:16]))
        except OSError as e:
            read_errors.append((path, e))
            out.append('%s=%s' % (q(n.encode()), errname(e)))
    return ','.join(out)


def walk(top):
    """All relative paths (bytes) below top, top itself as b'.'."""
    rels = [b'.']
    stack = [b'']
    while stack:
        rel = stack.pop()
        full = os.path.join(top, rel) if rel else top
        try:
            with os.scandir(full) as it:
                ents = list(it)
        except OSError as e:
            read_errors.append((full, e))
            rels.append((rel or b'.') + b'/<readdir:%s>' %
                        errname(e).encode())
            continue
        for e in ents:
            r = os.path.join(rel, e.name) if rel else e.name
            rels.append(r)
            try:
                if e.is_dir(follow_symlinks=False):
                    stack.append(r)
            except OSError as ex:
                read_errors.append((r, ex))
    return rels


def in_scope(rel, scope):
    """rel is '.', leads to a scope path, or lies in a subtree."""
    if not scope or rel == b'.':
        return True
    return any(rel == x or rel.startswith(x + b'/') or
               x.startswith(rel + b'/') for x in scope)


def make(top, mtime='all', root=True, data=True, exclude=(), scope=()):
    top = os.fsencode(top)
    excl = set(os.fsencode(x) for x in exclude)
    scope = [os.fsencode(x) for x in scope]
    rels = [r for r in walk(top)
            if not any(r == x or r.startswith(x + b'/') for x in excl) and
            in_scope(r.split(b'/<readdir:')[0], scope)]
    sts = {}
    groups = {}
    for rel in rels:
        if b'/<readdir:' in rel:
            continue
        try:
            st = os.lstat(os.path.join(top, rel))
        except OSError as e:
            read_errors.append((rel, e))
            sts[rel] = e
            continue
        sts[rel] = st
        if not stat.S_ISDIR(st.st_mode):
            groups.setdefault((st.st_dev, st.st_ino), []).append(rel)
    label = {}
    for key, names in groups.items():
        for n in names:
            label[n] = min(names)
    lines = []
    for rel in sorted(rels):
        if rel == b'.' and not root:
            continue
        st = sts.get(rel)
        if st is None or isinstance(st, OSError):
            lines.append('%s\t%s' % (q(rel), 'lstat=%s' % (
                errname(st) if st is not None else '<READDIR>')))
            continue
        p = os.path.join(top, rel)
        m = st.st_mode
        t = ftype(m)
        f = ['type=' + t, 'mode=%04o' % stat.S_IMODE(m), 'uid=%d' % st.st_uid,
             'gid=%d' % st.st_gid, 'nlink=%d' % st.st_nlink]
        if t in 'fl':
            f.append('size=%d' % st.st_size)
        secs = st.st_mtime_ns // 10**9
        if mtime == 'all' or (mtime == 'explicit' and
                              (secs < 10**9 or secs > 4 * 10**9)):
            f.append('mtime=%d' % st.st_mtime_ns)
        if t != 'd':
            g = groups.get((st.st_dev, st.st_ino), [])
            if len(g) > 1 or st.st_nlink > 1:
                f.append('link=%s' % q(label[rel]))
        if t == 'l':
            try:
                f.append('target=%s' % q(os.readlink(p)))
            except OSError as e:
                read_errors.append((p, e))
                f.append('target=%s' % errname(e))
        if t in 'cb':
            f.append('rdev=%d,%d' % (os.major(st.st_rdev),
                                     os.minor(st.st_rdev)))
        if t != 'l':
            xa = xattr_field(p)
            if xa:
                f.append('xattr=' + xa)
        if t == 'f' and data:
            f.append('sha256=' + sha256_file(p))
        lines.append('%s\t%s' % (q(rel), ' '.join(f)))
    return lines


def parse(lines):
    out = {}
    for line in lines:
        line = line.rstrip('\n')
        if not line:
            continue
        path, _, rest = line.partition('\t')
        fields = {}
        for kv in rest.split(' '):
            k, _, v = kv.partition('=')
            fields[k] = v
        out[path] = fields
    return out


def compare(a_lines, b_lines, ignore=(), names=('A', 'B'), limit=60):
    a, b = parse(a_lines), parse(b_lines)
    diffs = []
    for p in sorted(set(a) | set(b)):
        if p not in b:
            diffs.append('only in %s: %s (%s)' % (
                names[0], p, ' '.join('%s=%s' % kv for kv in
                                      a[p].items())[:200]))
            continue
        if p not in a:
            diffs.append('only in %s: %s (%s)' % (
                names[1], p, ' '.join('%s=%s' % kv for kv in
                                      b[p].items())[:200]))
            continue
        for k in sorted(set(a[p]) | set(b[p])):
            if k in ignore:
                continue
            va, vb = a[p].get(k, '-'), b[p].get(k, '-')
            if va != vb:
                diffs.append('%s: %s: %s=%s %s=%s' % (
                    p, k, names[0], va, names[1], vb))
    for d in diffs[:limit]:
        print(d)
    if len(diffs) > limit:
        print('... %d differences in all' % len(diffs))
    return 1 if diffs else 0


def add_make_opts(p):
    p.add_argument('--mtime', choices=('all', 'explicit', 'none'),
                   default='all')
    p.add_argument('--no-root', action='store_true')
    p.add_argument('--no-data', action='store_true')
    p.add_argument('--exclude', action='append', default=[])
    p.add_argument('--scope', action='append', default=[])
    p.add_argument('--strict', action='store_true')


def report_errors(a):
    for path, e in read_errors[:10]:
        print('manifest: %s: %s' % (os.fsdecode(path) if
                                     isinstance(path, bytes) else path,
                                     e.strerror), file=sys.stderr)
    if read_errors and a.strict:
        return 3
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('make')
    p.add_argument('dir')
    p.add_argument('-o', '--output')
    add_make_opts(p)
    p = sub.add_parser('cmp')
    p.add_argument('a')
    p.add_argument('b')
    p.add_argument('--ignore', action='append', default=[])
    p = sub.add_parser('diff')
    p.add_argument('a')
    p.add_argument('b')
    p.add_argument('--ignore', action='append', default=[])
    add_make_opts(p)
    a = ap.parse_args()
    if a.cmd == 'make':
        lines = make(a.dir, a.mtime, not a.no_root, not a.no_data, a.exclude,
                     a.scope)
        text = ''.join(x + '\n' for x in lines)
        if a.output:
            with open(a.output, 'w') as f:
                f.write(text)
        else:
            sys.stdout.write(text)
        return report_errors(a)
    if a.cmd == 'cmp':
        with open(a.a) as fa, open(a.b) as fb:
            return compare(fa.readlines(), fb.readlines(), a.ignore,
                           (a.a, a.b))
    la = make(a.a, a.mtime, not a.no_root, not a.no_data, a.exclude,
              a.scope)
    lb = make(a.b, a.mtime, not a.no_root, not a.no_data, a.exclude,
              a.scope)
    rc = compare(la, lb, a.ignore, (a.a, a.b))
    return rc or report_errors(a)


if __name__ == '__main__':
    sys.exit(main())
