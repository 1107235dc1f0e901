#!/usr/bin/env bash
# The third instrument: every server under a plain epoll ping-pong client in C
# (clients/c-epoll), which shares no code with wsport-bench. A ranking of servers that holds
# under wsport-bench's two engines should hold here too; where it does not, the client decides
# it. Closed loop, ws, server on --server-cpu, client on --client-cpu, servers interleaved
# within each repeat; server CPU per message from its threads' schedstat over the window.
#
#   scripts/c-client.sh                          # 5 servers + fastwebsockets, 5 repeats
#   scripts/c-client.sh --servers tokio,uring --repeat 3 --conns 100 --size 64 --out DIR
#
# Writes DIR/runs.tsv (one line per run) and DIR/summary.md (medians, ranges, ratio to tokio).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/servers.sh

servers=tokio,tokio-uring,monoio-uring,monoio-epoll,uring,fastwebsockets
repeat=5 conns=100 size=64 warmup=1 duration=3 server_cpu=0 client_cpu=1 build=1
out=target/bench/c-client-$(date -u +%Y%m%dT%H%M%SZ)
while [ $# -gt 0 ]; do
    case "$1" in
        --servers) servers=$2; shift ;;
        --repeat) repeat=$2; shift ;;
        --conns) conns=$2; shift ;;
        --size) size=$2; shift ;;
        --warmup) warmup=$2; shift ;;
        --duration) duration=$2; shift ;;
        --server-cpu) server_cpu=$2; shift ;;
        --client-cpu) client_cpu=$2; shift ;;
        --out) out=$2; shift ;;
        --no-build) build=0 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "c-client.sh: unknown option '$1' (--help)" >&2; exit 2 ;;
    esac
    shift
done
command -v gcc > /dev/null || { echo "c-client.sh: unavailable: gcc not found (apt-get install gcc)" >&2; exit 1; }
mkdir -p "$out" target/c-client
client=target/c-client/wsport-c-client
gcc -O2 -Wall -Wextra -o "$client" clients/c-epoll/wsport-c-client.c
[ "$build" = 1 ] && cargo build --release --workspace --bins --quiet
IFS=, read -ra list <<< "$servers"
for s in "${list[@]}"; do wsport_server_cmd "$s" target/release > /dev/null; done

server_pid=""
stop() { if [ -n "$server_pid" ]; then kill "$server_pid" 2> /dev/null || true; wait "$server_pid" 2> /dev/null || true; server_pid=""; fi; }
trap stop EXIT

# Start server $1 on a kernel-chosen port: sets server_pid and port.
start() {
    wsport_start_any_port "$(wsport_server_cmd "$1" target/release)" "$server_cpu" "$out/server.out"
    server_pid=$wsport_pid port=$wsport_port
    [ -n "$port" ] || { echo "c-client.sh: $1 did not start: $(head -1 "$out/server.out")" >&2; exit 1; }
}

echo -e "server\trepeat\tmsgs_per_s\tserver_us_per_msg\tclient_us_per_msg\tclient_msgs_per_wait" > "$out/runs.tsv"
total=$((repeat * ${#list[@]})) n=0
for r in $(seq 1 "$repeat"); do
    for s in "${list[@]}"; do
        n=$((n + 1))
        start "$s"
        line=$(taskset -c "$client_cpu" "$client" -p "$port" -c "$conns" -s "$size" \
            -w "$warmup" -d "$duration" -P "$server_pid")
        stop
        get() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
        echo -e "$s\t$r\t$(get msgs_per_s)\t$(get server_us_per_msg)\t$(get client_us_per_msg)\t$(get client_msgs_per_wait)" >> "$out/runs.tsv"
        echo "[$n/$total] $s r$r: $(get msgs_per_s) msgs/s, server $(get server_us_per_msg) µs/msg, client $(get client_us_per_msg) µs/msg, $(get client_msgs_per_wait) msgs per client wait"
    done
done
rm -f "$out/server.out"

python3 - "$out" "$conns" "$size" "$list" <<'PY' > "$out/summary.md"
import csv, statistics, sys
out, conns, size = sys.argv[1], sys.argv[2], sys.argv[3]
rows = list(csv.DictReader(open(f"{out}/runs.tsv"), delimiter="\t"))
by = {}
for r in rows:
    by.setdefault(r["server"], []).append(r)
def col(rs, k): return [float(r[k]) for r in rs]
base = statistics.median(col(by["tokio"], "server_us_per_msg")) if "tokio" in by else None
print(f"# Closed loop under a plain epoll client in C ({conns} connections × {size} B, ws)\n")
print("Server CPU µs per message: median (min–max) of the repeats; the ratio is against tokio's median; "
      "*apart* when the server's range does not overlap tokio's.\n")
print("| server | runs | msgs/s | server CPU µs/msg (range) | vs tokio | client µs/msg | msgs per client wait |")
print("|---|---:|---:|---:|---:|---:|---:|")
t = col(by.get("tokio", []), "server_us_per_msg")
for s, rs in by.items():
    cpu = col(rs, "server_us_per_msg")
    ratio = f"{statistics.median(cpu) / base:.2f}×" if base else "–"
    if t and s != "tokio" and len(cpu) > 1 and len(t) > 1:
        ratio += " apart" if (max(cpu) < min(t) or min(cpu) > max(t)) else " (overlaps)"
    print(f"| {s} | {len(rs)} | {statistics.median(col(rs, 'msgs_per_s')):,.0f} | "
          f"{statistics.median(cpu):.2f} ({min(cpu):.2f}–{max(cpu):.2f}) | {ratio} | "
          f"{statistics.median(col(rs, 'client_us_per_msg')):.2f} | "
          f"{statistics.median(col(rs, 'client_msgs_per_wait')):.1f} |")
PY
cat "$out/summary.md"
echo "Result: $out (runs.tsv, summary.md)"
