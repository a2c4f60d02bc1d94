#!/usr/bin/env bash
# strangler load benchmarks against direct, nginx and HAProxy, in one script.
#
#   bench/run.sh [--quick] [--repeats N] [--duration S] [--only 1,2,...] [--no-build] [--keep]
#
# Installs what it needs (idempotent), builds strangler in release, starts every server on
# 127.0.0.1 on free ports (pinned to CPU 1), drives them with a load generator pinned to
# CPU 0, interleaving the targets, and writes bench/results/<date>.json, bench/results/
# latest.md and the Performance section of README.md (full runs only; --quick prints and
# writes bench/results/<date>-quick.json). Every server is stopped by PID on exit; every
# load step is bounded in time. No timing is asserted anywhere: this is not a test.
# See bench/README.md for what each scenario measures.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
TOOLS="$BENCH_DIR/tools"

DURATION=10
REPEATS=3
QUICK=0
ONLY="1,2,3,4,5,6"
BUILD=1
KEEP=0
RATE=3000          # scenario 2 and 4 fixed rate, requests/s
CONNS=50           # load connections
IDLE_CONNS=1000    # scenario 5
LOAD_CPU=0
SERVER_CPU=1

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1; DURATION=3 ;;
        --repeats) REPEATS="$2"; shift ;;
        --duration) DURATION="$2"; shift ;;
        --only) ONLY="$2"; shift ;;
        --no-build) BUILD=0 ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

if [ "$(nproc)" -lt 2 ]; then
    say "bench: needs 2 CPUs (load generator on CPU $LOAD_CPU, servers on CPU $SERVER_CPU)"
    exit 1
fi

# oha drives the fixed-rate scenarios only; a run of the others does not need it
tools=(nginx haproxy wrk)
if want 2 || want 4; then tools+=(oha); fi
install_tools "${tools[@]}"
build_strangler "$BUILD"
setup_work
RAW="$WORK/raw.jsonl"
: >"$RAW"
pick_ports

LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
STARTED_AT="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "bench: work dir $WORK; load average at start: $LOADAVG_START"

# === the servers: backend, nginx and HAProxy as proxies ======================================

start_backend

{
    nginx_common nginx
    echo "http {"
    nginx_http_common
    cat <<EOF
    upstream backend { server 127.0.0.1:$P_BACKEND; keepalive 64; keepalive_requests 1000000; }
    upstream candidate { server 127.0.0.1:$P_CANDIDATE; keepalive 64; keepalive_requests 1000000; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_buffer_size 16k;
    proxy_buffers 8 16k;
    server { listen 127.0.0.1:$P_NGINX; location / { proxy_pass http://backend; } }
    server {
        listen 127.0.0.1:$P_NGINX_MIRROR;
        location / { mirror /__mirror; proxy_pass http://backend; }
        location = /__mirror { internal; proxy_pass http://candidate\$request_uri; }
    }
}
EOF
} >"$WORK/nginx.conf"

cat >"$WORK/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 8000
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 2s
    timeout client 60s
    timeout server 30s
    timeout http-keep-alive 60s
frontend fe
    bind 127.0.0.1:$P_HAPROXY
    default_backend be
backend be
    server s1 127.0.0.1:$P_BACKEND maxconn 1000
EOF

start nginx nginx -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log"
start haproxy haproxy -db -f "$WORK/haproxy.cfg"
wait_http "http://127.0.0.1:$P_NGINX/100b" nginx
wait_http "http://127.0.0.1:$P_HAPROXY/100b" haproxy

# === measuring ==============================================================================

# url TARGET PATH -> the URL for that target
url() {
    case "$1" in
        direct) echo "http://127.0.0.1:$P_BACKEND$2" ;;
        nginx) echo "http://127.0.0.1:$P_NGINX$2" ;;
        nginx-mirror) echo "http://127.0.0.1:$P_NGINX_MIRROR$2" ;;
        haproxy) echo "http://127.0.0.1:$P_HAPROXY$2" ;;
        strangler) echo "http://127.0.0.1:$P_STRANGLER$2" ;;
        strangler-*) echo "http://127.0.0.1:$P_STRANGLER_B$2" ;;   # the variant under test
    esac
}

# pid_of TARGET -> the proxy process to account CPU/RSS to ("direct": the backend itself)
pid_of() {
    case "$1" in
        direct) echo "$PID_backend" ;;
        nginx|nginx-mirror) echo "$PID_nginx" ;;
        haproxy) echo "$PID_haproxy" ;;
        strangler) echo "$PID_strangler" ;;
        strangler-*) echo "$PID_strangler_b" ;;
    esac
}

warm() { taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d1s "$1" >/dev/null 2>&1 || true; }

# closed SCENARIO VARIANT TARGET REP PATH: wrk closed loop, keep-alive
closed() {
    local scenario="$1" variant="$2" target="$3" rep="$4" path="$5"
    local pid u out c0 c1 b0 b1 m0 m1 s0 s1 extra
    pid=$(pid_of "$target"); u=$(url "$target" "$path")
    out="$WORK/out-$scenario-$variant-$target-$rep.txt"
    m0=$(count_lines "$WORK/candidate-access.log")
    s0=$(shadow_counts "$target")
    c0=$(cpu_ticks "$pid"); b0=$(cpu_ticks "$PID_backend")
    timeout $((DURATION + 20)) taskset -c "$LOAD_CPU" \
        wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$u" >"$out" 2>&1 || true
    c1=$(cpu_ticks "$pid"); b1=$(cpu_ticks "$PID_backend")
    if [ "$scenario" = shadow ]; then
        sleep 1.2   # the candidate's access log flushes every second
        m1=$(count_lines "$WORK/candidate-access.log")
    fi
    s1=$(shadow_counts "$target")
    extra=()
    [ "$target" != direct ] && extra+=(--cpu "$c0" "$c1")
    if [ "$scenario" = shadow ]; then extra+=(--candidate-requests $((m1 - m0))); fi
    python3 "$TOOLS/record.py" wrk "$out" --raw "$RAW" --clk-tck "$CLK_TCK" "${extra[@]}" \
        --backend-cpu "$b0" "$b1" $(shadow_fields "$target" "$s0" "$s1") \
        scenario="$scenario" variant="$variant" target="$target" rep="$rep" \
        threads="$(ls "/proc/$pid/task" | wc -l)"
}

# fixed SCENARIO VARIANT TARGET REP PATH: oha at $RATE req/s, latency measured from the
# scheduled send time (coordinated omission corrected)
fixed() {
    local scenario="$1" variant="$2" target="$3" rep="$4" path="$5"
    local pid u out c0 c1 s0 s1 proxy_cpu
    pid=$(pid_of "$target"); u=$(url "$target" "$path")
    out="$WORK/out-$scenario-$variant-$target-$rep.json"
    s0=$(shadow_counts "$target")
    c0=$(cpu_ticks "$pid")
    timeout $((DURATION + 20)) taskset -c "$LOAD_CPU" \
        oha -z "${DURATION}s" -q "$RATE" -c "$CONNS" --latency-correction --no-tui \
        --output-format json "$u" >"$out" 2>"$out.err" || true
    c1=$(cpu_ticks "$pid")
    s1=$(shadow_counts "$target")
    proxy_cpu=()
    [ "$target" != direct ] && proxy_cpu=(--cpu "$c0" "$c1")
    python3 "$TOOLS/record.py" oha "$out" --raw "$RAW" --clk-tck "$CLK_TCK" "${proxy_cpu[@]}" \
        $(shadow_fields "$target" "$s0" "$s1") scenario="$scenario" variant="$variant" target="$target" rep="$rep" rate="$RATE"
}

# shadow_counts TARGET: "COMPARED SKIPPED" from strangler's /admin/shadow (0 0 if none)
shadow_counts() {
    case "$1" in
        strangler-shadow*)
            { curl -fsS --max-time 2 "http://127.0.0.1:$P_ADMIN_B/admin/shadow" 2>/dev/null || true; } | python3 -c '
import json, sys
try:
    routes = json.load(sys.stdin).get("routes", [])
except ValueError:
    routes = []
print(sum(r.get("compared", 0) for r in routes),
      sum(sum(r.get("skipped", {}).values()) for r in routes))'
            ;;
        *) echo "0 0" ;;
    esac
}

# shadow_fields TARGET BEFORE AFTER: key=value fields for the record
shadow_fields() {
    case "$1" in
        strangler-shadow*)
            set -- $2 $3
            echo "shadow_compared=$(($3 - $1)) shadow_skipped=$(($4 - $2))"
            ;;
    esac
}

SKIPS=()
note_skip() { SKIPS+=("$1"); say "bench: $1"; }

# === 1. passthrough, keep-alive =============================================================

if want 1 || want 2; then
    start_strangler strangler "$(strangler_conf legacy "$P_CANDIDATE")"
fi

if want 1; then
    say "bench: 1. passthrough keep-alive, closed loop (wrk -c$CONNS, ${DURATION}s x $REPEATS)"
    for size in 100b 64k; do
        for t in direct nginx haproxy strangler; do warm "$(url $t /$size)"; done
        for rep in $(seq "$REPEATS"); do
            for t in direct nginx haproxy strangler; do
                closed passthrough "$size" "$t" "$rep" "/$size"
            done
        done
    done
fi

# === 2. fixed rate: added latency ===========================================================

if want 2; then
    say "bench: 2. fixed rate $RATE req/s (oha), latency"
    for rep in $(seq "$REPEATS"); do
        for t in direct nginx haproxy strangler; do
            fixed fixed_rate 100b "$t" "$rep" /100b
        done
    done
fi

if want 1 || want 2; then stop "$PID_strangler"; fi

# === 3. shadow on/off: CPU per request ======================================================

if want 3; then
    say "bench: 3. shadow (every request mirrored) vs off, closed loop"
    start_strangler strangler "$(strangler_conf legacy "$P_CANDIDATE")"
    start_strangler strangler_b "$(strangler_conf shadow "$P_CANDIDATE" "" "$P_STRANGLER_B" "$P_ADMIN_B")" \
        "$P_STRANGLER_B"
    for t in nginx nginx-mirror strangler strangler-shadow; do warm "$(url $t /100b)"; done
    for rep in $(seq "$REPEATS"); do
        for t in nginx nginx-mirror strangler strangler-shadow; do
            closed shadow 100b "$t" "$rep" /100b
        done
    done
    curl -fsS --max-time 2 "http://127.0.0.1:$P_ADMIN_B/admin/shadow" >"$WORK/shadow-tallies.json" 2>/dev/null || true
    stop "$PID_strangler_b"; stop "$PID_strangler"
fi

# === 4. hung shadow candidate: primary latency ==============================================

if want 4; then
    say "bench: 4. hung shadow candidate vs no shadow, $RATE req/s"
    start hang python3 "$TOOLS/hang.py" --port "$P_HANG" --max-seconds 900
    wait_port "$P_HANG"
    start_strangler strangler "$(strangler_conf legacy "$P_CANDIDATE")"
    start_strangler strangler_b "$(strangler_conf shadow "$P_HANG" "" "$P_STRANGLER_B" "$P_ADMIN_B")" \
        "$P_STRANGLER_B"
    for rep in $(seq "$REPEATS"); do
        fixed hung_shadow 100b strangler "$rep" /100b
        fixed hung_shadow 100b strangler-shadow-hung "$rep" /100b
    done
    curl -fsS --max-time 2 "http://127.0.0.1:$P_ADMIN_B/admin/shadow" >"$WORK/hung-tallies.json" 2>/dev/null || true
    stop "$PID_strangler_b"; stop "$PID_strangler"; stop "$PID_hang"
fi

# === 5. idle keep-alive connections: memory =================================================

if want 5; then
    say "bench: 5. $IDLE_CONNS idle keep-alive connections, RSS"
    for rep in $(seq "$REPEATS"); do
        # a fresh strangler each time, so memory kept from the last repeat's connections does
        # not hide the cost of the new ones (nginx and HAProxy preallocate and keep running)
        start_strangler strangler "$(strangler_conf legacy "$P_CANDIDATE")"
        for t in direct nginx haproxy strangler; do
            pid=$(pid_of "$t")
            warm "$(url "$t" /100b)"
            before=$(rss_kib "$pid")
            port=$(url "$t" / | sed 's/.*:\([0-9]*\)\/$/\1/')
            log="$WORK/idle-$t-$rep.log"
            : >"$log"
            timeout 90 taskset -c "$LOAD_CPU" python3 "$TOOLS/idle_conns.py" --port "$port" \
                --count "$IDLE_CONNS" --hold 4 --deadline 60 >"$log" 2>&1 &
            ipid=$!
            for _ in $(seq 600); do grep -q '^ready' "$log" && break; sleep 0.1; done
            sleep 1
            with=$(rss_kib "$pid")
            wait "$ipid" || true
            ready=$(awk '/^ready/ {print $2}' "$log"); failed=$(awk '/^ready/ {print $4}' "$log")
            alive=$(awk '/^alive/ {print $2}' "$log")
            python3 "$TOOLS/record.py" rss - --raw "$RAW" scenario=idle_conns variant="$IDLE_CONNS" \
                target="$t" rep="$rep" rss_before_kib="$before" rss_with_kib="$with" \
                opened="${ready:-0}" failed="${failed:-0}" alive_after_hold="${alive:-0}"
        done
        stop "$PID_strangler"
    done
fi

# === 6. bus publishing on/off ===============================================================

# bus_probe NAME BUS_TOML KIND: 0 when this build publishes exchanges to that bus
bus_probe() {
    local name="$1" bus="$2" kind="$3" conf marker n
    conf="$WORK/$name-check.toml"
    strangler_conf legacy "$P_CANDIDATE" "$bus" "$P_STRANGLER_B" "$P_ADMIN_B" >"$conf"
    if ! "$STRANGLER" check "$conf" >"$WORK/$name-check.log" 2>&1; then
        note_skip "bus: not available in this build (strangler check rejects [bus] kind = \"$kind\": $(head -1 "$WORK/$name-check.log"))"
        return 1
    fi
    start "$name" "$STRANGLER" run --config "$conf"
    local pid=$PID_strangler_b
    if ! (wait_http "http://127.0.0.1:$P_STRANGLER_B/100b" "$name") 2>/dev/null; then
        note_skip "bus: not available in this build (strangler did not start with [bus] kind = \"$kind\": $(tail -1 "$WORK/$name.log"))"
        stop "$pid"; return 1
    fi
    marker="bench$RANDOM$RANDOM"
    if [ "$kind" = nats ]; then
        python3 "$TOOLS/nats_probe.py" --marker "$marker" --seconds 4 --ready-file "$WORK/nats.ready" \
            >"$WORK/nats-probe.out" &
        local probe=$!
        for _ in $(seq 20); do [ -f "$WORK/nats.ready" ] && break; sleep 0.1; done
    fi
    for i in $(seq 20); do
        # kafka is read back with `events tail`, which prints the correlation id: mark it too
        local id=()
        if [ "$kind" = kafka ]; then id=(-H "x-request-id: $marker-$i"); fi
        curl -fsS -o /dev/null --max-time 2 "${id[@]}" "http://127.0.0.1:$P_STRANGLER_B/100b?$marker=$i" || true
    done
    n=0
    if [ "$kind" = log ]; then
        for _ in $(seq 30); do
            n=$(cat "$WORK/events-$name"/* 2>/dev/null | grep -c "$marker" || true)
            [ "${n:-0}" -gt 0 ] && break
            sleep 0.1
        done
    elif [ "$kind" = redis ]; then
        for _ in $(seq 30); do
            n=$(redis_dump | grep -c "$marker" || true)
            [ "${n:-0}" -gt 0 ] && break
            sleep 0.1
        done
    elif [ "$kind" = kafka ]; then
        # read back through the CLI (`events tail` reads every partition of the topic)
        for _ in $(seq 30); do
            n=$(timeout 20 "$STRANGLER" events tail --limit 100 --config "$conf" 2>/dev/null \
                | grep -c "$marker" || true)
            [ "${n:-0}" -gt 0 ] && break
            sleep 0.2
        done
    else
        wait "$probe" || true
        n=$(cat "$WORK/nats-probe.out" 2>/dev/null || echo 0)
    fi
    stop "$pid"
    if [ "${n:-0}" -le 0 ]; then
        note_skip "bus: not available in this build (no events appeared with [bus] kind = \"$kind\")"
        return 1
    fi
    say "bench: bus $kind publishes ($n events seen for 20 requests)"
    return 0
}

# redis_dump: every entry of the bench's Redis streams, one field per line
redis_dump() {
    local key
    for key in $(redis-cli -p "$P_REDIS" --scan --pattern "$REDIS_PREFIX:*" 2>/dev/null); do
        redis-cli -p "$P_REDIS" XRANGE "$key" - + 2>/dev/null
    done
}

if want 6; then
    say "bench: 6. every exchange published to the bus vs publishing off"
    buses=()
    log_bus="[bus]
kind = \"log\"
path = \"$WORK/events-strangler_b\""
    bus_probe strangler_b "$log_bus" log && buses+=(log)
    # a stream and subjects of our own on the shared server, deleted at the end
    NATS_STREAM="BENCH_$$_$RANDOM"
    nats_bus="[bus]
kind = \"nats\"
url = \"nats://127.0.0.1:4222\"
stream = \"$NATS_STREAM\"
subject_prefix = \"bench$$x$RANDOM\""
    if (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
        bus_probe strangler_b "$nats_bus" nats && buses+=(nats)
    else
        note_skip "bus: nats not measured (nothing listens on 127.0.0.1:4222)"
    fi
    # a redis-server of our own, like the shared NATS server not pinned to the servers' CPU;
    # no persistence, so the bus is measured and not its disk
    REDIS_PREFIX="bench$$x$RANDOM"
    redis_bus="[bus]
kind = \"redis\"
url = \"redis://127.0.0.1:$P_REDIS\"
key_prefix = \"$REDIS_PREFIX\""
    if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
        mkdir -p "$WORK/redis"
        start_unpinned redis redis-server --port "$P_REDIS" --bind 127.0.0.1 --save "" \
            --appendonly no --dir "$WORK/redis"
        wait_port "$P_REDIS"
        bus_probe strangler_b "$redis_bus" redis && buses+=(redis)
    else
        note_skip "bus: redis not measured (redis-server or redis-cli not installed)"
    fi
    # a Tansu broker of our own (Kafka protocol, memory storage), not pinned, like redis;
    # each run gets a fresh topic and spool, so no run starts with a backlog
    KAFKA_TOPIC="bench$$x$RANDOM"
    kafka_bus() {
        printf '[bus]\nkind = "kafka"\nbrokers = "127.0.0.1:%s"\ntopic = "%s"\nspool = "%s"\n' \
            "$P_KAFKA" "$KAFKA_TOPIC" "$WORK/spool-kafka"
    }
    if command -v tansu >/dev/null; then
        start_unpinned kafka tansu broker --listener-url "tcp://127.0.0.1:$P_KAFKA" \
            --advertised-listener-url "tcp://127.0.0.1:$P_KAFKA" --storage-engine memory://tansu/
        wait_port "$P_KAFKA"
        bus_probe strangler_b "$(kafka_bus)" kafka && buses+=(kafka)
    else
        note_skip "bus: kafka not measured (no tansu binary: cargo install tansu --locked --features dynostore --version 0.6.0)"
    fi
    if [ ${#buses[@]} -gt 0 ]; then
        start_strangler strangler "$(strangler_conf legacy "$P_CANDIDATE")"
        warm "http://127.0.0.1:$P_STRANGLER/100b"
        for rep in $(seq "$REPEATS"); do
            closed bus 100b strangler "$rep" /100b
            for b in "${buses[@]}"; do
                rm -rf "$WORK/events-strangler_b"
                # each redis run starts empty, so the server's memory stays bounded
                if [ "$b" = redis ]; then redis-cli -p "$P_REDIS" FLUSHALL >/dev/null; fi
                if [ "$b" = kafka ]; then KAFKA_TOPIC="bench$$x$RANDOM"; rm -rf "$WORK/spool-kafka"; fi
                case "$b" in
                    log) bt="$log_bus" ;;
                    nats) bt="$nats_bus" ;;
                    redis) bt="$redis_bus" ;;
                    kafka) bt="$(kafka_bus)" ;;
                esac
                start_strangler strangler_b "$(strangler_conf legacy "$P_CANDIDATE" "$bt" "$P_STRANGLER_B" "$P_ADMIN_B")" \
                    "$P_STRANGLER_B"
                warm "http://127.0.0.1:$P_STRANGLER_B/100b"
                closed bus 100b "strangler-bus-$b" "$rep" /100b
                stop "$PID_strangler_b"
            done
        done
        stop "$PID_strangler"
    fi
    if (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
        python3 "$TOOLS/nats_probe.py" --delete-stream "$NATS_STREAM" >/dev/null 2>&1 || true
    fi
    if [ -n "${PID_redis:-}" ]; then stop "$PID_redis"; fi
    if [ -n "${PID_kafka:-}" ]; then stop "$PID_kafka"; fi
fi

# === report =================================================================================

LOADAVG_END="$(cut -d' ' -f1-3 /proc/loadavg)"
say "bench: load average at end: $LOADAVG_END"
STAMP="$(date -u +%Y-%m-%d-%H%M)"
SUFFIX=""
[ "$QUICK" -eq 1 ] && SUFFIX="-quick"
skips_file="$WORK/skips.txt"
printf '%s\n' "${SKIPS[@]+"${SKIPS[@]}"}" >"$skips_file"
versions="$WORK/versions.txt"
{
    echo "nginx=$(nginx -v 2>&1 | sed 's/.*nginx\///')"
    echo "haproxy=$(haproxy -v 2>&1 | head -1 | awk '{print $3}')"
    echo "wrk=$(wrk -v 2>&1 | head -1 | awk '{print $2}')"
    echo "oha=$(if command -v oha >/dev/null; then oha --version 2>&1 | awk '{print $2}'; else echo none; fi)"
    echo "strangler_commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "strangler_dirty=$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo yes || echo no)"
    echo "cpu_model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "kernel=$(uname -r)"
} >"$versions"

report_args=(--raw "$RAW" --json "$BENCH_DIR/results/$STAMP$SUFFIX.json" --skips "$skips_file"
    --versions "$versions" --started "$STARTED_AT" --loadavg-start "$LOADAVG_START"
    --loadavg-end "$LOADAVG_END" --cores "$(nproc)" --duration "$DURATION" --repeats "$REPEATS"
    --rate "$RATE" --conns "$CONNS")
if [ "$QUICK" -eq 0 ]; then
    report_args+=(--markdown "$BENCH_DIR/results/latest.md" --readme "$ROOT/README.md")
else
    report_args+=(--quick)
fi
python3 "$TOOLS/report.py" "${report_args[@]}"

