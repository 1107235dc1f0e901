#!/usr/bin/env bash
# Fuzz the core's decoders and the server session with cargo-fuzz (libFuzzer), one target at a
# time, and print a Markdown record of what each run did.
#
#   scripts/fuzz.sh [--minutes N | --seconds S] [--target T]... [--record FILE] [--list]
#
#   --minutes N    total time, shared equally by the targets run (default 10)
#   --seconds S    time for each target instead (CI's smoke: --seconds 30)
#   --target T     run only target T (repeatable); --list names them
#   --record FILE  also write the record there (default: <repo>/target/fuzz/record.md)
#   --list         print the targets, one per line, and exit
#
# Targets live in two cargo-fuzz crates: core/fuzz (handshake, frame, unmask, utf8, echo,
# client) and servers/common/fuzz (session). Each run starts from the committed seeds
# (<crate>/fuzz/seeds/<target>/) and grows a working corpus under target/fuzz/corpus/<target>/,
# kept between runs and never committed.
#
# Needs the nightly toolchain (cargo-fuzz builds with -Zsanitizer): without it the script says
# so in one line and exits 0, so that CI without nightly skips rather than fails. Installs
# cargo-fuzz with `cargo install --locked` when it is missing. Fuzzing runs under `nice -n 19`,
# one process at a time, so a shared host's benchmarks keep their cores.
#
# The record gives, per target, the wall and CPU seconds, the executions, the coverage libFuzzer
# reached (cov: edges, ft: features) and the crashes, and their totals. A crash leaves its input in <crate>/fuzz/artifacts/<target>/; the
# script goes on with the other targets and exits 1 at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

minutes="10"
seconds=""
targets=()
record="$repo/target/fuzz/record.md"
list_only=""

# The comment block at the top of this file is the help.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --minutes) minutes="${2:?--minutes needs a number}"; shift 2 ;;
        --seconds) seconds="${2:?--seconds needs a number}"; shift 2 ;;
        --target) targets+=("${2:?--target needs a name (see --list)}"); shift 2 ;;
        --record) record="${2:?--record needs a file}"; shift 2 ;;
        --list) list_only=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "fuzz.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
for number in "$minutes" "${seconds:-1}"; do
    if [[ ! "$number" =~ ^[0-9]+$ || "$number" -eq 0 ]]; then
        echo "fuzz.sh: --minutes and --seconds take a whole number above 0, not '$number'" >&2
        exit 2
    fi
done

# --- targets --------------------------------------------------------------------------------
# The crate directory (where `cargo fuzz` runs) of each target, read from the fuzz manifests.
crates=(core servers/common)
declare -A crate_of
for crate in "${crates[@]}"; do
    for name in $(awk -F'"' '/^name = / && seen { print $2 } /^\[\[bin\]\]/ { seen = 1 }' \
        "$crate/fuzz/Cargo.toml"); do
        crate_of[$name]=$crate
    done
done
all=()
for crate in "${crates[@]}"; do
    for name in "${!crate_of[@]}"; do
        if [[ "${crate_of[$name]}" == "$crate" ]]; then all+=("$name"); fi
    done
done
mapfile -t all < <(printf '%s\n' "${all[@]}" | sort)
if [[ -n "$list_only" ]]; then printf '%s\n' "${all[@]}"; exit 0; fi
if [[ ${#targets[@]} -eq 0 ]]; then targets=("${all[@]}"); fi
for target in "${targets[@]}"; do
    if [[ -z "${crate_of[$target]:-}" ]]; then
        echo "fuzz.sh: no fuzz target '$target'; the targets are: ${all[*]}" >&2
        exit 2
    fi
done
if [[ -z "$seconds" ]]; then seconds=$((minutes * 60 / ${#targets[@]})); fi
if [[ "$seconds" -lt 1 ]]; then seconds=1; fi

# --- toolchain ------------------------------------------------------------------------------
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: skipped: no nightly toolchain (cargo-fuzz needs it; rustup toolchain install nightly)"
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz (cargo install --locked; a one-off build of about 2 minutes)" >&2
    env -u CARGO_TARGET_DIR cargo install cargo-fuzz --locked --quiet
fi

# -O: optimised like the servers; -a: with debug assertions and overflow checks, so an
# arithmetic slip is a crash rather than a silently wrong length.
build_flags=(-O -a)
for crate in $(for t in "${targets[@]}"; do echo "${crate_of[$t]}"; done | sort -u); do
    echo "fuzz.sh: building the $crate fuzz targets ($(cargo +nightly --version))" >&2
    (cd "$crate" && nice -n 19 cargo +nightly fuzz build "${build_flags[@]}" >&2)
done

# --- record ---------------------------------------------------------------------------------
# One table row from a libFuzzer log: its final stats (-print_final_stats=1) give the
# executions, its last status line the coverage: `cov:` edges and `ft:` features reached.
stats_row() {
    local target=$1 log=$2 crashes=$3 corpus=$4
    awk -v target="$target" -v crashes="$crashes" -v corpus="$(find "$corpus" -type f | wc -l)" '
        /cov: [0-9]+ ft: [0-9]+/ {
            for (i = 1; i < NF; i++) { if ($i == "cov:") cov = $(i + 1); if ($i == "ft:") ft = $(i + 1) }
        }
        /^Done [0-9]+ runs in [0-9]+ second/ { secs = $5 }
        /^stat::number_of_executed_units:/ { execs = $2 }
        /^stat::average_exec_per_sec:/ { rate = $2 }
        /^stat::peak_rss_mb:/ { rss = $2 }
        # `times`: the shell, then its children (user and system), as 1m2.345s.
        /^[0-9]+m[0-9.]+s [0-9]+m[0-9.]+s$/ { children = $0 }
        END {
            split(children, t, /[ms ]+/)
            cpu = children == "" ? "-" : sprintf("%.0f", t[1] * 60 + t[2] + t[3] * 60 + t[4])
            printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", target,
                secs == "" ? "-" : secs, cpu, execs == "" ? "-" : execs, rate == "" ? "-" : rate,
                cov == "" ? "-" : cov, ft == "" ? "-" : ft, corpus, rss == "" ? "-" : rss, crashes)
        }' "$log"
}

# --- run ------------------------------------------------------------------------------------
work="$repo/target/fuzz"
mkdir -p "$work/logs" "$(dirname "$record")"
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then commit+=" (dirty)"; fi
rows=()
failed=0
for target in "${targets[@]}"; do
    crate=${crate_of[$target]}
    corpus="$work/corpus/$target"
    seeds="$repo/$crate/fuzz/seeds/$target"
    artifacts="$repo/$crate/fuzz/artifacts/$target"
    log="$work/logs/$target.log"
    mkdir -p "$corpus" "$seeds" "$artifacts"
    # libFuzzer also writes `slow-unit-*` files: inputs that took long (wall clock), not
    # failures; a fuzzer paused or starved on a shared host writes them. Only crash-, leak-,
    # timeout- and oom- inputs count.
    failures() { find "$artifacts" -type f ! -name 'slow-unit-*' | wc -l; }
    before=$(failures)
    echo "fuzz.sh: $target for $seconds s (log: $log)" >&2
    status=0
    # New inputs go to the first corpus directory, so the committed seeds stay as they are.
    # `times` ends the log with the CPU the run really got: at nice 19 on a shared host it
    # can be far less than the wall time. libFuzzer's -timeout is wall-clock, so it is set
    # far above any input's real cost (the slowest seen: 0.1 s): at 10 s, an input that took
    # 0.1 s alone was reported as a hang while the fuzzer got 16% of a core.
    (cd "$crate" && nice -n 19 cargo +nightly fuzz run "${build_flags[@]}" "$target" \
        "$corpus" "$seeds" -- -max_total_time="$seconds" -print_final_stats=1 -timeout=120 \
        -rss_limit_mb=2048 || exit; times) >"$log" 2>&1 || status=$?
    crashes=$(($(failures) - before))
    if [[ "$status" -ne 0 && "$crashes" -eq 0 ]]; then crashes=1; fi
    if [[ "$crashes" -gt 0 ]]; then
        failed=1
        tail -n 30 "$log" >&2
        echo "fuzz.sh: $target CRASHED (exit $status); inputs in $artifacts" >&2
    fi
    rows+=("$(stats_row "$target" "$log" "$crashes" "$corpus")")
done

{
    echo "Fuzzing record: $(date -u +%Y-%m-%dT%H:%MZ), host $(uname -n), commit $commit"
    echo
    echo "$(cargo +nightly --version), cargo-fuzz $(cargo fuzz --version | awk '{ print $2 }')," \
        "libFuzzer under ASan, build flags ${build_flags[*]}, nice -n 19, one process at a time."
    echo "Command: scripts/fuzz.sh --seconds $seconds$(printf ' --target %s' "${targets[@]}")"
    echo
    echo "| target | seconds | CPU s | executions | exec/s | cov (edges) | ft (features) | corpus | peak RSS MB | crashes |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
    printf '%s\n' "${rows[@]}" | awk -F'|' '
        { secs += $3; cpu += $4; execs += $5; crashes += $11 }
        END { printf("| **total** | %d | %d | %d | | | | | | %d |\n", secs, cpu, execs, crashes) }'
} | tee "$record"
exit "$failed"
