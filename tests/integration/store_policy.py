#!/usr/bin/env python3
"""Writer and saver for the store policy tests (t-store-policies.sh).

  store_policy.py write FILE ORIG EXPECT STATS --count N | --until PATH
      Overwrite 4 KiB at the start of random 64 KiB blocks of FILE (whose
      contents are ORIG) with new random bytes, each block once, N writes
      or until PATH exists.  Every write must succeed.  Write the image the
      file must now hold to EXPECT and, to STATS, one line per write:
      "seconds-since-start latency-seconds".
  store_policy.py save VIEWFILE ORIG --rate BYTES_PER_S [--after PATH]
      Open VIEWFILE, then (once PATH exists, if given) read it in 1 MiB
      chunks at about the given rate.  Every chunk must either equal ORIG's bytes or
      fail with EIO; after the first EIO every later chunk must fail too.
      Prints "chunks OK EIO"; exit 1 on any other bytes or error.
"""
import argparse
import errno
import os
import random
import sys
import time

BLOCK = 65536
WRITE = 4096
CHUNK = 1 << 20


def write(a):
    img = bytearray(open(a.orig, 'rb').read())
    blocks = list(range(len(img) // BLOCK))
    random.shuffle(blocks)
    fd = os.open(a.file, os.O_WRONLY)
    t0 = time.monotonic()
    lines = []
    for n, b in enumerate(blocks):
        if (a.count and n >= a.count) or (a.until and os.path.exists(a.until)):
            break
        data = os.urandom(WRITE)
        t = time.monotonic()
        os.pwrite(fd, data, b * BLOCK)   # any error fails the test
        lat = time.monotonic() - t
        img[b * BLOCK:b * BLOCK + WRITE] = data
        lines.append('%.3f %.3f\n' % (t - t0, lat))
    os.close(fd)
    open(a.expect, 'wb').write(img)
    open(a.stats, 'w').write(''.join(lines))


def save(a):
    orig = open(a.orig, 'rb').read()
    fd = os.open(a.file, os.O_RDONLY)
    if a.opened:
        open(a.opened, 'w').close()
    while a.after and not os.path.exists(a.after):
        time.sleep(0.02)
    ok = eio = 0
    for off in range(0, len(orig), CHUNK):
        t = time.monotonic()
        try:
            got = os.pread(fd, CHUNK, off)
        except OSError as e:
            if e.errno != errno.EIO:
                sys.exit('offset %d: %s, want T bytes or EIO' % (off, e))
            eio += 1
            continue
        if eio:
            sys.exit('offset %d: read after an EIO succeeded' % off)
        if got != orig[off:off + CHUNK]:
            sys.exit('offset %d: the view returned bytes that are not T\'s'
                     % off)
        ok += 1
        time.sleep(max(0.0, CHUNK / a.rate - (time.monotonic() - t)))
    os.close(fd)
    print('chunks %d %d' % (ok, eio))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest='cmd', required=True)
    w = sub.add_parser('write')
    for n in ('file', 'orig', 'expect', 'stats'):
        w.add_argument(n)
    w.add_argument('--count', type=int, default=0)
    w.add_argument('--until')
    s = sub.add_parser('save')
    s.add_argument('file')
    s.add_argument('orig')
    s.add_argument('--rate', type=float, required=True)
    s.add_argument('--after')
    s.add_argument('--opened', help='created once the file is open')
    a = p.parse_args()
    write(a) if a.cmd == 'write' else save(a)


if __name__ == '__main__':
    main()
