#!/usr/bin/env bash
# System-call gate of the real server binaries: system calls per message of each server,
# base build against head build, at a load where the count does not depend on timing. One
# connection at 200 msgs/s (open loop) delivers each message alone, so a server makes the
# same calls for each (tokio: one wait, one recv, one send); wsport-bench counts them on the
# syscall tracepoints over the warm-up's last second. A change that adds a call per message
# (an extra read that returns EAGAIN, a write split in two) shows as +1, whatever the host's
# noise; the CPU-time gate would need a quiet host to see it.
#
#   scripts/syscall-gate.sh --base-bin DIR [--head-bin DIR] [--servers tokio,uring]
#       [--limit 0.25] [--repeat 3] [--base-args "..."] [--head-args "..."] [--out DIR]
#
# The gate: the median of --repeat measurements a side; head fails (exit 3) when it makes
# more than --limit system calls per message more than base (per call kind in the table).
# Needs the syscall tracepoints (root, or perf_event_paranoid ≤ -1): otherwise every count
# is "unavailable: <why>" and the gate says it could not judge (exit 4).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/servers.sh

base_bin="" head_bin=target/release servers=tokio,tokio-uring,monoio-uring,monoio-epoll,uring
limit=0.25 repeat=3 base_args="" head_args="" out=target/syscall-gate
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --base-bin) base_bin=$2; shift ;;
        --head-bin) head_bin=$2; shift ;;
        --servers) servers=$2; shift ;;
        --limit) limit=$2; shift ;;
        --repeat) repeat=$2; shift ;;
        --base-args) base_args=$2; shift ;;
        --head-args) head_args=$2; shift ;;
        --out) out=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "syscall-gate.sh: unknown option '$1' (--help)" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$base_bin" ] || { echo "syscall-gate.sh: --base-bin DIR is required (--help)" >&2; exit 2; }
mkdir -p "$out"
bench=$head_bin/wsport-bench
IFS=, read -ra list <<< "$servers"
pid=""
stop() { if [ -n "$pid" ]; then kill "$pid" 2> /dev/null || true; wait "$pid" 2> /dev/null || true; pid=""; fi; }
trap stop EXIT

# Measure server $1 from build dir $2 with extra flags $3: prints calls per message (total and
# by kind as JSON), or "unavailable: why".
measure() {
    local cmd port
    cmd="$(wsport_server_cmd "$1" "$2") $3"
    wsport_start_any_port "$cmd" 0 "$out/server.out"
    pid=$wsport_pid port=$wsport_port
    if [ -z "$port" ]; then
        echo "unavailable: $(head -1 "$out/server.out")"
        stop
        return
    fi
    "$bench" rate --rate 200 -c 1 --size 64 --duration 1s --warmup 2s \
        --url "ws://127.0.0.1:$port/" --server-pid "$pid" --cpus 1 --json "$out/run.json" -q \
        > /dev/null 2>&1 || true
    stop
    python3 - "$out/run.json" <<'PY'
import json, sys
try:
    s = json.load(open(sys.argv[1]))["results"]["server"]["syscalls"]
except (OSError, KeyError, ValueError) as e:
    print(f"unavailable: no run ({e})"); sys.exit()
if "unavailable" in s:
    print("unavailable: " + s["unavailable"]); sys.exit()
print(json.dumps({"per_msg": s["per_msg"], "by_call": s["per_msg_by_call"]}))
PY
}

: > "$out/runs.tsv"
for r in $(seq 1 "$repeat"); do
    for s in "${list[@]}"; do
        for side in base head; do
            if [ "$side" = base ]; then dir=$base_bin args=$base_args; else dir=$head_bin args=$head_args; fi
            doc=$(measure "$s" "$dir" "$args")
            printf '%s\t%s\t%s\n' "$s" "$side" "$doc" >> "$out/runs.tsv"
            echo "[$r/$repeat] $s@$side: $doc"
        done
    done
done
rm -f "$out/server.out" "$out/run.json"
set +e
python3 - "$limit" "$out/runs.tsv" > "$out/summary.md" <<'PY'
import json, statistics, sys
limit = float(sys.argv[1])
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[2])]
verdict = 0
print("| server | base calls/msg | head calls/msg | change | by call (head − base) | verdict |")
print("|---|---:|---:|---:|---|---|")
for server in dict.fromkeys(r[0] for r in rows):
    sides = {}
    for s, side, doc in rows:
        if s == server:
            sides.setdefault(side, []).append(doc)
    bad = [d for docs in sides.values() for d in docs if d.startswith("unavailable")]
    if bad:
        print(f"| {server} | – | – | – | – | {bad[0]} |")
        verdict = max(verdict, 4)
        continue
    med = {side: statistics.median(json.loads(d)["per_msg"] for d in docs) for side, docs in sides.items()}
    kinds = {}
    for side, docs in sides.items():
        for d in docs:
            for k, v in json.loads(d)["by_call"].items():
                kinds.setdefault(k, {}).setdefault(side, []).append(v)
    parts = []
    for k, v in sorted(kinds.items()):
        delta = statistics.median(v.get("head", [0])) - statistics.median(v.get("base", [0]))
        parts.append(f"{k} {delta:+.2f}")
    change = med["head"] - med["base"]
    worse = change > limit
    verdict = max(verdict, 3 if worse else 0)
    judged = "**more calls per message**" if worse else f"within +{limit}"
    print(f"| {server} | {med['base']:.2f} | {med['head']:.2f} | {change:+.2f} | {', '.join(parts)} | {judged} |")
sys.exit(verdict)
PY
status=$?
set -e
cat "$out/summary.md"
case $status in
    0) echo "syscall gate: no server makes more than $limit more system calls per message" ;;
    3) echo "syscall gate: FAILED: head makes more system calls per message (table above)" ;;
    *) echo "syscall gate: not judged: a count was unavailable (table above)" ;;
esac
exit "$status"
