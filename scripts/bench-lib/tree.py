#!/usr/bin/env python3
"""Small-file workloads for scripts/bench.sh, run identically on both sides.

  tree.py create DIR NDIRS NFILES FILESIZE   make DIR/dNNN/fNNNNNN files
  tree.py stat DIR                           lstat every entry under DIR
  tree.py fio FILE.json read|write bw|iops   print one number from fio's JSON
  tree.py sparse FILE SIZE NEXT               a SIZE-byte file with NEXT data
                                             extents of 64 KiB spread over it
  tree.py seek FILE WALKS                     walk FILE's extents with
                                             SEEK_DATA/SEEK_HOLE WALKS times

create and stat print the wall time of the loop in seconds (no fsync: the
caller syncs outside the timed region); stat also checks the entry count on
stderr so a silently empty tree cannot pass as fast; seek prints the wall
time of the walks and the extent count on stderr.
"""
import json
import os
import sys
import time


def create(top, ndirs, nfiles, size):
    buf = b"\xa5" * size
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    per, extra = divmod(nfiles, ndirs)
    t0 = time.perf_counter()
    n = 0
    for d in range(ndirs):
        dpath = os.path.join(top, "d%03d" % d)
        os.mkdir(dpath)
        for _ in range(per + (1 if d < extra else 0)):
            fd = os.open(os.path.join(dpath, "f%06d" % n), flags, 0o644)
            os.write(fd, buf)
            os.close(fd)
            n += 1
    return time.perf_counter() - t0


def stat_all(top):
    t0 = time.perf_counter()
    count = 0
    todo = [top]
    while todo:
        d = todo.pop()
        with os.scandir(d) as it:
            names = [(e.path, e.is_dir(follow_symlinks=False)) for e in it]
        for path, isdir in names:
            os.lstat(path)
            count += 1
            if isdir:
                todo.append(path)
    dt = time.perf_counter() - t0
    print("bench:   stat: %d entries under '%s'" % (count, top), file=sys.stderr)
    return dt


def sparse(path, size, next_):
    with open(path, "wb") as f:
        f.truncate(size)
        for k in range(next_):
            f.seek(size // next_ * k + 8192)
            f.write(os.urandom(65536))
        os.fsync(f.fileno())


def seek_walks(path, walks):
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    t0 = time.perf_counter()
    for _ in range(walks):
        pos, n = 0, 0
        while pos < size:
            try:
                d = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            pos = os.lseek(fd, d, os.SEEK_HOLE)
            n += 1
    dt = time.perf_counter() - t0
    os.close(fd)
    print("bench:   seek: %d extents in '%s'" % (n, path), file=sys.stderr)
    return dt


def fio_metric(path, ddir, what):
    job = json.load(open(path))["jobs"][0][ddir]
    if what == "bw":
        return "%.1f" % (job["bw_bytes"] / 1e6)  # MB/s, 10^6
    return "%.0f" % job["iops"]


def main(argv):
    if len(argv) == 6 and argv[1] == "create":
        print("%.3f" % create(argv[2], int(argv[3]), int(argv[4]),
                             int(argv[5])))
    elif len(argv) == 3 and argv[1] == "stat":
        print("%.3f" % stat_all(argv[2]))
    elif len(argv) == 5 and argv[1] == "fio":
        print(fio_metric(argv[2], argv[3], argv[4]))
    elif len(argv) == 5 and argv[1] == "sparse":
        sparse(argv[2], int(argv[3]), int(argv[4]))
    elif len(argv) == 4 and argv[1] == "seek":
        print("%.3f" % seek_walks(argv[2], int(argv[3])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
