#!/usr/bin/env python3
"""The layout of files as SEEK_DATA/SEEK_HOLE and stat tell it, saved and
checked: what a sparse-aware copy (cp --sparse, tar --sparse) relies on.

  layout.py save OUT FILE...
      write size, st_blocks, the data extents and the sha256 of the bytes
      in them of every FILE (keyed by basename) to OUT (JSON)
  layout.py check SAVED DIR [--allow-eio EVENTS] [--no-blocks]
                  [--max-seconds S] [--no-data]
      the files DIR/NAME for every NAME in SAVED must have the saved size,
      st_blocks (unless --no-blocks), extents and bytes (unless --no-data).
      --allow-eio: a seek or read that fails with EIO is accepted if an
      integrity-error event in the EVENTS file names the file (waited for
      up to 5 s).  --max-seconds: walking the extents of each file must
      take at most S seconds.  Prints one line per file; exit 1 on any
      difference.
  layout.py write FILE OFF LEN [SEED]
      write LEN pseudo-random bytes at OFF (no truncation)
"""
import errno
import hashlib
import json
import os
import random
import sys
import time


def extents(fd, size):
    """Data extents [(start, end)] of fd up to size."""
    out, pos = [], 0
    while pos < size:
        try:
            d = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:
                break
            raise
        if d >= size:
            break
        h = min(os.lseek(fd, d, os.SEEK_HOLE), size)
        if h <= d:
            raise RuntimeError('SEEK_HOLE from data at %d gave %d' % (d, h))
        out.append((d, h))
        pos = h
    return out


def data_hash(fd, ext):
    h = hashlib.sha256()
    for s, e in ext:
        h.update(b'%d:' % s)
        while s < e:
            b = os.pread(fd, min(1 << 20, e - s), s)
            if not b:
                raise RuntimeError('short read at %d' % s)
            h.update(b)
            s += len(b)
    return h.hexdigest()


def layout(path, with_data=True):
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        t0 = time.monotonic()
        ext = extents(fd, st.st_size)
        secs = time.monotonic() - t0
        rec = {'size': st.st_size, 'blocks': st.st_blocks,
               'extents': ext, 'secs': secs}
        if with_data:
            rec['sha'] = data_hash(fd, ext)
        return rec
    finally:
        os.close(fd)


def cmd_save(out, files):
    res = {}
    for f in files:
        rec = layout(f)
        del rec['secs']
        res[os.path.basename(f)] = rec
    with open(out, 'w') as o:
        json.dump(res, o)


def event_names(events, name):
    end = time.monotonic() + 5
    while True:
        try:
            with open(events) as f:
                for line in f:
                    ev = json.loads(line)
                    if (ev.get('event') == 'integrity-error' and
                            os.path.basename(ev.get('file', '').split(
                                ' (inode')[0]) == name):
                        return True
        except FileNotFoundError:
            pass
        if time.monotonic() > end:
            return False
        time.sleep(0.1)


def check_one(path, want, opt):
    name = os.path.basename(path)
    try:
        got = layout(path, 'sha' in want and not opt['no_data'])
    except OSError as e:
        if e.errno == errno.EIO and opt['events']:
            if event_names(opt['events'], name):
                return '%s: EIO with an integrity-error event' % name, True
            return '%s: EIO but no integrity-error event names it' % name, \
                False
        return '%s: %s' % (name, e), False
    bad = []
    for k in ('size', 'blocks', 'extents', 'sha'):
        if k == 'blocks' and opt['no_blocks']:
            continue
        if k == 'sha' and (opt['no_data'] or 'sha' not in got):
            continue
        w, g = want[k], got[k]
        if k == 'extents':
            w, g = [list(x) for x in w], [list(x) for x in g]
        if w != g:
            shown = (lambda v: v[:8]) if k == 'extents' else (lambda v: v)
            bad.append('%s %s, at T %s' % (k, shown(g), shown(w)))
    if opt['max_secs'] is not None and got['secs'] > opt['max_secs']:
        bad.append('extents took %.1f s (limit %s)' % (got['secs'],
                                                     opt['max_secs']))
    if bad:
        return '%s: %s' % (name, '; '.join(bad)), False
    return '%s: %d extents as at T (%.3f s)' % (name, len(got['extents']),
                                                got['secs']), True


def cmd_check(saved, d, args):
    opt = {'events': None, 'no_blocks': '--no-blocks' in args,
           'no_data': '--no-data' in args, 'max_secs': None}
    if '--allow-eio' in args:
        opt['events'] = args[args.index('--allow-eio') + 1]
    if '--max-seconds' in args:
        opt['max_secs'] = float(args[args.index('--max-seconds') + 1])
    with open(saved) as f:
        want = json.load(f)
    ok = True
    for name in sorted(want):
        line, good = check_one(os.path.join(d, name), want[name], opt)
        print(line)
        ok = ok and good
    return 0 if ok else 1


def cmd_write(path, off, length, seed):
    r = random.Random(seed)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, r.randbytes(length), off)
    finally:
        os.close(fd)


def main():
    a = sys.argv[1:]
    if len(a) >= 2 and a[0] == 'save':
        cmd_save(a[1], a[2:])
        return 0
    if len(a) >= 3 and a[0] == 'check':
        return cmd_check(a[1], a[2], a[3:])
    if len(a) in (4, 5) and a[0] == 'write':
        cmd_write(a[1], int(a[2]), int(a[3]), int(a[4]) if len(a) == 5 else 0)
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == '__main__':
    sys.exit(main())
