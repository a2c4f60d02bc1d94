#!/usr/bin/env python3
"""Flip-to-applied latency across a fleet of three strangler instances (issue #11).

Starts three real `strangler run` processes on 127.0.0.1, each with its own folder and
routes.toml, sharing one new JetStream KV bucket on the NATS at --nats (default the shared
127.0.0.1:4222). Then, --flips times: PUT /admin/routes/thumbnail on instance 1 (canary at a
percent different from the last), timing from just before the PUT until each instance's
GET /admin/routes/thumbnail serves that mode and percent. Prints, as one JSON object,
p50/p90/p99/max of: applied by all three, applied by the two that did not take the PUT, and
the PUT's own answer time.

Measured by polling each instance's admin API, not by watching the KV: "applied" means the
instance serves the new routing table (mode and percent in the API answer are read from the
installed table), which is what an operator cares about; a KV watcher would only see the
write reach NATS, before each instance's watch, reload and table swap. Each instance is
polled by its own thread on its own keep-alive connection, started just before the PUT, so
an instance's time is late by at most one loopback GET; the revision is checked after (the
percent identifies the flip, the revision confirms it). The polling shares the two cores
with the instances and NATS, which over-states rather than under-states the latency.

Bounded: --flips flips (default 100), each given --flip-timeout seconds, the whole run
--time-limit seconds. Processes are stopped by PID (SIGTERM, then SIGKILL after 5 s); the
bucket and its -leader/-evidence/-instances neighbours are deleted at the end. Not run by CI
or the tests: this is a measurement, and asserts nothing.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

TOKEN = "bench-fleet"
ROUTE = "thumbnail"

ROUTES = """default_upstream = "legacy"

[listen]
address = "127.0.0.1:0"

[admin]
address = "127.0.0.1:0"
token_file = "token"

[log]
level = "warn"

[upstreams.legacy]
url = "http://127.0.0.1:1"

[upstreams.misc]
url = "http://127.0.0.1:2"

[[routes]]
id = "thumbnail"
match = {{ path = "/misc/thumbnail" }}
mode = "shadow"
extracted = "misc"

[cluster]
kind = "nats"
url = "{nats}"
bucket = "{bucket}"
instance = "{instance}"
"""


class Admin:
    """A keep-alive HTTP connection to one instance's admin API."""

    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=5)

    def call(self, method, path, body=None):
        headers = {"Authorization": f"Bearer {TOKEN}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")


class Poller(threading.Thread):
    """Polls one instance's route, on its own connection, from just before the flip until
    the installed table serves canary at `percent`; `seen` is when that answer arrived."""

    def __init__(self, admin, percent, deadline):
        super().__init__(daemon=True)
        self.admin, self.percent, self.deadline = admin, float(percent), deadline
        self.seen, self.view, self.polls = None, {}, 0

    def run(self):
        while time.perf_counter() < self.deadline:
            self.polls += 1
            view = self.admin.call("GET", f"/admin/routes/{ROUTE}")[1]
            # mode and percent are read from the installed routing table itself.
            if view.get("mode") == "canary" and view.get("canary_percent") == self.percent:
                self.seen, self.view = time.perf_counter(), view
                return


def start(binary, folder, nats, bucket, name, deadline):
    """Starts one instance; returns (process, admin address) once it printed its addresses."""
    os.makedirs(folder)
    with open(os.path.join(folder, "token"), "w") as f:
        f.write(TOKEN)
    config = os.path.join(folder, "routes.toml")
    with open(config, "w") as f:
        f.write(ROUTES.format(nats=nats, bucket=bucket, instance=name))
    log = open(os.path.join(folder, "stderr.log"), "w")
    proc = subprocess.Popen([binary, "run", "--config", config], cwd=folder,
                            stdout=subprocess.PIPE, stderr=log, text=True)
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        found = re.search(r"admin on http://(\S+)", line)
        if found:
            return proc, found.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit(f"{name} did not start (see {folder}/stderr.log): {line!r}")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def delete_streams(nats_port, bucket):
    """Deletes KV_<bucket> and its neighbours through the JetStream API (plain protocol)."""
    s = socket.create_connection(("127.0.0.1", nats_port), timeout=2)
    out = b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB _INBOX.fleetdel 1\r\n'
    names = [bucket] + [f"{bucket}-{aux}" for aux in ("leader", "evidence", "instances")]
    for name in names:
        out += f"PUB $JS.API.STREAM.DELETE.KV_{name} _INBOX.fleetdel 0\r\n\r\n".encode()
    s.sendall(out + b"PING\r\n")
    reply, deadline = b"", time.monotonic() + 3
    while reply.count(b"MSG _INBOX.fleetdel") < len(names) and time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        reply += chunk
    s.close()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(ms):
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 2),
            "p90_ms": round(percentile(ms, 90), 2), "p99_ms": round(percentile(ms, 99), 2),
            "max_ms": round(max(ms), 2), "min_ms": round(min(ms), 2)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="target/release/strangler")
    ap.add_argument("--nats", default="nats://127.0.0.1:4222")
    ap.add_argument("--flips", type=int, default=100)
    ap.add_argument("--flip-timeout", type=float, default=10.0)
    ap.add_argument("--time-limit", type=float, default=180.0)
    args = ap.parse_args()
    if not args.nats.startswith("nats://127.0.0.1:"):
        ap.error("--nats must be a loopback nats://127.0.0.1:PORT")
    nats_port = int(args.nats.rsplit(":", 1)[1])
    binary = os.path.abspath(args.bin)
    begun = time.monotonic()
    with open("/proc/loadavg") as f:
        load_start = f.read().split()[:3]
    limit = begun + args.time_limit
    bucket = f"bench_fleet_{os.getpid()}_{int(time.time())}"
    work = tempfile.mkdtemp(prefix="strangler-fleet-bench-")
    procs, admins, watchers = [], [], []
    applied, others, answered, polls = [], [], [], []
    try:
        for i in range(1, 4):
            proc, addr = start(binary, os.path.join(work, f"edge-{i}"), args.nats, bucket,
                               f"edge-{i}", time.monotonic() + 30)
            procs.append(proc)
            admins.append(Admin(addr))
            watchers.append(Admin(addr))
        # Every instance on the seeded revision before the first flip.
        for admin in admins:
            while admin.call("GET", f"/admin/routes/{ROUTE}")[1].get("revision") is None:
                if time.monotonic() > limit:
                    raise SystemExit("instances did not join the bucket in time")
                time.sleep(0.05)
        for n in range(args.flips):
            if time.monotonic() > limit:
                print(f"time limit reached after {n} flips", file=sys.stderr)
                break
            percent = 1 + n % 99
            pollers = [Poller(watchers[i], percent, time.perf_counter() + args.flip_timeout)
                       for i in range(3)]
            asked = time.perf_counter()
            for poller in pollers:
                poller.start()
            status, answer = admins[0].call("PUT", f"/admin/routes/{ROUTE}",
                                            {"mode": "canary", "percent": percent,
                                             "reason": "bench"})
            got_answer = time.perf_counter()
            for poller in pollers:
                poller.join()
            if status != 200:
                raise SystemExit(f"flip {n} refused: {status} {answer}")
            revision = answer["revisions"][ROUTE]
            late = [i for i, p in enumerate(pollers) if p.seen is None]
            if late:
                raise SystemExit(f"flip {n}: edge-{late[0] + 1} did not apply canary {percent}% "
                                 f"within {args.flip_timeout} s")
            # Percent identifies the flip; the revision confirms it was this one.
            for i, poller in enumerate(pollers):
                if (poller.view.get("revision") or 0) < revision:
                    raise SystemExit(f"flip {n}: edge-{i + 1} shows {poller.view}, "
                                     f"not revision {revision}")
            per_instance = [(p.seen - asked) * 1000 for p in pollers]
            applied.append(max(per_instance))
            others.append(max(per_instance[1:]))
            answered.append((got_answer - asked) * 1000)
            polls.append(max(p.polls for p in pollers))
    finally:
        for proc in procs:
            stop(proc)
        delete_streams(nats_port, bucket)
    if not applied:
        raise SystemExit(f"no flip measured (logs in {work})")
    shutil.rmtree(work, ignore_errors=True)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(json.dumps({
        "flip_to_applied_by_all_three": summary(applied),
        "flip_answered": summary(answered),
        "flip_to_applied_by_the_other_two": summary(others),
        "polls_per_instance_and_flip": {"p50": percentile(polls, 50), "max": max(polls)},
        "cpus": os.cpu_count(), "loadavg_at_start": load_start, "loadavg_at_end": load, "binary": binary,
        "nats": args.nats, "seconds": round(time.monotonic() - begun, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
