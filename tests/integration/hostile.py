"""A hostile local user against a swafs control socket (t-ctl-hostile.sh).

  hostile.py flood SOCK N      open N connections, print how many connected
                               and how many the daemon closed at once, then
                               hold them until killed
  hostile.py drip SOCK SECS    send "list" and then spaces, a byte every SECS
                               s, print the seconds until the daemon answered
                               or cut the connection ("open" after 30 s)
  hostile.py follow SOCK N     N "events 0 1" requests: print "OK BUSY"
                               counts of their first answers, hold them
                               until stdin closes
  hostile.py forge SOCK        answer every request on SOCK with "ok"
  hostile.py ask SOCK LINE     send one request line, print the whole answer
"""
import ctypes
import os
import resource
import select
import socket
import sys
import time


def connect(path):
    """Connect, waiting out a full accept queue (EAGAIN) for up to 5 s."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    for _ in range(500):
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            time.sleep(0.01)
    s.close()
    raise TimeoutError(path)


def flood(path, n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    held = []
    for _ in range(n):
        try:
            held.append(connect(path))
        except OSError:
            pass
    time.sleep(0.5)
    # a connection the daemon refused is readable (its answer, then EOF)
    closed = 0
    poll = select.poll()
    for s in held:
        poll.register(s, select.POLLIN)
    closed = len(poll.poll(0))
    print(len(held), closed, flush=True)
    while True:
        time.sleep(3600)


def drip(path, secs):
    s = connect(path)
    start = time.monotonic()
    data = b"list" + b" " * 100
    for k in range(len(data)):
        try:
            s.send(data[k:k + 1])
        except OSError:
            break
        r, _, _ = select.select([s], [], [], secs)
        if r:
            break   # an answer (why it cuts us) or the end of the connection
        if time.monotonic() - start > 30:
            print("open", flush=True)
            return
    print("%.1f" % (time.monotonic() - start), flush=True)


def follow(path, n):
    held, ok, busy = [], 0, 0
    for _ in range(n):
        s = connect(path)
        s.sendall(b"events 0 1\n")
        line = s.makefile("rb").readline()
        if line.startswith(b"ok"):
            ok += 1
        elif line.startswith(b"err 1 busy"):
            busy += 1
        held.append(s)
    print(ok, busy, flush=True)
    sys.stdin.read()


def forge(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    os.chmod(path, 0o666)
    s.listen(16)
    print("listening", flush=True)
    while True:
        c, _ = s.accept()
        c.makefile("rb").readline()
        c.sendall(b"ok pause_us=1\n")
        c.close()


if __name__ == "__main__":
    # die with the test that started us (PR_SET_PDEATHSIG, SIGKILL)
    ctypes.CDLL(None).prctl(1, 9)
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "flood":
        flood(path, int(sys.argv[3]))
    elif cmd == "drip":
        drip(path, float(sys.argv[3]))
    elif cmd == "follow":
        follow(path, int(sys.argv[3]))
    elif cmd == "ask":
        s = connect(path)
        s.sendall(sys.argv[3].encode() + b"\n")
        sys.stdout.write(s.makefile().read())
    else:
        forge(path)
