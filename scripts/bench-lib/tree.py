#!/usr/bin/env python3
"""Small-file workloads for scripts/bench.sh, run identically on both sides.

  tree.py create DIR NDIRS NFILES FILESIZE   make DIR/dNNN/fNNNNNN files
  tree.py stat DIR                           lstat every entry under DIR
  tree.py fio FILE.json read|write bw|iops   print one number from fio's JSON

create and stat print the wall time of the loop in seconds (no fsync: the
caller syncs outside the timed region); stat also checks the entry count on
stderr so a silently empty tree cannot pass as fast.
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
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
