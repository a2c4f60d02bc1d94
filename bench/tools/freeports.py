#!/usr/bin/env python3
"""Print N distinct free TCP ports on 127.0.0.1, one per line.

All sockets are held open until every port is chosen, so the N ports differ; the
usual small race (another process taking a port before we bind it) remains.
"""
import socket
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1
held = []
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    held.append(s)
for s in held:
    print(s.getsockname()[1])
for s in held:
    s.close()
