#!/usr/bin/env bash
# Instruction-count gate of the real server binaries: user-space instructions per echoed
# message of each server under Callgrind, base build against head build. Exact enough to see
# a 1% change that no wall-clock measurement on a shared VM can (scripts/icount.sh does the
# same for wsport-core's hot paths alone).
#
#   scripts/icount-server.sh --base-bin DIR [--head-bin DIR] [--servers tokio,monoio-epoll]
#       [--scheme ws|wss] [--workload echo|connect] [--limit 1] [--repeat 3]
#       [--base-args "..."] [--head-args "..."] [--hog-head] [--out DIR]
#
# A measurement: the server (1 thread, on CPU 0) runs under `valgrind --tool=callgrind`;
# wsport-bench echoes 64 B messages on 100 connections (closed loop, its epoll engine, on
# CPU 1) for 1 s in one server process and for 4 s in another; the server's final counters
# line gives the messages each echoed. Instructions per message is the difference of the two
# processes' totals over the difference of their messages, so start-up, the 100 handshakes
# and shutdown (the same in both) cancel out: what is left is the cost of one more message.
# It moves by about 0.1% between repeats (how many messages a wake-up finds still varies).
# --scheme wss measures the same over TLS (the server's self-signed certificate, the client
# with --insecure): the 100 TLS handshakes cancel out with the rest of the start-up.
# --workload connect counts per upgrade instead: wsport-bench's connection storm (16 at once:
# connect, upgrade, close handshake, again), the upgrades being the client's "opened" count.
#
# The gate: the median of --repeat measurements a side; head fails (exit 3) when it exceeds
# base by more than --limit percent. --base-args/--head-args add server flags to one side
# (e.g. the hidden --debug-work-per-message N, a fixed cost in instructions); --hog-head runs
# a busy loop on the server's CPU during the head side's measurements: a pure timing change,
# which must not move the count. Needs valgrind (scripts/icount.sh installs it).
#
# --servers takes tokio, tokio-uring, monoio-uring, monoio-epoll and fastwebsockets (the
# reference server, which prints no counters: its messages are the client's echoes received).
#
# The io_uring servers: tokio-uring runs under Callgrind; monoio's io_uring driver stalled
# under valgrind 3.19 here (no connection accepted), so a server that echoes nothing is
# reported "unavailable" rather than counted.
set -euo pipefail
cd "$(dirname "$0")/.."

base_bin=""
head_bin="target/release"
servers="tokio,monoio-epoll"
limit="1"
repeat=3
base_args=""
head_args=""
hog_head=0
out="target/icount-server"
scheme="ws"
workload="echo"
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --base-bin) base_bin="$2"; shift ;;
        --head-bin) head_bin="$2"; shift ;;
        --servers) servers="$2"; shift ;;
        --scheme) scheme="$2"; shift ;;
        --workload) workload="$2"; shift ;;
        --limit) limit="$2"; shift ;;
        --repeat) repeat="$2"; shift ;;
        --base-args) base_args="$2"; shift ;;
        --head-args) head_args="$2"; shift ;;
        --hog-head) hog_head=1 ;;
        --out) out="$2"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "icount-server.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$base_bin" ] || { echo "icount-server.sh: --base-bin DIR is required" >&2; exit 2; }
case "$scheme" in
    ws) tls_flags="" ;;
    wss) tls_flags="--insecure" ;;
    *) echo "icount-server.sh: --scheme is ws or wss, not '$scheme'" >&2; exit 2 ;;
esac
case "$workload" in
    echo) load=(echo -c 100 --size 64) per="msg" ;;
    connect) load=(connect -c 16) per="upgrade" ;;
    *) echo "icount-server.sh: --workload is echo or connect, not '$workload'" >&2; exit 2 ;;
esac
command -v valgrind > /dev/null || { echo "icount-server.sh: needs valgrind (scripts/icount.sh installs it)" >&2; exit 1; }
mkdir -p "$out"
client=target/release/wsport-bench

server_cmd() {
    case "$2" in
        tokio) echo "$1/wsport-tokio" ;;
        tokio-uring) echo "$1/wsport-tokio-uring" ;;
        monoio-uring) echo "$1/wsport-monoio --driver uring" ;;
        monoio-epoll) echo "$1/wsport-monoio --driver epoll" ;;
        fastwebsockets) echo "$1/wsport-ref-fastwebsockets" ;;
        *) echo "icount-server.sh: unknown server '$2'" >&2; exit 2 ;;
    esac
}

# One server process under Callgrind, echoing for $4: prints "instructions messages".
# $1 bin dir, $2 server, $3 extra server flags, $5 file prefix.
count_once() {
    local cmd pid url ir msgs
    cmd="$(server_cmd "$1" "$2") --listen $scheme://127.0.0.1:0 --threads 1 --no-pin $3"
    # shellcheck disable=SC2086
    taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$5.callgrind" $cmd \
        > "$5.out" 2> "$5.err" &
    pid=$!
    for _ in $(seq 1 200); do
        grep -q "^listening $scheme://" "$5.out" 2> /dev/null && break
        kill -0 "$pid" 2> /dev/null || break
        sleep 0.1
    done
    url=$(grep -o -m1 "$scheme://127.0.0.1:[0-9]*" "$5.out" || true)
    if [ -z "$url" ]; then
        kill "$pid" 2> /dev/null || true
        wait "$pid" 2> /dev/null || true
        echo "unavailable: $(grep -v '^==' "$5.err" | grep -m1 . || echo 'did not start')"
        return
    fi
    # shellcheck disable=SC2086
    timeout 60 taskset -c 1 "$client" "${load[@]}" --url "$url/" --duration "$4" \
        --warmup 0s --engine epoll -q $tls_flags > "$5.client" 2>&1 || true
    kill -TERM "$pid"
    # Callgrind writes its totals on the way out; a server that does not stop is killed.
    timeout 30 tail --pid="$pid" -f /dev/null || kill -KILL "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    ir=$(awk '/^summary:/ {print $2}' "$5.callgrind" 2> /dev/null || true)
    if [ "$workload" = connect ]; then
        msgs=$(grep -o 'opened *[0-9,]*' "$5.client" | tail -1 | tr -dc '0-9')
    else
        msgs=$(grep -o '"messages_out":[0-9]*' "$5.out" | tail -1 | cut -d: -f2)
    fi
    if [ -z "$msgs" ]; then
        # A reference server prints no counters: the client's count of echoes received.
        msgs=$(grep -o 'received [0-9,]*' "$5.client" | tail -1 | tr -dc '0-9')
    fi
    if [ -z "$ir" ] || [ "${msgs:-0}" -eq 0 ]; then
        echo "unavailable: no messages echoed under Callgrind (see $5.client)"
        return
    fi
    echo "$ir $msgs"
}

# Instructions per message of one side, one measurement (see the header): prints the figure
# or "unavailable: why".
per_message() {
    local short long
    short=$(count_once "$1" "$2" "$3" 1s "$4-short")
    long=$(count_once "$1" "$2" "$3" 4s "$4-long")
    case "$short" in unavailable*) echo "$short"; return ;; esac
    case "$long" in unavailable*) echo "$long"; return ;; esac
    awk -v s="$short" -v l="$long" 'BEGIN { split(s, a, " "); split(l, b, " ");
        if (b[2] <= a[2]) { print "unavailable: the longer run echoed no more messages"; exit }
        printf "%.1f\n", (b[1] - a[1]) / (b[2] - a[2]) }'
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END {
    if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

hog_pid=""
stop_hog() { if [ -n "$hog_pid" ]; then kill "$hog_pid" 2> /dev/null || true; wait "$hog_pid" 2> /dev/null || true; hog_pid=""; fi; }
trap stop_hog EXIT

if [ "$workload" = connect ]; then
    echo "Server instructions per upgrade (Callgrind, $(valgrind --version); $scheme, connection storm, 16 at once)"
else
    echo "Server instructions per echoed message (Callgrind, $(valgrind --version); $scheme, 64 B, 100 connections, closed loop)"
fi
echo
echo "| server | base Ir/$per | head Ir/$per | change | limit | verdict |"
echo "|---|---:|---:|---:|---:|---|"
status=0
IFS=, read -ra server_list <<< "$servers"
for s in "${server_list[@]}"; do
    base_runs="" head_runs="" why=""
    # Sides alternate, as in the timing gate, though nothing here should drift.
    for r in $(seq 1 "$repeat"); do
        v=$(per_message "$base_bin" "$s" "$base_args" "$out/$s-base-$r")
        case "$v" in unavailable*) why=$v; break ;; esac
        base_runs+=" $v"
        if [ "$hog_head" = 1 ]; then taskset -c 0 sh -c 'while :; do :; done' & hog_pid=$!; fi
        v=$(per_message "$head_bin" "$s" "$head_args" "$out/$s-head-$r")
        stop_hog
        case "$v" in unavailable*) why=$v; break ;; esac
        head_runs+=" $v"
    done
    if [ -n "$why" ]; then
        echo "| $s | – | – | – | – | $why |"
        continue
    fi
    b=$(echo "$base_runs" | median)
    h=$(echo "$head_runs" | median)
    verdict=$(awk -v b="$b" -v h="$h" -v l="$limit" 'BEGIN {
        c = (h / b - 1) * 100; printf "%+.2f%% | %s%% | %s", c, l, (c > l) ? "**REGRESSION**" : "ok" }')
    echo "| $s | $b ($(echo "$base_runs" | xargs | tr ' ' ',')) | $h ($(echo "$head_runs" | xargs | tr ' ' ',')) | $verdict |"
    case "$verdict" in *REGRESSION*) status=3 ;; esac
done
echo
echo "(runs, Callgrind outputs and server logs: $out)"
exit "$status"
