#!/usr/bin/env python3
"""Read a tar stream on stdin: count its bytes and members and check the
contents of chosen files against expected hashes.

  tar -cf - -C VIEW . | ckpt_tarcheck.py HASHES

HASHES is a JSON object {"./relative/path": "sha256", ...}.  Prints
"bytes=N members=M files=F checked=C"; exit 1 (printing them) if any listed
file is missing from the stream or differs.
"""
import hashlib
import json
import sys
import tarfile


class Counter:
    def __init__(self, f):
        self.f = f
        self.n = 0

    def read(self, size=-1):
        b = self.f.read(size)
        self.n += len(b)
        return b


def main():
    with open(sys.argv[1]) as f:
        want = json.load(f)
    src = Counter(sys.stdin.buffer)
    members = files = 0
    seen = {}
    with tarfile.open(fileobj=src, mode='r|') as t:
        for m in t:
            members += 1
            if m.isfile():
                files += 1
                name = m.name if m.name.startswith('./') else './' + m.name
                if name in want:
                    seen[name] = hashlib.sha256(t.extractfile(m).read()).hexdigest()
    while src.read(1 << 20):
        pass
    bad = []
    for name, sha in sorted(want.items()):
        if name not in seen:
            bad.append('%s: not in the archive' % name)
        elif seen[name] != sha:
            bad.append('%s: contents differ from T' % name)
    print('bytes=%d members=%d files=%d checked=%d' % (src.n, members, files,
                                                      len(seen)))
    for b in bad[:10]:
        print('ERROR:', b)
    if len(bad) > 10:
        print('ERROR: ... %d in all' % len(bad))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
