#!/usr/bin/env bash
# Usage (repository root): results/2026-11-22-vm/client-cost/run.sh "target/release/wsport-monoio --driver uring" OUTDIR
# wsport-bench vs the plain tokio client, against one server, interleaved.
set -u
srv=$1; out=$2
for r in 1 2; do
 for cell in "64 100" "64 1000" "1024 100" "1024 1000"; do
  read -r size c <<< "$cell"
  for client in wsport-bench tokio-example; do
    $srv --listen ws://127.0.0.1:9401 --cpus 0 --threads 1 > /dev/null 2>&1 &
    pid=$!; sleep 0.4
    if [ $client = wsport-bench ]; then
      target/release/wsport-bench echo --url ws://127.0.0.1:9401/ -c $c --size $size --duration 5s --warmup 1s --server-pid $pid --cpus 1 -q > $out/$client-$size-$c-r$r.txt 2>&1
      line=$(awk '/^  messages/ {m=$4} /^  server +pid/ {s=$6} /^  client +pid/ {cl=$9} END {print m, "server", s, "client", cl}' $out/$client-$size-$c-r$r.txt)
    else
      taskset -c 1 target/release/examples/tokio_echo_client --url ws://127.0.0.1:9401/ -c $c --size $size --duration 5 --warmup 1 --server-pid $pid > $out/$client-$size-$c-r$r.txt 2>&1
      line=$(tr '\n' ' ' < $out/$client-$size-$c-r$r.txt)
    fi
    echo "r$r $size B $c c $client: $line"
    kill -TERM $pid; wait $pid 2>/dev/null
  done
 done
done
