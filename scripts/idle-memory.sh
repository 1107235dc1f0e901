#!/usr/bin/env bash
# Idle memory per connection, user space beside the kernel: each server holds N idle ws
# connections (wsport-bench hold, a ping a second each), and for each it reports the server's
# RSS per connection (wsport-bench's figure) next to what the kernel spends on the sockets:
# /proc/net/sockstat's TCP `mem` (pages charged to socket buffers) and the TCP and
# sock_inode_cache slabs (/proc/slabinfo, root only). Both ends of each connection live on
# this host, so the kernel figures are per connection *pair* (client socket + server socket).
#
#   scripts/idle-memory.sh [--conns 10000] [--scheme ws|wss] [SERVER...]
#
# SERVER is `label=command` (default: uring, uring --no-buffer-ring, monoio-uring,
# tokio-uring, tokio), run pinned to CPU 0 with `--listen SCHEME://127.0.0.1:0` added; the
# client runs on CPU 1. Prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."

conns=10000
scheme=ws
servers=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --conns) conns="${2:?}"; shift 2 ;;
        --scheme) scheme="${2:?}"; shift 2 ;;
        -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) servers+=("$1"); shift ;;
    esac
done
bin=target/release
if [[ ${#servers[@]} -eq 0 ]]; then
    servers=(
        "uring=$bin/wsport-uring"
        "uring-no-buffer-ring=$bin/wsport-uring --no-buffer-ring"
        "monoio-uring=$bin/wsport-monoio --driver uring"
        "tokio-uring=$bin/wsport-tokio-uring"
        "tokio=$bin/wsport-tokio"
    )
fi

# sockstat TCP mem (pages) and the active objects × size of the TCP-socket slabs, in bytes.
kernel_bytes() {
    local pages slab
    pages=$(awk '/^TCP:/ {for (i = 1; i < NF; i++) if ($i == "mem") print $(i + 1)}' /proc/net/sockstat)
    slab=$(awk '$1 == "TCP" || $1 == "sock_inode_cache" {sum += $2 * $4} END {print sum + 0}' \
        /proc/slabinfo 2>/dev/null || echo 0)
    echo "$((pages * 4096)) $slab"
}

# shellcheck source=scripts/pinned-server.sh
source scripts/pinned-server.sh

tmp=$(mktemp -d)
echo "| server | conns | server RSS per conn | sockstat TCP mem per pair | TCP + inode slabs per pair |"
echo "|---|---:|---:|---:|---:|"
for entry in "${servers[@]}"; do
    label=${entry%%=*}
    read -ra cmd <<<"${entry#*=}"
    start_server "$tmp" "$scheme" "${cmd[@]}" --idle-timeout 600s
    url=$server_url
    [[ -n "$url" ]] || { echo "| $label | did not start: $(head -n1 "$tmp/server.err") |"; continue; }
    read -r mem0 slab0 <<<"$(kernel_bytes)"
    "$bin/wsport-bench" hold --url "$url" -c "$conns" --ping-interval 1s --duration 6s \
        --warmup 2s --server-pid "$server_pid" --cpus 1 --insecure -q >"$tmp/hold" 2>&1 &
    hold=$!
    # The peak while every connection is held (the hold ends by closing them all).
    mem1=$mem0
    slab1=$slab0
    while kill -0 "$hold" 2>/dev/null; do
        read -r mem slab <<<"$(kernel_bytes)"
        ((mem > mem1)) && mem1=$mem
        ((slab > slab1)) && slab1=$slab
        sleep 0.5
    done
    wait "$hold" || { echo "| $label | hold failed: $(tail -n1 "$tmp/hold") |"; stop_server; continue; }
    rss=$(awk '/^  memory / {print $4 " " $5}' "$tmp/hold")
    awk -v l="$label" -v c="$conns" -v rss="$rss" -v m=$((mem1 - mem0)) -v s=$((slab1 - slab0)) \
        'BEGIN {printf "| %s | %d | %s | %.2f KiB | %.2f KiB |\n", l, c, rss, m / c / 1024, s / c / 1024}'
    stop_server
done
rm -rf "$tmp"
