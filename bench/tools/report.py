#!/usr/bin/env python3
"""Aggregate bench/run.sh's raw measurements into JSON and a markdown table of ratios.

Medians over the repeats; the JSON keeps every repeat. With --readme, the table replaces
what sits between `<!-- bench:start -->` and `<!-- bench:end -->` in README.md (nothing
else in the file is touched; without the markers the README is left alone).
"""
import argparse
import json
import re
import statistics
import sys
from collections import defaultdict

START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def summarise(rows):
    """(scenario, variant, target) -> {metric: median, ..., "reps": n, "errors": sum}"""
    groups = defaultdict(list)
    for r in rows:
        groups[(r.get("scenario"), str(r.get("variant")), r.get("target"))].append(r)
    out = {}
    for key, rs in groups.items():
        agg = {"reps": len(rs), "errors": sum(int(r.get("errors", 0) or 0) for r in rs)}
        metrics = {k for r in rs for k, v in r.items()
                   if isinstance(v, (int, float)) and k not in ("rep", "errors", "rate", "variant")}
        for m in metrics:
            vals = [r[m] for r in rs if isinstance(r.get(m), (int, float))]
            if vals:
                agg[m] = statistics.median(vals)
                if len(vals) > 1:
                    agg[m + "_min"], agg[m + "_max"] = min(vals), max(vals)
        failed = [r["failed"] for r in rs if r.get("failed")]
        if failed:
            agg["failed"] = failed[0]
        out[key] = agg
    return out


def num(v, digits=0):
    if v is None:
        return "—"
    if digits == 0:
        return f"{v:,.0f}".replace(",", " ")
    return f"{v:.{digits}f}"


def ratio(a, b):
    if a is None or b in (None, 0):
        return "—"
    return f"{a / b:.2f}"


def get(s, scenario, variant, target, metric):
    return s.get((scenario, variant, target), {}).get(metric)


def errs(s, scenario, variant, target):
    e = s.get((scenario, variant, target), {}).get("errors", 0)
    f = s.get((scenario, variant, target), {}).get("failed")
    if f:
        return f" ⚠ {f}"
    return f" ⚠ {e} errors" if e else ""


def tallies(s, key):
    c = s.get(key, {}).get("shadow_compared")
    k = s.get(key, {}).get("shadow_skipped")
    return "—" if c is None or k is None else f"{num(c)} / {num(k)}"


def split(s, key):
    u = s.get(key, {}).get("cpu_user_us_per_req")
    y = s.get(key, {}).get("cpu_sys_us_per_req")
    return "—" if u is None or y is None else f"{u:.1f} + {y:.1f}"


NAMES = {
    "direct": "direct (backend nginx)",
    "nginx": "nginx",
    "haproxy": "HAProxy",
    "strangler": "strangler",
}


def markdown(s, meta, skips):
    L = []
    dirty = " + uncommitted changes" if meta.get("strangler_dirty") == "yes" else ""
    L.append(
        f"**{meta['started'][:10]}**, {meta['cores']} cores ({meta.get('cpu_model', '?')}), "
        f"strangler `{meta.get('strangler_commit', '?')}`{dirty}; nginx {meta.get('nginx', '?')}, "
        f"HAProxy {meta.get('haproxy', '?')}, wrk {meta.get('wrk', '?')}, oha {meta.get('oha', '?')}."
    )
    L.append(
        f"The machine was shared with other builds: load average {meta['loadavg_start']} at the "
        f"start, {meta['loadavg_end']} at the end, so read the ratios as rough. "
        f"{meta['duration']} s per run, {meta['repeats']} interleaved repeats, median shown; "
        f"load generator on CPU 0, every server (the backend too) on CPU 1. "
        f"CPU = utime+stime of the proxy process ÷ requests."
        + (" **Quick run: not for comparison.**" if meta.get("quick") else "")
    )
    L.append("")

    if any(k[0] == "passthrough" for k in s):
        L.append(f"**1. Passthrough, keep-alive** (wrk, {meta['conns']} connections, closed loop)")
        L.append("")
        L.append("| response | target | req/s | ÷ direct | ÷ nginx | proxy CPU µs/req | ÷ nginx | of it user + sys | backend CPU µs/req |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for variant, label in (("100b", "100 B"), ("64k", "64 KiB")):
            d = get(s, "passthrough", variant, "direct", "rps")
            n = get(s, "passthrough", variant, "nginx", "rps")
            nc = get(s, "passthrough", variant, "nginx", "cpu_us_per_req")
            for t in ("direct", "nginx", "haproxy", "strangler"):
                if ("passthrough", variant, t) not in s:
                    continue
                r = get(s, "passthrough", variant, t, "rps")
                c = get(s, "passthrough", variant, t, "cpu_us_per_req")
                b = get(s, "passthrough", variant, t, "backend_cpu_us_per_req")
                L.append(f"| {label} | {NAMES[t]}{errs(s, 'passthrough', variant, t)} | {num(r)} | "
                         f"{ratio(r, d)} | {ratio(r, n)} | {num(c, 1)} | {ratio(c, nc)} | "
                         f"{split(s, ('passthrough', variant, t))} | {num(b, 1)} |")
        L.append("")

    if any(k[0] == "fixed_rate" for k in s):
        L.append(f"**2. Fixed rate {meta['rate']} req/s** (oha, {meta['conns']} connections, "
                 "latency from the scheduled send time), 100 B")
        L.append("")
        L.append("| target | p50 ms | p99 ms | added p50 µs | added p99 µs | added p99 ÷ nginx's | proxy CPU µs/req |")
        L.append("|---|---:|---:|---:|---:|---:|---:|")
        d50 = get(s, "fixed_rate", "100b", "direct", "p50_ms")
        d99 = get(s, "fixed_rate", "100b", "direct", "p99_ms")
        n99 = get(s, "fixed_rate", "100b", "nginx", "p99_ms")
        nadd = (n99 - d99) * 1000 if n99 is not None and d99 is not None else None
        for t in ("direct", "nginx", "haproxy", "strangler"):
            if ("fixed_rate", "100b", t) not in s:
                continue
            p50 = get(s, "fixed_rate", "100b", t, "p50_ms")
            p99 = get(s, "fixed_rate", "100b", t, "p99_ms")
            a50 = (p50 - d50) * 1000 if None not in (p50, d50) else None
            a99 = (p99 - d99) * 1000 if None not in (p99, d99) else None
            c = get(s, "fixed_rate", "100b", t, "cpu_us_per_req")
            L.append(f"| {NAMES[t]}{errs(s, 'fixed_rate', '100b', t)} | {num(p50, 3)} | {num(p99, 3)} | "
                     f"{num(a50)} | {num(a99)} | "
                     f"{ratio(a99, nadd) if t not in ('direct', 'nginx') and nadd and nadd > 0 else '—'} | "
                     f"{num(c, 1)} |")
        L.append("")

    if any(k[0] == "shadow" for k in s):
        L.append("**3. Shadow: every request mirrored to a second backend** (closed loop, 100 B)")
        L.append("")
        L.append("| proxy | CPU µs/req off | CPU µs/req on | on ÷ off | on ÷ nginx mirror | mirrored share | req/s off | req/s on |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        nm = get(s, "shadow", "100b", "nginx-mirror", "cpu_us_per_req")
        for off, on, label in (("nginx", "nginx-mirror", "nginx (`mirror`)"),
                               ("strangler", "strangler-shadow", "strangler (`mode = \"shadow\"`)")):
            c0 = get(s, "shadow", "100b", off, "cpu_us_per_req")
            c1 = get(s, "shadow", "100b", on, "cpu_us_per_req")
            share = get(s, "shadow", "100b", on, "mirrored_share")
            L.append(f"| {label}{errs(s, 'shadow', '100b', on)} | {num(c0, 1)} | {num(c1, 1)} | "
                     f"{ratio(c1, c0)} | {ratio(c1, nm)} | "
                     f"{'—' if share is None else f'{share:.0%}'} | "
                     f"{num(get(s, 'shadow', '100b', off, 'rps'))} | {num(get(s, 'shadow', '100b', on, 'rps'))} |")
        L.append("")
        L.append("Mirrored share = requests the candidate received ÷ client requests; below 100 % the "
                 "proxy skipped copies (strangler: bounded queue full), which makes its CPU per "
                 "request look cheaper than mirroring everything would be.")
        L.append("")

    if any(k[0] == "hung_shadow" for k in s):
        L.append(f"**4. Hung shadow candidate** (accepts, never answers; {meta['rate']} req/s, 100 B)")
        L.append("")
        L.append("| strangler | p50 ms | p99 ms | p99 ÷ no shadow | proxy CPU µs/req | copies compared / skipped |")
        L.append("|---|---:|---:|---:|---:|---:|")
        base = get(s, "hung_shadow", "100b", "strangler", "p99_ms")
        for t, label in (("strangler", "no shadow"), ("strangler-shadow-hung", "shadow to a hung candidate")):
            p99 = get(s, "hung_shadow", "100b", t, "p99_ms")
            L.append(f"| {label}{errs(s, 'hung_shadow', '100b', t)} | "
                     f"{num(get(s, 'hung_shadow', '100b', t, 'p50_ms'), 3)} | {num(p99, 3)} | "
                     f"{ratio(p99, base)} | {num(get(s, 'hung_shadow', '100b', t, 'cpu_us_per_req'), 1)} | "
                     f"{tallies(s, ('hung_shadow', '100b', t))} |")
        L.append("")

    idle = [k for k in s if k[0] == "idle_conns"]
    if idle:
        n_idle = idle[0][1]
        L.append(f"**5. {n_idle} idle keep-alive connections** (each sent one request, then idles; "
                 "RSS of the proxy's processes)")
        L.append("")
        L.append("| target | RSS before MiB | RSS with them MiB | ÷ nginx | KiB per connection | still open after 4 s |")
        L.append("|---|---:|---:|---:|---:|---:|")

        def per_conn(t):
            b = get(s, "idle_conns", n_idle, t, "rss_before_kib")
            w = get(s, "idle_conns", n_idle, t, "rss_with_kib")
            o = get(s, "idle_conns", n_idle, t, "opened")
            return None if None in (b, w) or not o else (w - b) / o

        nw = get(s, "idle_conns", n_idle, "nginx", "rss_with_kib")
        for t in ("direct", "nginx", "haproxy", "strangler"):
            if ("idle_conns", n_idle, t) not in s:
                continue
            b = get(s, "idle_conns", n_idle, t, "rss_before_kib")
            w = get(s, "idle_conns", n_idle, t, "rss_with_kib")
            o = get(s, "idle_conns", n_idle, t, "opened")
            a = get(s, "idle_conns", n_idle, t, "alive_after_hold")
            L.append(f"| {NAMES[t]} | {num(b / 1024 if b else None, 1)} | {num(w / 1024 if w else None, 1)} | "
                     f"{ratio(w, nw)} | {num(per_conn(t), 1)} | {num(a)} of {num(o)} |")
        L.append("")

    bus = [k for k in s if k[0] == "bus"]
    bus_skips = [x for x in skips if x.startswith("bus")]
    if bus or bus_skips:
        L.append("**6. Every exchange published to the bus vs publishing off** (closed loop, 100 B)")
        L.append("")
        if bus:
            L.append("| bus | req/s | ÷ off | CPU µs/req | ÷ off |")
            L.append("|---|---:|---:|---:|---:|")
            r0 = get(s, "bus", "100b", "strangler", "rps")
            c0 = get(s, "bus", "100b", "strangler", "cpu_us_per_req")
            for t in sorted({k[2] for k in bus}, key=lambda t: (t != "strangler", t)):
                r = get(s, "bus", "100b", t, "rps")
                c = get(s, "bus", "100b", t, "cpu_us_per_req")
                label = "off" if t == "strangler" else t.replace("strangler-bus-", "")
                L.append(f"| {label}{errs(s, 'bus', '100b', t)} | {num(r)} | {ratio(r, r0)} | "
                         f"{num(c, 1)} | {ratio(c, c0)} |")
            L.append("")
        for x in bus_skips:
            L.append(f"- {x}")
        if bus_skips:
            L.append("")
    other = [x for x in skips if not x.startswith("bus")]
    for x in other:
        L.append(f"- {x}")
    return "\n".join(L).rstrip() + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--markdown")
    ap.add_argument("--readme")
    ap.add_argument("--skips")
    ap.add_argument("--versions")
    ap.add_argument("--started", required=True)
    ap.add_argument("--loadavg-start", required=True)
    ap.add_argument("--loadavg-end", required=True)
    ap.add_argument("--cores", type=int, required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--repeats", type=int, required=True)
    ap.add_argument("--rate", type=int, required=True)
    ap.add_argument("--conns", type=int, required=True)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()

    rows = load(a.raw)
    skips = []
    if a.skips:
        skips = [x.strip() for x in open(a.skips) if x.strip()]
    meta = {
        "started": a.started,
        "cores": a.cores,
        "loadavg_start": a.loadavg_start,
        "loadavg_end": a.loadavg_end,
        "machine_shared": True,
        "duration": int(a.duration) if a.duration == int(a.duration) else a.duration,
        "repeats": a.repeats,
        "rate": a.rate,
        "conns": a.conns,
        "quick": a.quick,
    }
    if a.versions:
        for line in open(a.versions):
            k, _, v = line.strip().partition("=")
            if k:
                meta[k] = v
    s = summarise(rows)
    md = markdown(s, meta, skips)
    doc = {
        "meta": meta,
        "skipped": skips,
        "summary": [dict(scenario=k[0], variant=k[1], target=k[2], **v) for k, v in sorted(s.items())],
        "runs": rows,
    }
    with open(a.json, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(md)
    print(f"bench: wrote {a.json}", file=sys.stderr)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write("# strangler benchmarks: latest run\n\n")
            f.write("Made by `bench/run.sh`; raw numbers in the JSON file of the same run.\n\n")
            f.write(md)
        print(f"bench: wrote {a.markdown}", file=sys.stderr)
    if a.readme:
        text = open(a.readme).read()
        pat = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
        if not pat.search(text):
            print(f"bench: no {START} … {END} markers in {a.readme}; README left alone", file=sys.stderr)
        else:
            text = pat.sub(lambda _: f"{START}\n{md}{END}", text, count=1)
            with open(a.readme, "w") as f:
                f.write(text)
            print(f"bench: updated the Performance section of {a.readme}", file=sys.stderr)


if __name__ == "__main__":
    main()
