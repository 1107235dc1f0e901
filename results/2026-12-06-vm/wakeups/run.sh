#!/usr/bin/env bash
# Why do tokio-uring and monoio io_uring cost more than tokio per message below saturation?
# Open loop at fixed rates, each server in turn (interleaved, repeated): server CPU per
# message and system calls per message from wsport-bench, plus the interrupts the server's
# CPU took per message (/proc/interrupts: RES rescheduling, CAL function-call IPIs, LOC
# timer), the notifications a completion or a wake-up costs on a VM.
#
#   results/2026-12-06-vm/wakeups/run.sh OUT_DIR [RATES] [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/../../.."
. scripts/lib/servers.sh
out=${1:?usage: run.sh OUT_DIR [RATES] [REPEATS]}
rates=${2:-20000,40000,80000}
repeats=${3:-3}
servers=(${SERVERS:-tokio tokio-uring tokio-uring-coop monoio-uring monoio-uring-dt uring uring-no-dt})
bin=target/release
mkdir -p "$out"
server_of() {
    case "$1" in
        uring-no-dt) echo "$bin/wsport-uring --no-defer-taskrun" ;;
        *) wsport_server_cmd "$1" "$bin" ;;
    esac
}
# RES CAL LOC counts of CPU 0 (the server's core).
irqs() { awk '$1 == "RES:" || $1 == "CAL:" || $1 == "LOC:" { printf "%s ", $2 }' /proc/interrupts; }
pid=""
stop() { if [ -n "$pid" ]; then kill "$pid" 2> /dev/null || true; wait "$pid" 2> /dev/null || true; pid=""; fi; }
trap stop EXIT
printf 'server\trate\trepeat\tmsgs\tserver_us_per_msg\tsyscalls_per_msg\tmsgs_per_wait\tres_per_msg\tcal_per_msg\tloc_per_msg\tclient_late\n' > "$out/runs.tsv"
IFS=, read -ra rate_list <<< "$rates"
for r in $(seq 1 "$repeats"); do
    for rate in "${rate_list[@]}"; do
        for s in "${servers[@]}"; do
            wsport_start_any_port "$(server_of "$s")" 0 "$out/server.out"
            pid=$wsport_pid port=$wsport_port
            before=$(irqs)
            "$bin/wsport-bench" rate --rate "$rate" -c 100 --size 64 --duration 3s --warmup 1s \
                --url "ws://127.0.0.1:$port/" --server-pid "$pid" --cpus 1 --engine io-uring \
                --json "$out/run.json" -q > /dev/null 2>&1 || echo "wsport-bench failed: $s $rate"
            after=$(irqs)
            stop
            python3 - "$s" "$rate" "$r" "$before" "$after" "$out/run.json" >> "$out/runs.tsv" <<'PY'
import json, sys
s, rate, r, before, after, path = sys.argv[1:]
res = json.load(open(path))["results"]
# The interrupts span the whole run (set-up, warm-up, window): per message of all of it.
msgs = res["sent"] or 1
d = [int(a) - int(b) for a, b in zip(after.split(), before.split())]
names = ["LOC", "RES", "CAL"]  # /proc/interrupts order
per = dict(zip(names, (x / msgs for x in d)))
sc = res["server"].get("syscalls", {})
print("\t".join(map(str, [s, rate, r, res["messages"], round(res["server"]["cpu_us_per_msg"], 3),
      round(sc.get("per_msg", float("nan")), 3), round(sc.get("msgs_per_wait", float("nan")), 2),
      round(per["RES"], 3), round(per["CAL"], 3), round(per["LOC"], 4), res["send_lag_exceeded"]])))
PY
            tail -1 "$out/runs.tsv"
        done
    done
done
rm -f "$out/server.out" "$out/run.json"
