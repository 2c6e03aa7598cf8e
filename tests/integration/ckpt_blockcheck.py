#!/usr/bin/env python3
"""Per-block hashes of a file, and a checked re-read of it.

  ckpt_blockcheck.py hash FILE OUT [--block N]
      write the sha256 of every N-byte block of FILE (and its size) to OUT
  ckpt_blockcheck.py check FILE HASHES [--direct] [--require-eio]
                     [--require-ok] [--fadvise]
      read FILE block by block (O_DIRECT when --direct; after dropping its
      cached pages with POSIX_FADV_DONTNEED when --fadvise) and compare each
      block with HASHES.  A block that reads back wrong (not its T bytes) is
      always an error.  EIO on a block is counted; --require-eio: at least
      one block must fail with EIO; --require-ok: none may.  Prints a summary
      line; exit 1 on any error.
"""
import hashlib
import json
import mmap
import os
import sys


def cmd_hash(path, out, bs):
    hs = []
    with open(path, 'rb', buffering=0) as f:
        while True:
            b = f.read(bs)
            if not b:
                break
            hs.append(hashlib.sha256(b).hexdigest())
    size = os.stat(path).st_size
    with open(out, 'w') as f:
        json.dump({'block': bs, 'size': size, 'hashes': hs}, f)


def cmd_check(path, hashes, direct, req_eio, req_ok, fadvise):
    with open(hashes) as f:
        h = json.load(f)
    bs, size, hs = h['block'], h['size'], h['hashes']
    flags = os.O_RDONLY | (os.O_DIRECT if direct else 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno != 5:
            raise
        # EIO at open: nothing can be read, nothing wrong is returned
        print('%s: open: EIO' % path)
        if req_ok:
            print('ERROR: %s: open failed with EIO' % path)
            return 1
        return 0
    if fadvise:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    buf = mmap.mmap(-1, bs)
    bad, eio, ok, other = [], 0, 0, []
    for i, want in enumerate(hs):
        try:
            if direct:
                n = os.preadv(fd, [buf], i * bs)
                got = bytes(buf[:n])
            else:
                got = os.pread(fd, bs, i * bs)
        except OSError as e:
            if e.errno == 5:
                eio += 1
            else:
                other.append('block %d: %s' % (i, e))
            continue
        if hashlib.sha256(got).hexdigest() != want:
            bad.append(i)
        else:
            ok += 1
    st = os.fstat(fd)
    os.close(fd)
    errs = []
    if bad:
        errs.append('%d blocks read back WRONG bytes (first: %s)'
                    % (len(bad), bad[:8]))
    if other:
        errs.append('errors other than EIO: %s' % other[:3])
    if req_eio and eio == 0:
        errs.append('no block failed with EIO')
    if req_ok and eio:
        errs.append('%d blocks failed with EIO' % eio)
    if st.st_size != size:
        errs.append('size %d, expected %d' % (st.st_size, size))
    print('%s: %d blocks ok, %d EIO, %d wrong' % (path, ok, eio, len(bad)))
    for e in errs:
        print('ERROR: %s: %s' % (path, e))
    return 1 if errs else 0


def main():
    a = sys.argv[1:]
    if a[0] == 'hash':
        bs = int(a[a.index('--block') + 1]) if '--block' in a else 65536
        cmd_hash(a[1], a[2], bs)
        return 0
    if a[0] == 'check':
        return cmd_check(a[1], a[2], '--direct' in a, '--require-eio' in a,
                         '--require-ok' in a, '--fadvise' in a)
    print(__doc__)
    return 2


if __name__ == '__main__':
    sys.exit(main())
