#!/usr/bin/env python3
"""Turn one load-generator run into one JSON line appended to the raw results file.

    record.py wrk|oha|rss OUTPUT_FILE --raw RAW.jsonl [--cpu PROXY_TICKS] [--backend-cpu TICKS]
              [--clk-tck 100] [--candidate-requests N] key=value ...

wrk: its text output (run with --latency). oha: its --output-format json output.
rss: OUTPUT_FILE is ignored; pass rss_before_kib=… rss_with_kib=… as key=value.
--cpu/--backend-cpu take two "USER SYS" tick strings (utime and stime from /proc/PID/stat,
before and after the run); the difference divided by the number of requests gives CPU
microseconds per request, in total and split into user and system time.
"""
import argparse
import json
import re
import sys

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def wrk(text):
    out = {"tool": "wrk"}
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(\w+)", text, re.M)
    if m:
        out["requests"] = int(m.group(1))
        out["duration_s"] = float(m.group(2)) * (UNITS[m.group(3)] / 1000.0)
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if m:
        out["rps"] = float(m.group(1))
    for pct, val, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M):
        out[f"p{pct}_ms"] = float(val) * UNITS[unit]
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(g) for g in m.groups())
    out["errors"] = errors
    return out


def oha(text):
    data = json.loads(text)
    summary = data.get("summary", {})
    pct = data.get("latencyPercentiles", {})
    codes = data.get("statusCodeDistribution", {}) or {}
    ok = sum(int(n) for c, n in codes.items() if str(c).startswith("2"))
    total = sum(int(n) for n in codes.values())
    dist = data.get("errorDistribution", {}) or {}
    # requests still in flight when -z ran out are cut off by oha itself: not the server's fault
    aborted = sum(int(n) for e, n in dist.items() if "deadline" in e)
    errs = sum(int(n) for n in dist.values()) - aborted
    out = {
        "tool": "oha",
        "requests": total,
        "rps": summary.get("requestsPerSec"),
        "duration_s": summary.get("total"),
        "errors": (total - ok) + errs,
        "aborted_at_deadline": aborted,
    }
    for key in ("p50", "p90", "p99", "p99.9"):
        if pct.get(key) is not None:
            out[f"{key}_ms".replace(".", "_")] = pct[key] * 1000.0
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["wrk", "oha", "rss"])
    ap.add_argument("output")
    ap.add_argument("--raw", required=True)
    # "USER SYS" in clock ticks, before and after the run
    ap.add_argument("--cpu", nargs=2)
    ap.add_argument("--backend-cpu", nargs=2)
    ap.add_argument("--candidate-requests", type=int)
    ap.add_argument("--clk-tck", type=int, default=100)
    ap.add_argument("fields", nargs="*")
    a = ap.parse_intermixed_args()

    rec = {}
    for f in a.fields:
        k, _, v = f.partition("=")
        try:
            rec[k] = int(v)
        except ValueError:
            try:
                rec[k] = float(v)
            except ValueError:
                rec[k] = v
    try:
        if a.kind == "wrk":
            rec.update(wrk(open(a.output).read()))
        elif a.kind == "oha":
            rec.update(oha(open(a.output).read()))
    except (OSError, ValueError) as e:
        rec["failed"] = f"{a.kind} output unreadable: {e}"
    n = rec.get("requests") or 0
    us_per_tick = 1e6 / a.clk_tck
    def delta(pair):
        (u0, s0), (u1, s1) = (map(int, x.split()) for x in pair)
        return u1 - u0, s1 - s0

    if a.cpu is not None and n:
        user, system = delta(a.cpu)
        rec["cpu_us_per_req"] = (user + system) * us_per_tick / n
        rec["cpu_user_us_per_req"] = user * us_per_tick / n
        rec["cpu_sys_us_per_req"] = system * us_per_tick / n
    if a.backend_cpu is not None and n:
        user, system = delta(a.backend_cpu)
        rec["backend_cpu_us_per_req"] = (user + system) * us_per_tick / n
    if a.candidate_requests is not None and n:
        rec["candidate_requests"] = a.candidate_requests
        rec["mirrored_share"] = a.candidate_requests / n
    with open(a.raw, "a") as f:
        f.write(json.dumps(rec) + "\n")
    # a short line for the console
    keys = ("rps", "cpu_us_per_req", "p50_ms", "p99_ms", "mirrored_share", "rss_with_kib", "errors", "failed")
    shown = " ".join(f"{k}={rec[k]:.4g}" if isinstance(rec[k], float) else f"{k}={rec[k]}"
                     for k in keys if k in rec)
    print(f"    {rec.get('scenario')}/{rec.get('variant', '-')}/{rec.get('target')} "
          f"#{rec.get('rep')}: {shown}", file=sys.stderr)


if __name__ == "__main__":
    main()
