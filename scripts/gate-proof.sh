#!/usr/bin/env bash
# Proves the paired regression gate (`scripts/run-bench.sh --base-bin/--head-bin` judged by
# `wsport-bench compare --paired`) on this host: N rounds, each ONE paired run in which the
# same build runs as four sides, alternating in a random order within every repeat: "base",
# "same" (A/A: a "slower" is a false alarm), and two sides with an injected server slowdown
# (the hidden --debug-spin-per-message, off by default) of about +10% and +5% of the server's
# CPU per message (a "slower" is a detection). The spins are sized from a short calibration
# run first, then trimmed by a paired run that measures what each spin really costs. Prints a
# line per round and the counts; every directory and table stays in --out,
# the table of all rounds in --out/table.md.
#
#   scripts/gate-proof.sh [--rounds 8] [--pairs 10] [--duration 1s] [--effects 10,5]
#                         [--out target/gate-proof] [--servers tokio]
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=8
pairs=10
duration="1s"
effects="10,5"
out="target/gate-proof"
servers="tokio"
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds="$2"; shift ;;
        --pairs) pairs="$2"; shift ;;
        --duration) duration="$2"; shift ;;
        --effects) effects="$2"; shift ;;
        --out) out="$2"; shift ;;
        --servers) servers="$2"; shift ;;
        *) echo "gate-proof.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done
rm -rf "$out"
mkdir -p "$out"
matrix=(--servers "$servers" --scenarios echo --ports any --schemes ws --sizes 64 --conns 100
    --client-engines io-uring --warmup 500ms)
bench=target/release/wsport-bench
# Built once here: wsport-bench's build script watches this checkout's HEAD, index, branch
# and tracked files, so a commit or an edit here would otherwise rebuild it inside a round.
cargo build --release -p wsport-tokio -p wsport-bench
matrix+=(--no-build)

# Calibration: the server's CPU per message now, to size each injected slowdown.
scripts/run-bench.sh "${matrix[@]}" --duration 2s --repeat 1 --out "$out/calibration" \
    > "$out/calibration.log" 2>&1
cost_us=$(grep -o '"sched_cpu_us_per_msg":[0-9.]*' "$out/calibration/runs.jsonl" | head -1 | cut -d: -f2)
[ -n "$cost_us" ] || cost_us=$(grep -o '"cpu_us_per_msg":[0-9.]*' "$out/calibration/runs.jsonl" | head -1 | cut -d: -f2)
IFS=, read -ra effect_list <<< "$effects"
declare -A spin=()
for e in "${effect_list[@]}"; do
    spin[$e]=$(awk -v c="$cost_us" -v e="$e" 'BEGIN { printf "%d", c * 1000 * e / 100 }')
done

# The spin costs more than its length (it reads the clock in a loop, and the faults path
# replaces the no-op one): sized by its length alone, a "+5%" side measured +5.4…+10.6%. So a
# paired trim run measures each side's real effect once and scales its spin to the target.
trim_sides=(--side base=target/release)
for e in "${effect_list[@]}"; do
    trim_sides+=(--side "slow$e=target/release" --side-args "slow$e=--debug-spin-per-message ${spin[$e]}ns")
done
scripts/run-bench.sh "${matrix[@]}" --duration "$duration" --repeat "$pairs" "${trim_sides[@]}" \
    --out "$out/trim" > "$out/trim.log" 2>&1
for e in "${effect_list[@]}"; do
    "$bench" compare --paired "$out/trim" --base-side base --head-side "slow$e" > "$out/trim-$e.md" || true
    measured=$(awk -F'|' 'NR == 3 { gsub(/[ %+]/, "", $7); print $7 }' "$out/trim-$e.md")
    nominal=${spin[$e]}
    spin[$e]=$(awk -v s="$nominal" -v e="$e" -v m="$measured" \
        'BEGIN { if (m + 0 > e / 4) printf "%d", s * e / m; else printf "%d", s }')
    echo "+$e%: --debug-spin-per-message ${spin[$e]}ns (calibration: $cost_us µs CPU per message; ${nominal}ns measured ${measured}% in the trim run)" | tee -a "$out/table.md"
done
sides=(--side base=target/release --side same=target/release)
for e in "${effect_list[@]}"; do
    sides+=(--side "slow$e=target/release" --side-args "slow$e=--debug-spin-per-message ${spin[$e]}ns")
done
echo | tee -a "$out/table.md"

false_alarms=0
declare -A detected=()
header="| round | A/A ratio (95% interval) | A/A verdict |"
rule="|---:|---|---|"
for e in "${effect_list[@]}"; do header+=" +$e% ratio (95% interval) | +$e% verdict |"; rule+="---|---|"; detected[$e]=0; done
echo "$header" | tee -a "$out/table.md"
echo "$rule" | tee -a "$out/table.md"
started=$SECONDS
for i in $(seq 1 "$rounds"); do
    scripts/run-bench.sh "${matrix[@]}" --duration "$duration" --repeat "$pairs" "${sides[@]}" \
        --out "$out/$i" > "$out/$i.log" 2>&1 || echo "round $i: a run failed (see $out/$i.log)" >&2
    line="| $i |"
    if "$bench" compare --paired "$out/$i" --base-side base --head-side same > "$out/$i-aa.md"; then
        aa=ok
    else
        aa="FALSE ALARM"; false_alarms=$((false_alarms + 1))
    fi
    line+=" $(awk -F'|' 'NR == 3 { print $7 " (" $8 ")" }' "$out/$i-aa.md" | tr -s ' ') | $aa |"
    for e in "${effect_list[@]}"; do
        if "$bench" compare --paired "$out/$i" --base-side base --head-side "slow$e" > "$out/$i-ab$e.md"; then
            ab=missed
        else
            ab=detected; detected[$e]=$((detected[$e] + 1))
        fi
        line+=" $(awk -F'|' 'NR == 3 { print $7 " (" $8 ")" }' "$out/$i-ab$e.md" | tr -s ' ') | $ab |"
    done
    echo "$line" | tee -a "$out/table.md"
done
{
    echo
    summary="A/A false alarms: $false_alarms of $rounds"
    for e in "${effect_list[@]}"; do summary+="; +$e% detected: ${detected[$e]} of $rounds"; done
    echo "$summary ($((SECONDS - started)) s for $rounds rounds of $pairs pairs × $((2 + ${#effect_list[@]})) sides)"
} | tee -a "$out/table.md"
