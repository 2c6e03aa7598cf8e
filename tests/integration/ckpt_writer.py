#!/usr/bin/env python3
"""A logging writer for the checkpoint tests, and its verifier.

  ckpt_writer.py write FILE LOG --tag T [--block B] [--nblocks N]
                 [--seed S] [--seconds SECS] [--new-files DIR]
      Overwrite random blocks of FILE (B bytes, among the first N blocks)
      with self-describing data (a header naming tag, block and generation,
      then bytes derived from them) until SECS pass or a write fails.  After
      each pwrite() returned, append "b BLOCK GEN" to LOG (O_APPEND, outside
      the mount).  With --new-files DIR, every 8th step creates a new file
      DIR/T-<n> (written, closed) and logs "n NAME SHA256".
  ckpt_writer.py verify FILE LOG --tag T [--block B] [--new-files DIR]
      Every write in LOG must be in FILE: each logged block holds data of
      this tag and block with a generation at least the last logged one
      (a later write that was in flight when the writer stopped may be
      there too, whole or, split by the kernel, page by page over the
      logged one).  Every logged new file must exist with its hash.  Exit 1
      with the first differences otherwise.
"""
import argparse
import hashlib
import os
import random
import sys
import time

HDR = 64


def block_data(tag, j, gen, size):
    head = ('%s %d %d' % (tag, j, gen)).encode().ljust(HDR, b'.')
    seed = hashlib.sha256(head).digest()
    return (head + seed * (size // 32 + 1))[:size]


def parse_block(b):
    try:
        tag, j, gen = b[:HDR].rstrip(b'.').decode().split(' ')
        return tag, int(j), int(gen)
    except Exception:
        return None


def cmd_write(a):
    fd = os.open(a.file, os.O_WRONLY | os.O_CREAT, 0o644)
    lfd = os.open(a.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    r = random.Random(a.seed)
    end = time.time() + a.seconds
    gen = 0
    nf = 0
    while time.time() < end:
        gen += 1
        try:
            if a.new_files and gen % 8 == 0:
                nf += 1
                name = '%s-%d' % (a.tag, nf)
                data = r.randbytes(r.randrange(1, 200000))
                with open(os.path.join(a.new_files, name), 'wb') as f:
                    f.write(data)
                os.write(lfd, b'n %s %s\n' % (name.encode(),
                                              hashlib.sha256(data).hexdigest().encode()))
                continue
            j = r.randrange(a.nblocks)
            d = block_data(a.tag, j, gen, a.block)
            n = os.pwrite(fd, d, j * a.block)
            if n != len(d):
                print('writer %s: short write' % a.tag, file=sys.stderr)
                return 3
        except OSError as e:
            print('writer %s: stopped by %s' % (a.tag, e), file=sys.stderr)
            return 3
        os.write(lfd, b'b %d %d\n' % (j, gen))
    return 0


def torn_in_flight(b, tag, j, old, new, size, page=4096):
    """b is what a write of generation new that never returned (it was in
    flight when the daemon died) may leave over generation old: the kernel
    can split one write() into several requests, so each page is either
    the new one or the old one, as after a crash at that moment."""
    o, n = block_data(tag, j, old, size), block_data(tag, j, new, size)
    return all(b[k:k + page] in (o[k:k + page], n[k:k + page])
               for k in range(0, size, page))


def cmd_verify(a):
    last = {}
    files = {}
    with open(a.log, 'rb') as f:
        for line in f:
            if not line.endswith(b'\n'):
                continue
            p = line.split()
            if p[0] == b'b':
                last[int(p[1])] = int(p[2])
            else:
                files[p[1].decode()] = p[2].decode()
    bad = []
    with open(a.file, 'rb') as f:
        for j, g in sorted(last.items()):
            f.seek(j * a.block)
            b = f.read(a.block)
            h = parse_block(b)
            if h is None or h[0] != a.tag or h[1] != j or h[2] < g:
                bad.append('block %d: logged gen %d, found %s' % (j, g, h))
            elif b != block_data(a.tag, j, h[2], a.block) and \
                    (h[2] == g or not torn_in_flight(b, a.tag, j, g, h[2], a.block)):
                bad.append('block %d: gen %d torn or corrupt' % (j, h[2]))
    for name, sha in sorted(files.items()):
        p = os.path.join(a.new_files, name)
        try:
            with open(p, 'rb') as f:
                got = hashlib.sha256(f.read()).hexdigest()
        except OSError as e:
            bad.append('%s: %s' % (name, e.strerror))
            continue
        if got != sha:
            bad.append('%s: contents differ from what was written' % name)
    print('%s: %d logged blocks, %d logged new files, %d bad' % (
        a.file, len(last), len(files), len(bad)))
    for b in bad[:10]:
        print('ERROR:', b)
    return 1 if bad or not last else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('cmd', choices=('write', 'verify'))
    ap.add_argument('file')
    ap.add_argument('log')
    ap.add_argument('--tag', required=True)
    ap.add_argument('--block', type=int, default=65536)
    ap.add_argument('--nblocks', type=int, default=256)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--seconds', type=float, default=5)
    ap.add_argument('--new-files')
    a = ap.parse_args()
    return cmd_write(a) if a.cmd == 'write' else cmd_verify(a)


if __name__ == '__main__':
    sys.exit(main())
