#!/usr/bin/env python3
"""A backend that accepts connections, reads what it is sent, and never answers.

Used as a hung shadow candidate. Listens on 127.0.0.1 only and exits by itself
after --max-seconds (the bench also stops it by PID).
"""
import argparse
import selectors
import socket
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--max-seconds", type=float, default=600.0)
args = ap.parse_args()

sel = selectors.DefaultSelector()
lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind(("127.0.0.1", args.port))
lsock.listen(4096)
lsock.setblocking(False)
sel.register(lsock, selectors.EVENT_READ)

deadline = time.monotonic() + args.max_seconds
while time.monotonic() < deadline:
    for key, _ in sel.select(timeout=0.5):
        if key.fileobj is lsock:
            try:
                conn, _ = lsock.accept()
            except OSError:
                continue
            conn.setblocking(False)
            sel.register(conn, selectors.EVENT_READ)
        else:
            try:
                data = key.fileobj.recv(65536)
            except OSError:
                data = b""
            if not data:  # peer gave up: forget it
                sel.unregister(key.fileobj)
                key.fileobj.close()
