#!/usr/bin/env bash
# Where strangler spends its CPU under load: perf (software cpu-clock samples) or callgrind.
#
#   bench/profile.sh [--shadow] [--bus log] [--size 100b|64k] [--seconds S] [--callgrind]
#                    [--no-build] [--keep]
#
# Starts the backend nginx and strangler (one route `/*`, mode legacy, or shadow to a second
# backend with --shadow; every exchange published to an embedded log bus with --bus log)
# on 127.0.0.1, pinned to CPU 1, drives them with wrk pinned to CPU 0
# for S seconds (default 10) and prints the hottest functions, self and inclusive. perf uses
# the cpu-clock software event, which works where hardware counters are "not supported".
# --callgrind runs strangler under valgrind instead (instruction counts, repeatable whatever
# else the machine does; ~50x slower, so a light load of 4 connections).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
TOOLS="$BENCH_DIR/tools"
KEEP=0
BUILD=1
LOAD_CPU=0
SERVER_CPU=1
SECS=10
MODE=legacy
SIZE=100b
TOOL=perf
BUS=""

while [ $# -gt 0 ]; do
    case "$1" in
        --shadow) MODE=shadow ;;
        --bus) BUS="$2"; shift ;;
        --size) SIZE="$2"; shift ;;
        --seconds) SECS="$2"; shift ;;
        --callgrind) TOOL=callgrind ;;
        --no-build) BUILD=0 ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "profile: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

if [ "$TOOL" = perf ]; then install_tools nginx wrk perf; else install_tools nginx wrk callgrind_annotate; fi
build_strangler "$BUILD"
setup_work
pick_ports
start_backend
case "$BUS" in
    "") bus_toml="" ;;
    log) bus_toml="$(printf '[bus]\nkind = "log"\npath = "%s"' "$WORK/events")" ;;
    *) say "profile: --bus takes log"; exit 2 ;;
esac
strangler_conf "$MODE" "$P_CANDIDATE" "$bus_toml" >"$WORK/strangler.toml"
url="http://127.0.0.1:$P_STRANGLER/$SIZE"

if [ "$TOOL" = perf ]; then
    start_strangler strangler "$(cat "$WORK/strangler.toml")"
    taskset -c "$LOAD_CPU" wrk -t1 -c50 -d1s "$url" >/dev/null 2>&1 || true   # warm the pools
    say "profile: perf record of strangler ($MODE${BUS:+, bus $BUS}, $SIZE) for ${SECS}s under wrk -c50"
    timeout -s INT $((SECS + 1)) perf record -e cpu-clock -F 499 --call-graph dwarf,8192 \
        -p "$PID_strangler" -o "$WORK/perf.data" >"$WORK/perf-record.log" 2>&1 &
    rec=$!
    sleep 0.5
    timeout $((SECS + 20)) taskset -c "$LOAD_CPU" wrk -t1 -c50 -d"${SECS}s" "$url" | grep -E 'requests in|Requests/sec' >&2 || true
    wait "$rec" || true
    say "profile: $(grep -o 'Captured.*' "$WORK/perf-record.log" || tail -1 "$WORK/perf-record.log")"
    # (|| true below: head closing the pipe early is not a failure)
    tidy() { grep -v '^#' | grep -v '^$' | cut -c1-160 | sed 's/ *$//'; }
    echo "== where the samples land (kernel = syscalls and the TCP stack) =="
    perf report -i "$WORK/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | tidy | head -8 || true
    echo
    echo "== self: hottest functions =="
    perf report -i "$WORK/perf.data" --no-children --fields overhead,sym --stdio -g none 2>/dev/null | tidy | head -40 || true
    echo
    echo "== inclusive (self + callees): strangler's own functions =="
    perf report -i "$WORK/perf.data" --children --sort symbol --stdio -g none 2>/dev/null | tidy |
        grep -E 'strangler::' | head -30 || true
else
    start strangler valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
        "$STRANGLER" run --config "$WORK/strangler.toml"
    wait_http "$url" strangler 600
    say "profile: callgrind of strangler ($MODE, $SIZE) for ${SECS}s under wrk -c4"
    timeout $((SECS + 20)) taskset -c "$LOAD_CPU" wrk -t1 -c4 -d"${SECS}s" "$url" | grep -E 'requests in|Requests/sec' >&2 || true
    # a graceful stop, so callgrind writes its file (stop() would SIGKILL after 5 s)
    kill -TERM "$PID_strangler"
    for _ in $(seq 600); do kill -0 "$PID_strangler" 2>/dev/null || break; sleep 0.1; done
    wait "$PID_strangler" 2>/dev/null || true
    echo "== self: hottest functions (instructions) =="
    callgrind_annotate --inclusive=no "$WORK/callgrind.out" 2>/dev/null | sed -n '1,60p' || true
    echo
    echo "== inclusive: strangler's own functions =="
    callgrind_annotate --inclusive=yes "$WORK/callgrind.out" 2>/dev/null | grep -E 'strangler::' | head -40 || true
fi
