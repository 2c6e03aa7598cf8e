"""Listen on a unix datagram socket and append each message to a file.

usage: sd_listen.py SOCKET OUT [--ready FILE]

Stands in for the service manager's NOTIFY_SOCKET or for syslog's
/dev/log. Each datagram becomes one line of OUT (flushed at once). The
socket is removed on SIGTERM or SIGINT, which end the listener; --ready
FILE is created once the socket is bound.
"""
import os
import signal
import socket
import sys


def main():
    path, out = sys.argv[1], sys.argv[2]
    ready = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--ready" else None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    os.chmod(path, 0o666)
    try:
        if ready:
            open(ready, "w").close()
        with open(out, "a", buffering=1) as f:
            while True:
                msg = sock.recv(65536).decode("utf-8", "replace")
                f.write(msg.replace("\n", "\\n") + "\n")
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main()
