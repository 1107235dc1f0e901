#!/usr/bin/env bash
# Proves the regression gate (`wsport-bench compare`) on this host: N rounds, each measuring a
# baseline, the same commit again (A/A: any "slower" is a false alarm) and the same commit with
# an injected server slowdown (A/B: --debug-spin-per-message, hidden, off by default; a
# "slower" is a detection). Prints the counts; every directory and table stays in --out.
#
#   scripts/gate-proof.sh [--rounds 10] [--spin 700ns] [--out target/gate-proof] [--servers tokio]
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=10
spin="700ns"
out="target/gate-proof"
servers="tokio"
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds="$2"; shift ;;
        --spin) spin="$2"; shift ;;
        --out) out="$2"; shift ;;
        --servers) servers="$2"; shift ;;
        *) echo "gate-proof.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done
rm -rf "$out"
mkdir -p "$out"
matrix=(--servers "$servers" --scenarios echo --ports any --schemes ws --sizes 64 --conns 100 --duration 3s --warmup 1s --repeat 3)
false_alarms=0
detected=0
for i in $(seq 1 "$rounds"); do
    for kind in base same slow; do
        extra=()
        [ "$kind" = slow ] && extra=(--server-args "--debug-spin-per-message $spin")
        scripts/run-bench.sh "${matrix[@]}" "${extra[@]}" --out "$out/$i-$kind" > "$out/$i-$kind.log" 2>&1
    done
    if target/release/wsport-bench compare "$out/$i-base" "$out/$i-same" > "$out/$i-aa.md"; then aa=ok; else aa="FALSE ALARM"; false_alarms=$((false_alarms + 1)); fi
    if target/release/wsport-bench compare "$out/$i-base" "$out/$i-slow" > "$out/$i-ab.md"; then ab=missed; else ab=detected; detected=$((detected + 1)); fi
    echo "round $i: A/A $aa ($(awk -F'|' 'NR==3 {print $6}' "$out/$i-aa.md" | xargs)), A/B $ab ($(awk -F'|' 'NR==3 {print $6}' "$out/$i-ab.md" | xargs))"
done
echo "A/A false alarms: $false_alarms of $rounds; A/B ($spin per message) detected: $detected of $rounds"
