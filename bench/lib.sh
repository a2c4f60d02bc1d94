# Shared by bench/run.sh and bench/profile.sh (sourced, not run): installing what the bench
# needs, a work directory, servers started on free 127.0.0.1 ports pinned to one CPU and
# stopped by PID on exit, and reading CPU time and memory from /proc.
#
# The sourcing script sets BENCH_DIR, ROOT, TOOLS, KEEP, SERVER_CPU and LOAD_CPU first.

export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in bench/tools

say() { printf '%s\n' "$*" >&2; }

# === install ================================================================================

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
APT_UPDATED=0
apt_install() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        $SUDO apt-get update -qq
        APT_UPDATED=1
    fi
    # RUNLEVEL=1: the packages' scripts must not start a system nginx/haproxy on port 80
    $SUDO env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# install_tools CMD...: installs each missing command (Debian package, or oha from crates.io)
install_tools() {
    local missing=() cmd
    for cmd in "$@" taskset curl python3; do
        command -v "$cmd" >/dev/null && continue
        case "$cmd" in
            oha) ;;
            taskset) missing+=(util-linux) ;;
            perf) missing+=(linux-perf) ;;
            callgrind_annotate) missing+=(valgrind) ;;
            *) missing+=("$cmd") ;;
        esac
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "bench: installing ${missing[*]} from Debian"
        apt_install "${missing[@]}"
    fi
    # Fixed-rate load: Debian has no wrk2 (bookworm: `apt-cache policy wrk2` has no
    # candidate), so oha from crates.io, built once and cached in ~/.cargo/bin.
    export PATH="$HOME/.cargo/bin:$PATH"
    case " $* " in
        *" oha "*)
            if ! command -v oha >/dev/null; then
                say "bench: installing oha (cargo install oha --locked; a few minutes, once)"
                cargo install oha --locked >&2
            fi
            ;;
    esac
}

# build_strangler 0|1: sets STRANGLER to the release binary (built when asked)
build_strangler() {
    if [ "$1" -eq 1 ] && [ -z "${STRANGLER_BIN:-}" ]; then
        say "bench: cargo build --release -p strangler"
        (cd "$ROOT" && cargo build --release -p strangler >&2)
    fi
    STRANGLER="${STRANGLER_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/strangler}"
    [ -x "$STRANGLER" ] || { say "bench: no strangler binary at $STRANGLER"; exit 1; }
}

# === work directory, servers, cleanup =======================================================

PIDS=()

setup_work() {
    WORK="$(mktemp -d /tmp/strangler-bench.XXXXXX)"
    chmod 755 "$WORK"      # nginx workers run as an unprivileged user and read the payloads
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true   # 1000 idle connections: ~2000 descriptors
    CLK_TCK=$(getconf CLK_TCK)
}

cleanup() {
    local pid
    for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [ "${KEEP:-0}" -eq 1 ]; then say "bench: work directory kept: $WORK"; else rm -rf "$WORK"; fi
}

# start NAME CMD...: runs CMD pinned to the server CPU, logs to $WORK/NAME.log, sets PID_NAME
start() {
    local name="$1"; shift
    taskset -c "$SERVER_CPU" "$@" >"$WORK/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    eval "PID_${name//-/_}=$pid"
}

# start_unpinned NAME CMD...: like start, on any CPU (a broker, as the shared NATS server)
start_unpinned() {
    local name="$1"; shift
    "$@" >"$WORK/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    eval "PID_${name//-/_}=$pid"
}

# stop PID: SIGTERM, up to 5 s grace, then SIGKILL
stop() {
    local pid="$1" p
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local keep=()
    for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    PIDS=("${keep[@]+"${keep[@]}"}")
}

# wait_http URL NAME [TRIES]: until the URL answers (TRIES × 0.1 s, default 10 s)
wait_http() {
    for _ in $(seq "${3:-100}"); do
        curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    say "bench: $2 did not come up at $1; its log:"
    tail -20 "$WORK/$2.log" >&2 || true
    exit 1
}

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    say "bench: nothing listens on port $1"
    exit 1
}

# the process and its direct children (nginx: master + worker)
family() { echo "$1" $(pgrep -P "$1" || true); }

# cpu_ticks PID: "USER SYS" — utime and stime of the process family in clock ticks (all threads)
cpu_ticks() {
    local u=0 s=0 p t
    for p in $(family "$1"); do
        t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12, $13}') || t="0 0"
        set -- $t
        u=$((u + ${1:-0})); s=$((s + ${2:-0}))
    done
    echo "$u $s"
}

# rss_kib PID: VmRSS of the process family
rss_kib() {
    local total=0 p r
    for p in $(family "$1"); do
        r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || r=0
        total=$((total + ${r:-0}))
    done
    echo "$total"
}

count_lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

pick_ports() {
    read -r -a PORTS <<<"$(python3 "$TOOLS/freeports.py" 12 | tr '\n' ' ')"
    P_BACKEND=${PORTS[0]}
    P_CANDIDATE=${PORTS[1]}
    P_NGINX=${PORTS[2]}
    P_NGINX_MIRROR=${PORTS[3]}
    P_HAPROXY=${PORTS[4]}
    P_HANG=${PORTS[5]}
    P_STRANGLER=${PORTS[6]}
    P_ADMIN=${PORTS[7]}
    P_STRANGLER_B=${PORTS[8]}
    P_ADMIN_B=${PORTS[9]}
    P_REDIS=${PORTS[10]}
    P_KAFKA=${PORTS[11]}
}

# === backend: nginx serving fixed files (also "direct") =====================================

nginx_common() {   # NAME: the parts every nginx of ours shares
    cat <<EOF
worker_processes 1;
daemon off;
pid $WORK/$1.pid;
error_log $WORK/$1-error.log warn;
events { worker_connections 8192; }
worker_rlimit_nofile 16384;
EOF
}

nginx_http_common() {
    cat <<EOF
    access_log off;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    default_type application/octet-stream;
EOF
}

# start_backend: nginx with /100b and /64k on P_BACKEND, and the same on P_CANDIDATE (the
# shadow candidate, which logs a line per request so the copies can be counted)
start_backend() {
    mkdir -p "$WORK/www" "$WORK/tmp"
    head -c 100 /dev/zero | tr '\0' 'a' >"$WORK/www/100b"
    head -c 65536 /dev/zero | tr '\0' 'b' >"$WORK/www/64k"
    chmod -R a+rX "$WORK/www"
    {
        nginx_common backend
        echo "http {"
        nginx_http_common
        cat <<EOF
    open_file_cache max=16;
    server { listen 127.0.0.1:$P_BACKEND; root $WORK/www; }
    server {
        listen 127.0.0.1:$P_CANDIDATE; root $WORK/www;
        access_log $WORK/candidate-access.log combined buffer=64k flush=1s;
    }
}
EOF
    } >"$WORK/backend.conf"
    start backend nginx -c "$WORK/backend.conf" -e "$WORK/backend-error.log"
    wait_http "http://127.0.0.1:$P_BACKEND/100b" backend
    wait_http "http://127.0.0.1:$P_CANDIDATE/100b" backend
}

# === strangler ==============================================================================

# strangler_conf MODE CANDIDATE_PORT [BUS_TOML [LISTEN_PORT [ADMIN_PORT]]]: one route, `/*`
strangler_conf() {
    local mode="$1" cand="$2" bus="${3:-}" listen="${4:-$P_STRANGLER}" admin="${5:-$P_ADMIN}"
    cat <<EOF
default_upstream = "backend"

[listen]
address = "127.0.0.1:$listen"

[admin]
address = "127.0.0.1:$admin"

[upstreams.backend]
url = "http://127.0.0.1:$P_BACKEND"

[upstreams.candidate]
url = "http://127.0.0.1:$cand"

[[routes]]
id = "all"
match = { path = "/*" }
mode = "$mode"
extracted = "candidate"
EOF
    if [ "$mode" = shadow ]; then
        # every request mirrored; no second legacy call, so the work matches nginx mirror
        printf '\n[routes.shadow]\nsample = 1.0\nbaseline = 0.0\n'
    fi
    printf '\n[log]\nlevel = "warn"\n'
    [ -n "$bus" ] && printf '\n%s\n' "$bus"
    return 0
}

# start_strangler NAME CONFIG_TEXT [LISTEN_PORT [CMD_PREFIX...]]
start_strangler() {
    local name="$1" conf="$2" listen="${3:-$P_STRANGLER}"
    shift 3 2>/dev/null || shift $#
    printf '%s\n' "$conf" >"$WORK/$name.toml"
    start "$name" "$@" "$STRANGLER" run --config "$WORK/$name.toml"
    wait_http "http://127.0.0.1:$listen/100b" "$name"
}
