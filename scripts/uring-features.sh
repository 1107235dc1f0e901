#!/usr/bin/env bash
# What each io_uring feature of wsport-uring buys: closed-loop echo against the server with
# every feature on, with each feature turned off by its flag, and with all of them off; the
# variants interleaved within each repeat, server and client pinned to disjoint cores.
#
#   scripts/uring-features.sh [--conns 100,1000] [--engines io-uring,epoll] [--size 64]
#                             [--scheme ws|wss] [--repeat 3] [--duration 3s] [--out DIR]
#
# Each run's wsport-bench JSON goes to DIR (default target/bench/uring-features-<time>), then
# `wsport-bench report DIR` writes summary.md and runs.jsonl there; the echo tables give each
# variant's server CPU µs per message (the label names the flag turned off). --scheme wss runs
# the same over TLS (the server's self-signed certificate, the client's --insecure). Exits 1
# when a run failed.
set -euo pipefail
cd "$(dirname "$0")/.."

command_line="scripts/uring-features.sh $*"
conns="100,1000"
engines="io-uring,epoll"
size=64
scheme=ws
repeat=3
duration="3s"
out="target/bench/uring-features-$(date +%H%M%S)"

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --conns) conns="${2:?}"; shift 2 ;;
        --engines) engines="${2:?}"; shift 2 ;;
        --size) size="${2:?}"; shift 2 ;;
        --scheme) scheme="${2:?}"; shift 2 ;;
        --repeat) repeat="${2:?}"; shift 2 ;;
        --duration) duration="${2:?}"; shift 2 ;;
        --out) out="${2:?}"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "uring-features.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$scheme" in
    ws) tls_args=() ;;
    wss) tls_args=(--insecure) ;;
    *) echo "uring-features.sh: --scheme must be ws or wss, not '$scheme'" >&2; exit 2 ;;
esac

# label -> flags; "all-on" first, "all-off" last.
variants=(
    "all-on="
    "no-multishot-recv=--no-multishot-recv"
    "no-buffer-ring=--no-buffer-ring"
    "no-registered-files=--no-registered-files"
    "no-defer-taskrun=--no-defer-taskrun"
    "no-batch-submit=--no-batch-submit"
    "all-off=--no-multishot-accept --no-buffer-ring --no-registered-files --no-defer-taskrun --no-batch-submit"
)

cargo build --release -p wsport-uring -p wsport-bench
bin=target/release
mkdir -p "$out"
{
    echo "# wsport-uring per-feature runs, $(date -u +%FT%TZ)"
    echo
    echo "- host: $(hostname), $(nproc) CPUs; kernel $(uname -r); commit $(git rev-parse --short HEAD)"
    echo "- pinning: server on CPU 0, client on CPU 1"
    echo "- command: \`$command_line\`"
} > "$out/README.md"

# shellcheck source=scripts/pinned-server.sh
source scripts/pinned-server.sh

failed=0
IFS=, read -ra conn_list <<<"$conns"
IFS=, read -ra engine_list <<<"$engines"
for r in $(seq 1 "$repeat"); do
    for c in "${conn_list[@]}"; do
        for engine in "${engine_list[@]}"; do
            for variant in "${variants[@]}"; do
                label=${variant%%=*}
                flags=${variant#*=}
                # shellcheck disable=SC2086 # the flags are meant to split
                start_server "$out" "$scheme" "$bin/wsport-uring" $flags
                url=$server_url
                name="echo-${scheme}-${size}B-${c}c-uring-${label}-${engine}-r$r"
                printf '%s ... ' "$name"
                if [[ -n "$url" ]] && "$bin/wsport-bench" echo --url "$url" -c "$c" --size "$size" \
                    --duration "$duration" --warmup 1s --server-pid "$server_pid" --cpus 1 \
                    --engine "$engine" --label "uring-$label" "${tls_args[@]}" --json "$out/$name.json" -q \
                    >"$out/$name.txt" 2>&1; then
                    awk '/^  server +pid/ {print $6 " µs CPU per message"}' "$out/$name.txt"
                    rm -f "$out/$name.txt"
                else
                    echo "FAILED (see $out/$name.txt, $out/server.err)"
                    failed=1
                fi
                stop_server
            done
        done
    done
done
rm -f "$out/server.out" "$out/server.err"
"$bin/wsport-bench" report "$out"
rm -f "$out"/*.json
exit "$failed"
