#!/usr/bin/env python3
"""An application that never stops: keeps overwriting, appending to,
truncating, creating, renaming and deleting files below a tree, changing
modes, times and xattrs, and overwriting random blocks of a big file.

  ckpt_churn.py TOP [--big NAME] [--seed S] [--pace OPS]

Runs until killed (or until a call fails with an error other than a
vanished name, which it prints before exiting 3).  Everything happens below
TOP/churn/ and in TOP/BIG, plus occasional changes to the other files at the
top level.  --pace: sleep 1 ms every OPS operations (default 20).
"""
import errno
import os
import random
import sys
import time


def main():
    top = sys.argv[1]
    args = sys.argv[2:]
    big = args[args.index('--big') + 1] if '--big' in args else None
    seed = int(args[args.index('--seed') + 1]) if '--seed' in args else 0
    pace = int(args[args.index('--pace') + 1]) if '--pace' in args else 20
    r = random.Random(seed)
    ch = os.path.join(top, 'churn')
    os.makedirs(ch, exist_ok=True)
    others = sorted(n for n in os.listdir(top)
                    if os.path.isfile(os.path.join(top, n)) and
                    not os.path.islink(os.path.join(top, n)) and n != big)
    bigfd = os.open(os.path.join(top, big), os.O_WRONLY) if big else None
    bigsize = os.fstat(bigfd).st_size if big else 0
    i = 0
    while True:
        i += 1
        k = r.randrange(12)
        p = os.path.join(ch, 'c%03d' % r.randrange(200))
        try:
            if k == 0 and bigfd is not None:
                os.pwrite(bigfd, r.randbytes(65536),
                          r.randrange(bigsize // 65536) * 65536)
            elif k == 1:
                with open(p, 'ab') as f:
                    f.write(r.randbytes(r.randrange(1, 70000)))
            elif k == 2:
                with open(p, 'wb') as f:
                    f.write(r.randbytes(r.randrange(0, 200000)))
            elif k == 3:
                os.truncate(p, r.randrange(100000))
            elif k == 4:
                os.rename(p, os.path.join(ch, 'c%03d' % r.randrange(200)))
            elif k == 5:
                os.unlink(p)
            elif k == 6:
                d = os.path.join(ch, 'dir%02d' % r.randrange(20))
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, 'x%d' % r.randrange(20)), 'wb') as f:
                    f.write(r.randbytes(r.randrange(1, 10000)))
            elif k == 7 and others:
                q = os.path.join(top, r.choice(others))
                with open(q, 'r+b') as f:
                    f.seek(r.randrange(max(1, os.fstat(f.fileno()).st_size)))
                    f.write(r.randbytes(r.randrange(1, 5000)))
            elif k == 8 and others:
                q = os.path.join(top, r.choice(others))
                os.chmod(q, r.choice([0o600, 0o644, 0o640, 0o755]))
                os.utime(q, ns=(r.randrange(10**18), r.randrange(10**18)))
            elif k == 9 and others:
                q = os.path.join(top, r.choice(others))
                os.setxattr(q, 'user.churn', r.randbytes(r.randrange(1, 100)))
            elif k == 10:
                os.link(p, p + '.ln')
            elif k == 11:
                d = os.path.join(ch, 'dir%02d' % r.randrange(20))
                for n in os.listdir(d):
                    os.unlink(os.path.join(d, n))
                os.rmdir(d)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY):
                print('churn: %s' % e, file=sys.stderr)
                return 3
        if i % pace == 0:
            time.sleep(0.001)


if __name__ == '__main__':
    sys.exit(main())
