#!/usr/bin/env bash
# Fails when the top-level modules of any crate of the workspace import each other in a
# cycle (DESIGN.md: "No module imports its caller"), or when the load generator's library
# imports its reports (only the wsport-bench binary, bench-client/src/main.rs, calls them).
#
#   scripts/check-module-cycles.sh              check every lib and bin crate of the workspace
#   scripts/check-module-cycles.sh --self-test  prove the checker can fail: each fixture of
#                                               scripts/module-cycles-fixtures/cycle-* must be
#                                               refused and clean/ accepted
#
# The checker is scripts/module-cycles.rs, compiled here with rustc alone (no dependencies).
# Exit 0: no cycle; 1: a cycle (each printed with the lines that make it); 2: usage or build.
set -euo pipefail
cd "$(dirname "$0")/.."

checker=target/module-cycles/module-cycles
mkdir -p "$(dirname "$checker")"
if [ ! -x "$checker" ] || [ scripts/module-cycles.rs -nt "$checker" ]; then
    rustc --edition 2021 -O -o "$checker" scripts/module-cycles.rs || exit 2
fi

self_test() {
    local fixtures=scripts/module-cycles-fixtures failed=0 dir out
    for dir in "$fixtures"/cycle-*/; do
        if out=$("$checker" "${dir%/}/lib.rs" 2>&1); then
            echo "self-test: $dir has a cycle the checker missed" >&2
            failed=1
        elif ! grep -q "^module cycle in" <<< "$out"; then
            echo "self-test: $dir: the checker failed without naming a cycle: $out" >&2
            failed=1
        fi
    done
    if ! out=$("$checker" "$fixtures/clean/lib.rs" 2>&1); then
        echo "self-test: clean/ has no cycle, the checker says: $out" >&2
        failed=1
    fi
    [ "$failed" = 0 ] && echo "module-cycles self-test: every cycle fixture refused, clean/ accepted"
    return "$failed"
}

case "${1:-}" in
    --self-test) self_test; exit ;;
    "") ;;
    *) echo "check-module-cycles.sh: unknown argument '$1' (--self-test or nothing)" >&2; exit 2 ;;
esac

# The root file of every lib and bin target of the workspace's packages.
mapfile -t roots < <(cargo metadata --no-deps --format-version 1 \
    | grep -oE '"kind":\["(lib|bin|rlib|proc-macro)"\][^}]*"src_path":"[^"]*"' \
    | grep -oE '"src_path":"[^"]*"' | cut -d'"' -f4)
if [ "${#roots[@]}" = 0 ]; then
    echo "check-module-cycles.sh: cargo metadata listed no crate" >&2
    exit 2
fi
status=0
"$checker" "${roots[@]}" || status=$?

# The generator writes run records and the reports read them: no generator module may name
# the reports crate (bench-client/src/main.rs, the binary, is the one place that calls both).
if imports=$(grep -rn --include='*.rs' 'wsport_bench_report' bench-client/src \
    | grep -v '^bench-client/src/main.rs:'); then
    echo "the generator imports its reports (only bench-client/src/main.rs may):" >&2
    echo "$imports" >&2
    status=1
fi
exit "$status"
