#!/usr/bin/env python3
"""A SQLite bank under load, for the checkpoint tests.

  sqlite_bank.py init DB
      Create DB in WAL mode: ACCOUNTS accounts of 1000 each, an empty
      ledger (one row per transfer).
  sqlite_bank.py write DB LOG STOP [--txn MNT] [--seed S]
      Until STOP exists: move an amount between two accounts and add a
      ledger row, in one transaction.  With --txn, hold a shared flock on
      MNT/.swafs/txn from before BEGIN to after COMMIT.  After each
      transaction append "START_NS END_NS" (CLOCK_REALTIME) to LOG:
      START just before BEGIN (after the lock is granted), END once COMMIT
      returned (before the lock is released).
  sqlite_bank.py check DB T_NS LOG... [--boundary]
      Open DB (a copy taken out of a view): integrity_check must say ok,
      the balances must sum to ACCOUNTS * 1000.  With --boundary the
      ledger holds exactly the transactions that ended before T and no
      logged transaction spans T; without, it holds between those that
      ended and those that started before T.
"""
import argparse
import fcntl
import os
import random
import sqlite3
import sys
import time

ACCOUNTS = 50


def connect(db):
    c = sqlite3.connect(db, timeout=60, isolation_level=None)
    c.execute('PRAGMA busy_timeout=60000')
    return c


def init(a):
    c = connect(a.db)
    c.execute('PRAGMA journal_mode=WAL')
    c.execute('CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER)')
    c.execute('CREATE TABLE ledger (id INTEGER PRIMARY KEY, src INTEGER, '
              'dst INTEGER, amount INTEGER, pad TEXT)')
    c.executemany('INSERT INTO accounts VALUES (?, 1000)',
                  [(i,) for i in range(ACCOUNTS)])
    c.close()


def write(a):
    rnd = random.Random(a.seed)
    c = connect(a.db)
    txn = os.open(os.path.join(a.txn, '.swafs', 'txn'), os.O_RDONLY) \
        if a.txn else -1
    with open(a.log, 'a') as log:
        while not os.path.exists(a.stop):
            src, dst = rnd.sample(range(ACCOUNTS), 2)
            amount = rnd.randint(1, 50)
            if txn >= 0:
                fcntl.flock(txn, fcntl.LOCK_SH)
            start = time.time_ns()
            c.execute('BEGIN IMMEDIATE')
            c.execute('UPDATE accounts SET balance = balance - ? WHERE id = ?',
                      (amount, src))
            c.execute('INSERT INTO ledger (src, dst, amount, pad) '
                      'VALUES (?, ?, ?, ?)', (src, dst, amount, 'x' * 200))
            c.execute('UPDATE accounts SET balance = balance + ? WHERE id = ?',
                      (amount, dst))
            c.execute('COMMIT')
            end = time.time_ns()
            if txn >= 0:
                fcntl.flock(txn, fcntl.LOCK_UN)
            log.write('%d %d\n' % (start, end))
            log.flush()
    c.close()


def check(a):
    c = connect(a.db)
    ok = c.execute('PRAGMA integrity_check').fetchone()[0]
    total = c.execute('SELECT sum(balance) FROM accounts').fetchone()[0]
    rows = c.execute('SELECT count(*) FROM ledger').fetchone()[0]
    spans = []
    for path in a.logs:
        with open(path) as f:
            spans += [tuple(map(int, line.split())) for line in f]
    t = a.t_ns
    ended = sum(1 for s, e in spans if e < t)
    started = sum(1 for s, e in spans if s < t)
    across = [(s, e) for s, e in spans if s < t <= e]
    print('integrity=%s sum=%s rows=%d ended_before_T=%d started_before_T=%d '
          'logged=%d' % (ok, total, rows, ended, started, len(spans)))
    errs = []
    if ok != 'ok':
        errs.append('integrity_check: %s' % ok)
    if total != ACCOUNTS * 1000:
        errs.append('sum %s, expected %d' % (total, ACCOUNTS * 1000))
    if a.boundary and across:
        errs.append('%d transaction(s) span T, e.g. %s' % (len(across),
                                                           across[0]))
    if a.boundary and rows != ended:
        errs.append('%d ledger rows, %d transactions ended before T'
                    % (rows, ended))
    if not a.boundary and not ended <= rows <= started:
        errs.append('%d ledger rows, not between %d and %d'
                    % (rows, ended, started))
    if ended == 0:
        errs.append('no transaction ended before T')
    for e in errs:
        print(e, file=sys.stderr)
    return 1 if errs else 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest='cmd', required=True)
    i = sub.add_parser('init')
    i.add_argument('db')
    w = sub.add_parser('write')
    w.add_argument('db')
    w.add_argument('log')
    w.add_argument('stop')
    w.add_argument('--txn')
    w.add_argument('--seed', type=int, default=0)
    c = sub.add_parser('check')
    c.add_argument('db')
    c.add_argument('t_ns', type=int)
    c.add_argument('logs', nargs='+')
    c.add_argument('--boundary', action='store_true')
    a = p.parse_args()
    return {'init': init, 'write': write, 'check': check}[a.cmd](a) or 0


if __name__ == '__main__':
    sys.exit(main())
