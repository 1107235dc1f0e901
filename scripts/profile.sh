#!/usr/bin/env bash
# Where a server's CPU goes: perf record of one server under wsport-bench, folded into a
# flame graph (SVG) and a short table of where the samples fall (kernel vs user space, the
# hottest functions by self time). Closed loop by default; --rate N profiles open loop.
#
#   scripts/profile.sh --server tokio --out DIR                  # echo 100 × 64 B
#   scripts/profile.sh --server monoio-uring --rate 80000 --out DIR
#
# Server on --server-cpu, client on --client-cpu, as in run-bench. Needs perf (apt-get install
# linux-perf) and inferno (cargo install inferno); installs inferno when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/servers.sh

server="" rate="" conns=100 size=64 duration=3 warmup=1 engine=io-uring freq=1999
server_cpu=0 client_cpu=1 out="" build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --server) server=$2; shift ;;
        --rate) rate=$2; shift ;;
        --conns) conns=$2; shift ;;
        --size) size=$2; shift ;;
        --duration) duration=$2; shift ;;
        --client-engine) engine=$2; shift ;;
        --freq) freq=$2; shift ;;
        --server-cpu) server_cpu=$2; shift ;;
        --client-cpu) client_cpu=$2; shift ;;
        --out) out=$2; shift ;;
        --no-build) build=0 ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "profile.sh: unknown option '$1' (--help)" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$server" ] && [ -n "$out" ] || { echo "profile.sh: --server NAME and --out DIR are required (--help)" >&2; exit 2; }
command -v perf > /dev/null || { echo "profile.sh: unavailable: perf not found (apt-get install linux-perf)" >&2; exit 1; }
if ! command -v inferno-flamegraph > /dev/null; then
    echo "profile.sh: installing inferno (cargo install inferno) for the flame graph"
    cargo install inferno --quiet
fi
cmd=$(wsport_server_cmd "$server" target/release)
[ "$build" = 1 ] && cargo build --release --workspace --bins --quiet
mkdir -p "$out"
name=$server${rate:+-rate$rate}
work=$(mktemp -d)
server_pid="" perf_pid=""
cleanup() {
    for p in $perf_pid $server_pid; do kill "$p" 2> /dev/null || true; wait "$p" 2> /dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

wsport_start_any_port "$cmd" "$server_cpu" "$work/server.out"
server_pid=$wsport_pid port=$wsport_port
[ -n "$port" ] || { echo "profile.sh: $server did not start: $(head -1 "$work/server.out")" >&2; exit 1; }
workload=(echo)
[ -n "$rate" ] && workload=(rate --rate "$rate")
# The client runs warm-up + window; perf samples the window only (it starts after the warm-up).
target/release/wsport-bench "${workload[@]}" -c "$conns" --size "$size" --duration "${duration}s" \
    --warmup "${warmup}s" --url "ws://127.0.0.1:$port/" --server-pid "$server_pid" \
    --cpus "$client_cpu" --engine "$engine" --no-syscalls -q > "$work/client.txt" 2>&1 &
client_pid=$!
sleep "$warmup"
# DWARF call graphs: release builds keep debug info (profile.release debug = 1) but no frame
# pointers, so frame-pointer stacks would stop at the first Rust frame.
perf record -F "$freq" --call-graph dwarf,16384 -p "$server_pid" -o "$work/perf.data" \
    -- sleep "$duration" 2> "$work/perf.err" &
perf_pid=$!
wait "$perf_pid" || { echo "profile.sh: perf record failed: $(tail -1 "$work/perf.err")" >&2; exit 1; }
perf_pid=""
wait "$client_pid" || true
perf script -i "$work/perf.data" 2> /dev/null | inferno-collapse-perf --kernel > "$work/folded"
inferno-flamegraph --title "$name: server CPU ($(grep -m1 -o '[0-9.,]* µs CPU per message' "$work/client.txt" || echo "?"))" \
    < "$work/folded" > "$out/$name.svg"
python3 - "$work/folded" "$name" "$work/client.txt" > "$out/$name.md" <<'PY'
import collections, sys
folded, name, client = sys.argv[1:]
total, kernel, self_time = 0, 0, collections.Counter()
for line in open(folded):
    stack, _, n = line.rstrip().rpartition(" ")
    n = int(n)
    frames = stack.split(";")
    total += n
    leaf = frames[-1]
    self_time[leaf] += n
    if leaf.endswith("_[k]") or "[kernel.kallsyms]" in leaf:
        kernel += n
summary = [l.strip() for l in open(client) if l.strip().startswith(("messages", "server"))]
print(f"## {name}\n")
for l in summary:
    print(f"    {l}")
print(f"\nsampled CPU (weighted by period): kernel {100 * kernel / max(total, 1):.0f}%, user space {100 * (total - kernel) / max(total, 1):.0f}%\n")
print("| function (self time) | share |\n|---|---:|")
for fn, n in self_time.most_common(15):
    print(f"| `{fn[:90]}` | {100 * n / total:.1f}% |")
PY
cat "$out/$name.md"
echo "Flame graph: $out/$name.svg"
