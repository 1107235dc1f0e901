#!/usr/bin/env bash
# Usage (repository root): results/2026-12-05-vm/send-lag/run.sh OUTDIR [OLD_CLIENT]
#
# The open-loop client's own lateness, and what it does to the server's figures: wsport-tokio
# pinned to CPU 0, wsport-bench `rate` pinned to CPU 1, 100 connections x 64 B at 10k, 40k and
# 80k msgs/s, 5 s windows after 1 s, under both client engines; 3 rounds, the cells of a round
# interleaved. OLD_CLIENT (a wsport-bench binary of an earlier commit) runs the same cells
# beside it, labelled old-*. Then `wsport-bench report OUTDIR` writes summary.md.
set -euo pipefail
out=$1; old=${2:-}
bin=target/release
mkdir -p "$out"
taskset -c 0 $bin/wsport-tokio --listen ws://127.0.0.1:0 --cpus 0 > "$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$out/server.log"' EXIT
for _ in $(seq 50); do grep -q '127.0.0.1:' "$out/server.log" && break; sleep 0.1; done
port=$(grep -o '127.0.0.1:[0-9]*' "$out/server.log" | head -1 | cut -d: -f2)
clients=("new:$bin/wsport-bench")
[ -n "$old" ] && clients+=("old:$old")
for round in 1 2 3; do
  for rate in 10000 40000 80000; do
    for engine in epoll io-uring; do
      for c in "${clients[@]}"; do
        name=${c%%:*}; client=${c#*:}
        label=$name-client-$engine
        file=$out/$label-$rate-r$round
        taskset -c 1 "$client" rate --url ws://127.0.0.1:$port/ -c 100 --size 64 --rate $rate \
          --duration 5s --warmup 1s --server-pid $server --cpus 1 --engine $engine \
          --label "$label" -q --json "$file.json" > "$file.txt" 2>&1
        lag=$(grep -o '^  send lag .*p99 [^ ]*' "$file.txt" | sed 's/.*p99 //' || true)
        echo "round $round  $rate msgs/s  $label  $(grep -E '^  server ' "$file.txt" | grep -o '[0-9.]* µs CPU per message')  send lag p99 ${lag:-n/a}"
        rm -f "$file.txt"
      done
    done
  done
done
$bin/wsport-bench report "$out" > /dev/null
rm -f "$out"/*.json
