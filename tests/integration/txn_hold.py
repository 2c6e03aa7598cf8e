#!/usr/bin/env python3
"""Transactions on MNT/.swafs/txn for the boundary-wait tests.

  txn_hold.py hold MNT READY GO [--file F --first A --second B]
      Take the shared lock, touch READY, then (with --file) write A to F;
      wait until GO exists, append B to F (fsync), release the lock and
      print the times (CLOCK_REALTIME ns) just before and after releasing.
  txn_hold.py request MNT [--nonblock]
      Ask for the shared lock; print "requested_ns granted_ns" once it is
      granted, or "EWOULDBLOCK" / the errno name if refused.
"""
import argparse
import errno
import fcntl
import os
import sys
import time


def txn_fd(mnt):
    return os.open(os.path.join(mnt, '.swafs', 'txn'), os.O_RDONLY)


def hold(a):
    fd = txn_fd(a.mnt)
    fcntl.flock(fd, fcntl.LOCK_SH)
    if a.file:
        with open(a.file, 'w') as f:
            f.write(a.first)
    open(a.ready, 'w').close()
    while not os.path.exists(a.go):
        time.sleep(0.02)
    if a.file:
        with open(a.file, 'a') as f:
            f.write(a.second)
            f.flush()
            os.fsync(f.fileno())
    before = time.time_ns()
    fcntl.flock(fd, fcntl.LOCK_UN)
    print(before, time.time_ns(), flush=True)


def request(a):
    fd = txn_fd(a.mnt)
    t0 = time.time_ns()
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | (fcntl.LOCK_NB if a.nonblock else 0))
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno)), flush=True)
        return 1
    print(t0, time.time_ns(), flush=True)
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest='cmd', required=True)
    h = sub.add_parser('hold')
    h.add_argument('mnt')
    h.add_argument('ready')
    h.add_argument('go')
    h.add_argument('--file')
    h.add_argument('--first', default='')
    h.add_argument('--second', default='')
    r = sub.add_parser('request')
    r.add_argument('mnt')
    r.add_argument('--nonblock', action='store_true')
    a = p.parse_args()
    return hold(a) if a.cmd == 'hold' else request(a)


if __name__ == '__main__':
    sys.exit(main())
