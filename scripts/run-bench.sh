#!/usr/bin/env bash
# The matrix runner: every server × ws/wss × payload × connections, measured with wsport-bench,
# server and client pinned to disjoint cores, runs interleaved across servers and repeated;
# then a summary table (medians, ranges, server CPU per message against tokio).
#
#   scripts/run-bench.sh                 # quick default (~5 min on 2 cores, build included)
#   scripts/run-bench.sh --full          # 64 B / 1 KiB / 16 KiB × 100 / 1000 connections × ws/wss, 3 repeats
#   scripts/run-bench.sh --servers tokio,monoio-uring --sizes 64 --conns 100 --duration 10s --repeat 5
#   --server-args "..." adds flags to every server (e.g. the hidden --debug-spin-per-message).
#
# Each run is a wsport-bench JSON file in the output directory (default
# target/bench/<date>-<host>-<time>; pass --out results/<date>-<host> to keep one), beside the
# servers' logs and a README.md with the host and the exact commands.
set -euo pipefail
cd "$(dirname "$0")/.."

servers="tokio,tokio-uring,monoio-uring,monoio-epoll"
schemes="ws,wss"
sizes="64"
conns="100"
duration="5s"
warmup="1s"
repeat=2
out=""
server_cores=""
client_cores=""
server_args=""
command_line="scripts/run-bench.sh $*"

# The comment block at the top of this file is the help.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) ;;
        --full) sizes="64,1024,16384"; conns="100,1000"; duration="10s"; warmup="2s"; repeat=3 ;;
        --servers) servers="$2"; shift ;;
        --schemes) schemes="$2"; shift ;;
        --sizes) sizes="$2"; shift ;;
        --conns) conns="$2"; shift ;;
        --duration) duration="$2"; shift ;;
        --warmup) warmup="$2"; shift ;;
        --repeat) repeat="$2"; shift ;;
        --out) out="$2"; shift ;;
        --server-cores) server_cores="$2"; shift ;;
        --client-cores) client_cores="$2"; shift ;;
        --server-args) server_args="$2"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run-bench.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

# Disjoint cores: the server gets the first half of the CPUs this process may use, the client
# the rest (on 2 cores: server CPU 0, client CPU 1). The client gets the larger half.
mapfile -t allowed < <(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status | tr ',' '\n' |
    awk -F- '{ if (NF == 2) { for (i = $1; i <= $2; i++) print i } else print $1 }')
if [ "${#allowed[@]}" -lt 2 ]; then
    echo "run-bench.sh: needs at least 2 CPUs to pin server and client apart (have ${#allowed[@]})" >&2
    exit 2
fi
half=$(( ${#allowed[@]} / 2 ))
[ -n "$server_cores" ] || server_cores=$(IFS=,; echo "${allowed[*]:0:$half}")
[ -n "$client_cores" ] || client_cores=$(IFS=,; echo "${allowed[*]:$half}")
server_threads=$(echo "$server_cores" | tr ',' '\n' | grep -c .)

host=$(hostname)
[ -n "$out" ] || out="target/bench/$(date +%F)-$host-$(date +%H%M%S)"
mkdir -p "$out"

echo "== building release binaries"
cargo build --release -p wsport-tokio -p wsport-tokio-uring -p wsport-monoio -p wsport-bench
bin=target/release

# config name -> server command (without listeners)
server_cmd() {
    case "$1" in
        tokio) echo "$bin/wsport-tokio" ;;
        tokio-multi) echo "$bin/wsport-tokio --flavor multi" ;;
        tokio-uring) echo "$bin/wsport-tokio-uring" ;;
        monoio-uring) echo "$bin/wsport-monoio --driver uring" ;;
        monoio-epoll) echo "$bin/wsport-monoio --driver epoll" ;;
        *) echo "run-bench.sh: unknown server '$1' (tokio, tokio-multi, tokio-uring, monoio-uring, monoio-epoll)" >&2; exit 2 ;;
    esac
}
IFS=, read -ra server_list <<< "$servers"
for s in "${server_list[@]}"; do server_cmd "$s" > /dev/null; done
IFS=, read -ra scheme_list <<< "$schemes"
IFS=, read -ra size_list <<< "$sizes"
IFS=, read -ra conn_list <<< "$conns"

server_pid=""
stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2> /dev/null; then
        kill -TERM "$server_pid" 2> /dev/null || true
        wait "$server_pid" 2> /dev/null || true
    fi
    server_pid=""
}
trap 'stop_server' EXIT
trap 'stop_server; exit 130' INT TERM

cat > "$out/README.md" <<EOF
# wsport benchmark run, $(date -u +%FT%TZ)

- host: $host, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) CPUs online
- kernel: $(uname -r); $(rustc -V 2> /dev/null || echo "rustc unknown")
- commit: $(git rev-parse --short HEAD 2> /dev/null || echo unknown)$(git diff --quiet 2> /dev/null || echo " (dirty)")
- governor: $(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2> /dev/null || echo "n/a (no cpufreq)")
- pinning: server threads on CPU(s) $server_cores (--threads $server_threads), client on CPU(s) $client_cores
- matrix: servers $servers × $schemes × sizes $sizes × connections $conns; $duration after $warmup warm-up; $repeat repeats, interleaved
- command: \`$command_line\`

Each \`*.json\` is one run (schema wsport-bench/1, with the exact client flags and host metadata);
\`summary.md\` is \`wsport-bench report\` of this directory.

## Server commands
EOF

total=$(( repeat * ${#scheme_list[@]} * ${#size_list[@]} * ${#conn_list[@]} * ${#server_list[@]} ))
n=0
declare -A unavailable=()
failed=0
for r in $(seq 1 "$repeat"); do
  for scheme in "${scheme_list[@]}"; do
    for size in "${size_list[@]}"; do
      for c in "${conn_list[@]}"; do
        for s in "${server_list[@]}"; do
          n=$((n + 1))
          name="echo-${size}B-${c}c-${s}-${scheme}-r$r"
          if [ -n "${unavailable[$s]:-}" ]; then
              echo "[$n/$total] $name: unavailable: ${unavailable[$s]}"
              continue
          fi
          # shellcheck disable=SC2046
          cmd="$(server_cmd "$s") --listen $scheme://127.0.0.1:0 --cpus $server_cores --threads $server_threads $server_args"
          $cmd > "$out/$name.server.out" 2> "$out/$name.server.err" &
          server_pid=$!
          port=""
          for _ in $(seq 1 100); do
              port=$(grep -o -m1 "listening $scheme://127.0.0.1:[0-9]*" "$out/$name.server.out" 2> /dev/null | awk -F: '{print $NF}') || true
              [ -n "$port" ] && break
              kill -0 "$server_pid" 2> /dev/null || break
              sleep 0.1
          done
          if [ -z "$port" ]; then
              reason=$(head -n1 "$out/$name.server.err" 2> /dev/null)
              stop_server
              unavailable[$s]="${reason:-did not start}"
              echo "[$n/$total] $name: unavailable: ${unavailable[$s]}"
              echo "- $s: unavailable: ${unavailable[$s]}" >> "$out/README.md"
              continue
          fi
          [ "$r" = 1 ] && [ "$scheme" = "${scheme_list[0]}" ] && [ "$size" = "${size_list[0]}" ] && [ "$c" = "${conn_list[0]}" ] &&
              echo "- $s: \`$cmd\`" >> "$out/README.md"
          insecure=""
          [ "$scheme" = wss ] && insecure="--insecure"
          printf '[%d/%d] %s ... ' "$n" "$total" "$name"
          if "$bin/wsport-bench" echo --url "$scheme://127.0.0.1:$port/" -c "$c" --size "$size" \
              --duration "$duration" --warmup "$warmup" --server-pid "$server_pid" --cpus "$client_cores" \
              --label "$s" $insecure --json "$out/$name.json" -q > "$out/$name.txt" 2>&1; then
              awk '/^ +messages/ {printf "%s msgs/s", $4} /^ +server +pid/ {printf ", server %s µs CPU/msg", $6}' "$out/$name.txt"
              echo
          else
              echo "FAILED (see $out/$name.txt)"
              failed=1
          fi
          stop_server
        done
      done
    done
  done
done

# Empty server logs say nothing; keep the ones that do.
find "$out" -name '*.server.*' -empty -delete
echo
"$bin/wsport-bench" report "$out"
echo "Full result: $out (summary.md, README.md, one JSON per run)"
exit "$failed"
