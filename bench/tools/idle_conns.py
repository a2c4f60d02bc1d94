#!/usr/bin/env python3
"""Open N keep-alive connections, send one request on each, read the answer, then idle.

Prints "ready N" once every connection has had its answer (or "failed K" for those that
did not), holds them open for --hold seconds so the caller can sample the server's
memory, then closes them and exits. Bounded: connect/read timeouts and a total deadline.
"""
import argparse
import socket
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--count", type=int, default=1000)
ap.add_argument("--path", default="/100b")
ap.add_argument("--hold", type=float, default=5.0)
ap.add_argument("--deadline", type=float, default=60.0)
args = ap.parse_args()

start = time.monotonic()
request = (
    f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\n"
    "User-Agent: strangler-bench-idle\r\n\r\n"
).encode()


def read_response(s):
    """Read one response with a Content-Length body; True when complete."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return False
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            return False
        body += chunk
    return head.startswith(b"HTTP/1.1 200")


socks, failed = [], 0
for _ in range(args.count):
    if time.monotonic() - start > args.deadline:
        failed += 1
        continue
    try:
        s = socket.create_connection(("127.0.0.1", args.port), timeout=5)
        s.sendall(request)
        if read_response(s):
            socks.append(s)
        else:
            failed += 1
            s.close()
    except OSError:
        failed += 1

print(f"ready {len(socks)} failed {failed}", flush=True)
time.sleep(max(0.0, min(args.hold, args.deadline - (time.monotonic() - start))))
# still open? a server that closed idle connections early shows up here
alive = 0
for s in socks:
    s.setblocking(False)
    try:
        alive += 0 if s.recv(1) == b"" else 1
    except BlockingIOError:
        alive += 1
    except OSError:
        pass
    s.close()
print(f"alive {alive}", flush=True)
sys.exit(0)
