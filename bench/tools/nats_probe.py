#!/usr/bin/env python3
"""Count NATS messages whose payload contains a marker, for --seconds, on subject '>'
(or, with --delete-stream NAME, delete the bench's JetStream stream).

Plain NATS protocol over a socket (no client library): JetStream publishes are ordinary
messages, so a core subscriber sees them. Prints the count. 127.0.0.1 only, bounded.
"""
import argparse
import socket
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, default=4222)
ap.add_argument("--marker")
ap.add_argument("--delete-stream", help="delete this JetStream stream instead, then exit")
ap.add_argument("--seconds", type=float, default=3.0)
ap.add_argument("--ready-file", help="touched once subscribed")
args = ap.parse_args()

if args.delete_stream:
    # JetStream API: a request on $JS.API.STREAM.DELETE.<name>; print the reply
    s = socket.create_connection(("127.0.0.1", args.port), timeout=2)
    s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB _INBOX.benchdel 1\r\n'
              + f"PUB $JS.API.STREAM.DELETE.{args.delete_stream} _INBOX.benchdel 0\r\n\r\n".encode()
              + b"PING\r\n")
    reply, deadline = b"", time.monotonic() + 3
    while b"MSG _INBOX.benchdel" not in reply and time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        reply += chunk
    s.close()
    print(reply.decode(errors="replace").strip())
    raise SystemExit(0)
if not args.marker:
    ap.error("--marker is required")

marker = args.marker.encode()
count = 0
try:
    s = socket.create_connection(("127.0.0.1", args.port), timeout=2)
    s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB > 1\r\nPING\r\n')
    if args.ready_file:
        open(args.ready_file, "w").close()
    s.settimeout(0.2)
    buf = b""
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
        # the marker can only sit in payloads (our subjects never contain it)
        count += buf.count(marker)
        buf = buf[max(0, len(buf) - (len(marker) - 1)):] if len(marker) > 1 else b""
        if b"PING\r\n" in chunk:
            s.sendall(b"PONG\r\n")
    s.close()
except OSError:
    count = -1
print(count)
