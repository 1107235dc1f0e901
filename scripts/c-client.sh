#!/usr/bin/env bash
# The third instrument: every server under a plain epoll ping-pong client in C
# (clients/c-epoll), which shares no code with wsport-bench. A ranking of servers that holds
# under wsport-bench's two engines should hold here too; where it does not, the client decides
# it. Closed loop, ws, server on --server-cpu, client on --client-cpu, servers interleaved
# within each repeat; server CPU per message from its threads' schedstat over the window.
#
#   scripts/c-client.sh                          # 5 servers + fastwebsockets, 5 repeats
#   scripts/c-client.sh --servers tokio,uring --repeat 3 --conns 100 --size 64 --out DIR
#   scripts/c-client.sh --against fastwebsockets   # ratios against it instead of tokio
#
# Writes DIR/runs.tsv (one line per run) and DIR/summary.md: medians and ranges, the ratio to
# the --against server's (tokio's) median, and round by round: each repeat runs every server
# once, in an order rotated every repeat, so a server's ratio to the --against server's run of
# the same round is free of the host's drift between rounds; and in how many rounds each server
# was the cheapest.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/servers.sh

servers=tokio,tokio-uring,monoio-uring,monoio-epoll,uring,fastwebsockets against=tokio
repeat=5 conns=100 size=64 warmup=1 duration=3 server_cpu=0 client_cpu=1 build=1
out=target/bench/c-client-$(date -u +%Y%m%dT%H%M%SZ)
while [ $# -gt 0 ]; do
    case "$1" in
        --servers) servers=$2; shift ;;
        --against) against=$2; shift ;;
        --repeat) repeat=$2; shift ;;
        --conns) conns=$2; shift ;;
        --size) size=$2; shift ;;
        --warmup) warmup=$2; shift ;;
        --duration) duration=$2; shift ;;
        --server-cpu) server_cpu=$2; shift ;;
        --client-cpu) client_cpu=$2; shift ;;
        --out) out=$2; shift ;;
        --no-build) build=0 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
    # Rotated every repeat: no server always runs first, or after the same neighbour.
    k=$(( (r - 1) % ${#list[@]} ))
    for s in "${list[@]:k}" "${list[@]:0:k}"; do
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

python3 - "$out" "$conns" "$size" "$against" <<'PY' > "$out/summary.md"
import csv, statistics, sys
out, conns, size, against = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rows = list(csv.DictReader(open(f"{out}/runs.tsv"), delimiter="\t"))
by = {}
cpu_of = {}  # (server, repeat) -> server µs/msg
for r in rows:
    by.setdefault(r["server"], []).append(r)
    cpu_of[(r["server"], r["repeat"])] = float(r["server_us_per_msg"])
def col(rs, k): return [float(r[k]) for r in rs]
repeats = sorted({r["repeat"] for r in rows}, key=int)
cheapest = {}
for rep in repeats:
    there = {s: c for (s, r), c in cpu_of.items() if r == rep}
    if len(there) == len(by):
        best = min(there, key=there.get)
        cheapest[best] = cheapest.get(best, 0) + 1
full = sum(cheapest.values())
base_runs = col(by.get(against, []), "server_us_per_msg")
base = statistics.median(base_runs) if base_runs else None
print(f"# Closed loop under a plain epoll client in C ({conns} connections × {size} B, ws)\n")
print(f"Server CPU µs per message: median (min–max) of the repeats; *vs {against}*: the ratio to "
      f"{against}'s median, *apart* when the ranges do not overlap; *per round*: the median "
      f"(min–max) of the ratios to {against}'s run of the same round; *cheapest*: in how many "
      f"of the {full} complete rounds the server cost the least.\n")
print(f"| server | runs | msgs/s | server CPU µs/msg (range) | vs {against} | per round | cheapest | client µs/msg | msgs per client wait |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for s, rs in by.items():
    cpu = col(rs, "server_us_per_msg")
    ratio = f"{statistics.median(cpu) / base:.2f}×" if base else "–"
    if base_runs and s != against and len(cpu) > 1 and len(base_runs) > 1:
        ratio += " apart" if (max(cpu) < min(base_runs) or min(cpu) > max(base_runs)) else " (overlaps)"
    paired = [cpu_of[(s, r["repeat"])] / cpu_of[(against, r["repeat"])]
              for r in rs if (against, r["repeat"]) in cpu_of]
    per_round = (f"{statistics.median(paired):.2f}× ({min(paired):.2f}–{max(paired):.2f})"
                 if paired and s != against else "–")
    print(f"| {s} | {len(rs)} | {statistics.median(col(rs, 'msgs_per_s')):,.0f} | "
          f"{statistics.median(cpu):.2f} ({min(cpu):.2f}–{max(cpu):.2f}) | {ratio} | {per_round} | "
          f"{cheapest.get(s, 0)}/{full} | "
          f"{statistics.median(col(rs, 'client_us_per_msg')):.2f} | "
          f"{statistics.median(col(rs, 'client_msgs_per_wait')):.1f} |")
PY
cat "$out/summary.md"
echo "Result: $out (runs.tsv, summary.md)"
