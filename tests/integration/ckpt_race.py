#!/usr/bin/env python3
"""Writers and readers for t-ckpt-races.sh.

  ckpt_race.py write DIR NFILES --seconds S --start EPOCH [--threads T]
                     [--lockstep K] [--seed N] [--block B]
      T threads overwrite random B-byte blocks (default 64 KiB, at random
      4 KiB-aligned offsets) of DIR/f0..f<NFILES-1> until S seconds after
      EPOCH (CLOCK_REALTIME, seconds).  --lockstep K: instead, walk blocks
      0, 1, 2, ... of file f<K> in order starting exactly at EPOCH, so that
      two writers given the same K race on every not-yet-captured block.
  ckpt_race.py read VIEW HASHDIR NFILES --seconds S [--seed N] [--direct]
      until S seconds pass, pread random 64 KiB blocks (O_DIRECT with
      --direct) of VIEW/f<i> and compare each with HASHDIR/f<i>.json (from
      ckpt_blockcheck.py hash).  Any wrong block or error is printed; exit 1.
"""
import hashlib
import json
import mmap
import os
import random
import sys
import threading
import time


def arg(a, name, conv=str, default=None):
    return conv(a[a.index(name) + 1]) if name in a else default


def write(a):
    d, nf = a[0], int(a[1])
    secs, start = arg(a, '--seconds', float), arg(a, '--start', float)
    threads = arg(a, '--threads', int, 2)
    lock = arg(a, '--lockstep', int)
    seed = arg(a, '--seed', int, 0)
    bs = arg(a, '--block', int, 65536)
    end = start + secs
    errs = []

    def run(k):
        r = random.Random(seed * 100 + k)
        fds = [os.open(os.path.join(d, 'f%d' % i), os.O_WRONLY)
               for i in range(nf)]
        sizes = [os.fstat(fd).st_size for fd in fds]
        while time.time() < start:
            time.sleep(0.0005)
        j = 0
        try:
            while time.time() < end:
                if lock is not None:
                    off = (j * bs) % sizes[lock]
                    os.pwrite(fds[lock], r.randbytes(bs), off)
                    j += 1
                else:
                    i = r.randrange(nf)
                    off = r.randrange((sizes[i] - bs) // 4096 + 1) * 4096
                    os.pwrite(fds[i], r.randbytes(bs), off)
        except OSError as e:
            errs.append(str(e))
        for fd in fds:
            os.close(fd)
    ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for e in errs:
        print('writer: %s' % e, file=sys.stderr)
    return 1 if errs else 0


def read(a):
    view, hd, nf = a[0], a[1], int(a[2])
    secs = arg(a, '--seconds', float)
    seed = arg(a, '--seed', int, 0)
    direct = '--direct' in a
    r = random.Random(seed)
    hs = [json.load(open(os.path.join(hd, 'f%d.json' % i)))
          for i in range(nf)]
    fds = [os.open(os.path.join(view, 'f%d' % i),
                   os.O_RDONLY | (os.O_DIRECT if direct else 0))
           for i in range(nf)]
    buf = mmap.mmap(-1, 65536)
    end = time.time() + secs
    n = 0
    bad = []
    while time.time() < end and len(bad) < 20:
        i = r.randrange(nf)
        bs = hs[i]['block']
        j = r.randrange(len(hs[i]['hashes']))
        try:
            got = os.preadv(fds[i], [buf], j * bs)
            b = bytes(buf[:got])
        except OSError as e:
            bad.append('f%d block %d: %s' % (i, j, e.strerror))
            continue
        n += 1
        if hashlib.sha256(b).hexdigest() != hs[i]['hashes'][j]:
            bad.append('f%d block %d: WRONG bytes (%d read), not T data'
                       % (i, j, len(b)))
    print('reader%s: %d blocks read, %d bad' % (' (O_DIRECT)' if direct
                                                 else '', n, len(bad)))
    for b in bad:
        print('ERROR:', b)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit({'write': write, 'read': read}[sys.argv[1]](sys.argv[2:]))
