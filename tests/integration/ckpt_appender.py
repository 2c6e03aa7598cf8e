#!/usr/bin/env python3
"""Appenders and checkpoint timing for t-ckpt-appenders.sh.

  ckpt_appender.py append FILE LOG --id I --size N --seconds S
      append numbered N-byte records to FILE (O_APPEND, one write() each)
      for S seconds; after each write() returned, log
      "SEQ START_NS END_NS" (CLOCK_MONOTONIC before the call and after it
      returned) to LOG, outside the mount.
  ckpt_appender.py checkpoint TIMES -- CMD...
      run CMD (swactl checkpoint ...), append "NAME START_NS END_NS RC" to
      TIMES (CLOCK_MONOTONIC right before starting it, right after it
      exited).
  ckpt_appender.py verify VIEWFILE LOG --id I --size N --start NS --end NS
      The view's copy of FILE holds records 0..k-1, intact and in order,
      and nothing else; every record whose write() returned before the
      checkpoint command started (END_NS < --start) is among them; none
      whose write() started after the command returned (START_NS > --end)
      is.  Prints k and the window; exit 1 on any violation.
"""
import os
import subprocess
import sys
import time


def record(i, seq, size):
    head = b'rec %d %d ' % (i, seq)
    body = bytes([(i * 31 + seq * 7) % 251 + 1]) * size
    return (head + body)[:size - 1] + b'\n'


def arg(a, name, conv=str):
    return conv(a[a.index(name) + 1])


def append(a):
    f, log = a[0], a[1]
    i, size, secs = arg(a, '--id', int), arg(a, '--size', int), \
        arg(a, '--seconds', float)
    fd = os.open(f, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    lg = open(log, 'w', buffering=1)
    end = time.monotonic() + secs
    seq = 0
    while time.monotonic() < end:
        r = record(i, seq, size)
        t0 = time.monotonic_ns()
        n = os.write(fd, r)
        t1 = time.monotonic_ns()
        if n != size:
            print('appender %d: short write %d' % (i, n), file=sys.stderr)
            return 3
        lg.write('%d %d %d\n' % (seq, t0, t1))
        seq += 1
    return 0


def checkpoint(a):
    times = a[0]
    cmd = a[a.index('--') + 1:]
    name = cmd[cmd.index('--name') + 1]
    t0 = time.monotonic_ns()
    rc = subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode
    t1 = time.monotonic_ns()
    with open(times, 'a') as f:
        f.write('%s %d %d %d\n' % (name, t0, t1, rc))
    return rc


def verify(a):
    vf, log = a[0], a[1]
    i, size = arg(a, '--id', int), arg(a, '--size', int)
    start, end = arg(a, '--start', int), arg(a, '--end', int)
    with open(vf, 'rb') as f:
        data = f.read()
    errs = []
    k = len(data) // size
    spans = {}
    with open(log) as f:
        for line in f:
            seq, t0, t1 = map(int, line.split())
            spans[seq] = (t0, t1)
    if len(data) % size:
        # The kernel may split one write() into several FUSE requests (a
        # partial page it has not cached ends a request), so a write() in
        # flight while the checkpoint was taken may be partly in the view,
        # as after a crash.  Only that one, and only a prefix of it.
        t0, t1 = spans.get(k, (None, None))
        in_flight = t0 is not None and t0 <= end and t1 >= start
        if not in_flight:
            errs.append('size %d is not a whole number of %d-byte records and '
                        'record %d was not being written during the checkpoint'
                        % (len(data), size, k))
        elif data[k * size:] != record(i, k, size)[:len(data) - k * size]:
            errs.append('the partial record %d is not a prefix of what was '
                        'written' % k)
    for seq in range(k):
        if data[seq * size:(seq + 1) * size] != record(i, seq, size):
            errs.append('record %d is not what was written' % seq)
            break
    must = mustnot = None
    with open(log) as f:
        for line in f:
            seq, t0, t1 = map(int, line.split())
            if t1 < start:
                must = seq
            if t0 > end and mustnot is None:
                mustnot = seq
    if must is not None and must >= k:
        errs.append('record %d returned before the checkpoint started but '
                    'the view has only %d records' % (must, k))
    if mustnot is not None and mustnot < k:
        errs.append('record %d started after the checkpoint returned but '
                    'the view has %d records' % (mustnot, k))
    print('%s: %d records in the view; must have %s, must not have %s'
          % (vf, k, 'none' if must is None else '0..%d' % must,
             'any' if mustnot is None else '%d..' % mustnot))
    for e in errs:
        print('ERROR: %s: %s' % (vf, e))
    return 1 if errs else 0


if __name__ == '__main__':
    cmd, rest = sys.argv[1], sys.argv[2:]
    sys.exit({'append': append, 'checkpoint': checkpoint,
              'verify': verify}[cmd](rest))
