#!/usr/bin/env bash
# Instruction counts of wsport-core's hot paths under Callgrind (core/benches/icount.rs, run by
# gungraun): a regression signal with no timing noise, the same on every run of the same build.
#
#   scripts/icount.sh [--save-baseline NAME] [--baseline NAME] [--limit PCT] [FILTER]
#
#   --save-baseline NAME  also store this run's counts as baseline NAME (e.g. on the base commit)
#   --baseline NAME       compare with baseline NAME (it must exist) and exit 3 when a benchmark's
#                         instruction count grew by more than --limit
#   --limit PCT           regression limit for --baseline, in percent (default 5)
#   FILTER                run only the matching benchmarks, e.g. 'icount::unmask::*'
#
# Without --baseline each run is compared with the previous one, for information only.
# Baselines are kept under $GUNGRAUN_HOME (default <cargo target dir>/gungraun); set it to the
# same directory to compare runs made in two checkouts (CI: base and head worktrees).
#
# Needs valgrind: when missing it is installed with apt-get, non-interactively (as root or
# through sudo). Needs gungraun-runner of exactly the version of the gungraun library in
# Cargo.lock: when missing or of another version it is built with `cargo install --locked`
# into $CARGO_HOME/bin (a one-off build of 2 to 3.5 minutes on 2 cores).
#
# Prints a Markdown table of the counts (fit for $GITHUB_STEP_SUMMARY); gungraun's own report
# is kept in <cargo target dir>/icount/gungraun.log.
set -euo pipefail
cd "$(dirname "$0")/.."

save_baseline=""
baseline=""
limit="5"
filter=""

# The comment block at the top of this file is the help.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --save-baseline) save_baseline="${2:?--save-baseline needs a name}"; shift 2 ;;
        --baseline) baseline="${2:?--baseline needs a name}"; shift 2 ;;
        --limit) limit="${2:?--limit needs a percentage}"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "icount.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
        *) filter="$1"; shift ;;
    esac
done
if [[ ! "$limit" =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
    echo "icount.sh: --limit takes a percentage such as 5 or 0.5, not '$limit'" >&2
    exit 2
fi

# --- valgrind -------------------------------------------------------------------------------
if ! command -v valgrind >/dev/null; then
    if ! command -v apt-get >/dev/null; then
        echo "icount.sh: valgrind is not installed and there is no apt-get here: install valgrind" \
            "with your package manager" >&2
        exit 1
    fi
    sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then sudo=(sudo); fi
    echo "icount.sh: valgrind not found; installing it with apt-get (non-interactive)" >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # No recommends: they pull in gdb; Debian's valgrind depends on libc6-dbg, which it needs.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends valgrind >/dev/null
fi

# --- gungraun-runner of the library's exact version -------------------------------------------
# `cargo metadata` brings Cargo.lock up to date (and names the target directory) first.
metadata=$(cargo metadata --format-version 1)
target_dir=$(grep -o '"target_directory":"[^"]*"' <<<"$metadata" | cut -d'"' -f4)
version=$(awk '/^name = "gungraun"$/ { getline; gsub(/^version = "|"$/, ""); print; exit }' \
    Cargo.lock)
if [[ -z "$version" ]]; then
    echo "icount.sh: no gungraun package in Cargo.lock (is core/Cargo.toml's dev-dependency gone?)" >&2
    exit 1
fi
runner_ok() { [[ -x "$1" && "$("$1" --version 2>/dev/null)" == "gungraun-runner $version" ]]; }
runner="${GUNGRAUN_RUNNER:-$(command -v gungraun-runner || true)}"
if ! runner_ok "$runner"; then
    runner="${CARGO_HOME:-$HOME/.cargo}/bin/gungraun-runner"
    if ! runner_ok "$runner"; then
        echo "icount.sh: installing gungraun-runner $version (cargo install --locked;" \
            "a one-off build of a few minutes)" >&2
        started=$SECONDS
        # Build in cargo's own temporary directory, not in this workspace's target dir.
        env -u CARGO_TARGET_DIR cargo install gungraun-runner --version "$version" --locked --quiet
        echo "icount.sh: gungraun-runner $version installed in $((SECONDS - started)) s" >&2
        runner_ok "$runner" || { echo "icount.sh: $runner is not gungraun-runner $version" >&2; exit 1; }
    fi
fi
export GUNGRAUN_RUNNER="$runner"

# --- run -------------------------------------------------------------------------------------
home="${GUNGRAUN_HOME:-$target_dir/gungraun}"
args=()
if [[ -n "$baseline" ]]; then
    # gungraun silently saves a missing --baseline instead of comparing: refuse that, or a
    # CI job whose base run failed would pass without comparing anything.
    if [[ -z "$(find "$home" -name "*.base@$baseline" -print -quit 2>/dev/null)" ]]; then
        echo "icount.sh: no baseline '$baseline' under $home;" \
            "make one first with --save-baseline $baseline" >&2
        exit 1
    fi
    args+=("--baseline=$baseline" "--callgrind-limits=ir=$limit%")
fi
if [[ -n "$save_baseline" ]]; then args+=("--save-baseline=$save_baseline"); fi
if [[ -n "$filter" ]]; then args+=("$filter"); fi

mkdir -p "$target_dir/icount"
log="$target_dir/icount/gungraun.log"
status=0
GUNGRAUN_COLOR=never cargo bench -p wsport-core --bench icount -- "${args[@]}" >"$log" 2>&1 \
    || status=$?
if ! grep -q '^Gungraun result:' "$log"; then
    # A build or runner failure, not a measurement: show why.
    tail -n 40 "$log" >&2
    echo "icount.sh: the benchmark did not run (exit $status); full output in $log" >&2
    exit $(( status == 0 ? 1 : status ))
fi

# --- report ----------------------------------------------------------------------------------
# gungraun prints, per benchmark, `icount::GROUP::FUNCTION ID:(ARGS)` and then
# `  Instructions:  NEW|OLD  (CHANGE)`, with OLD `N/A` when there is nothing to compare with.
if [[ -n "$baseline" ]]; then against="baseline $baseline"; else against="previous run"; fi
echo
echo "Instruction counts (Callgrind, valgrind $(valgrind --version | sed 's/^valgrind-//')," \
    "gungraun $version, $(rustc --version | cut -d' ' -f1-2), $(uname -m))"
echo
awk -v against="$against" '
    function row(a, b, c, d) { printf("| %-44s | %14s | %14s | %14s |\n", a, b, c, d) }
    { gsub(/\033\[[0-9;]*m/, "") }
    /^icount::/ {
        bench = $1; sub(/^icount::/, "", bench)
        id = $2; sub(/:.*/, "", id)
        bench = bench " " id
        next
    }
    /^  Instructions:/ {
        split($2, v, "|")
        # "(No change)", or "(+172.785%) [+2.72785x]": keep the percentage.
        change = $0; sub(/^[^(]*\(/, "", change); sub(/\).*$/, "", change)
        if (v[2] == "N/A") { v[2] = "-"; change = "-" }
        n++; name[n] = bench; new[n] = v[1]; old[n] = v[2]; diff[n] = change
        next
    }
    /Performance has regressed:/ { sub(/^[[:space:]]*/, ""); regressed[++r] = bench ": " $0 }
    /^Gungraun result:/ { result = $0 }
    END {
        row("benchmark", "instructions", against, "change")
        dashes = "----------------------------------------------"
        printf("|%s|%s:|%s:|%s:|\n", dashes, substr(dashes, 1, 15), substr(dashes, 1, 15),
            substr(dashes, 1, 15))
        for (i = 1; i <= n; i++) row(name[i], new[i], old[i], diff[i])
        print ""
        for (i = 1; i <= r; i++) print "REGRESSION " regressed[i]
        print result
    }
' "$log"
echo "(gungraun's full report: $log)"
exit "$status"
