#!/usr/bin/env bash
# Every committed summary comes back from what results/ keeps (issue #13): for each
# summary.md under results/, regenerate it in a copy of its directory and compare.
#
#   scripts/check-results.sh                      # binaries from target/release
#   scripts/check-results.sh --bin target/debug
#
# - a benchmark directory (runs.jsonl.gz): `wsport-bench report` of a copy must write
#   summary.md and plots/ byte for byte as committed (the same set of plots too). Of a
#   directory written by an older report (listed below with what changed since) the plots
#   must still come back byte for byte (but send-lag/'s, drawn before epoll-engine runs were
#   a scenario of their own) and the summary must count the same runs;
# - abuse/ (runs.jsonl.gz of scripts/lib/abuse.sh): `wsport-abuse summary` of a copy must
#   write summary.md as committed (skipped, and said, without the wsport-abuse binary);
# - any other summary.md (c-client/: written by scripts/c-client.sh during its run) is
#   listed as not regenerable, not failed;
# - results/ stays slim: no *.hlog, no runs.jsonl left unslimmed (scripts/slim-results.sh DIR
#   slims one).
# Run by scripts/test.sh; about a second of report per directory.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=target/release
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=$2; shift 2 ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -x "$bin/wsport-bench" ] || {
    echo "no $bin/wsport-bench: cargo build --release -p wsport-bench (or --bin DIR)" >&2
    exit 2
}

# Summaries written by an older report than today's: they were committed as that report wrote
# them and are not rewritten; today's report of the same runs differs in wording or columns,
# never in the runs read. older_plots: those whose plots differ too.
declare -A older_report=(
    [results/2026-11-22-vm/baseline]="before the syscalls/msg and msgs/wait columns"
    [results/2026-12-05-vm/uring]="before the syscalls/msg and msgs/wait columns"
    [results/2026-12-05-vm/uring-features]="before the syscalls/msg and msgs/wait columns"
    [results/2026-12-05-vm/send-lag]="before epoll-engine runs were a scenario of their own and the sweep plots"
    [results/2026-12-05-vm/load-axis]="before the verdict's and the sweep's current wording"
    [results/2026-12-05-vm/reference]="before the verdict's and the floor's current wording"
    [results/2026-12-06-vm/reference-fair-loops]="before the verdict ordered servers round by round"
    [results/2026-12-06-vm/spill-pool]="before the verdict ordered servers round by round"
)
declare -A older_plots=([results/2026-12-05-vm/send-lag]=1)

tmp=$(mktemp -d /tmp/wsport-check-results.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
pass() { echo "ok   $1"; }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }
note() { echo "--   $1"; }

# The first run of directory $1 (its runs.jsonl or runs.jsonl.gz), empty without one.
first_run() {
    if [ -f "$1/runs.jsonl" ]; then
        head -1 "$1/runs.jsonl"
    elif [ -f "$1/runs.jsonl.gz" ]; then
        # gzip stops on a closed pipe once head has its line: not a failure.
        gzip -dc "$1/runs.jsonl.gz" 2> /dev/null | head -1 || true
    fi
}

# The "N runs of M servers" line of a summary.
runs_line() { grep -m1 -o '^[0-9]* runs of [0-9]* servers' "$1" || true; }

n=0
while IFS= read -r summary; do
    dir=$(dirname "$summary")
    n=$((n + 1))
    copy="$tmp/$n"
    first=$(first_run "$dir")
    if grep -q '"schema":"wsport-bench/1"' <<< "$first"; then
        cp -r "$dir" "$copy"
        if ! "$bin/wsport-bench" report "$copy" > "$tmp/out" 2>&1; then
            fail "$dir: report failed: $(tail -1 "$tmp/out")"
            continue
        fi
        if [ -n "${older_report[$dir]:-}" ]; then
            if [ "$(runs_line "$copy/summary.md")" != "$(runs_line "$summary")" ]; then
                fail "$dir: report reads '$(runs_line "$copy/summary.md")', the summary says '$(runs_line "$summary")'"
            elif [ -n "${older_plots[$dir]:-}" ]; then
                pass "$dir: reads back whole ($(runs_line "$summary")); summary and plots by an older report (${older_report[$dir]}), not compared"
            elif diff -r -q "$dir/plots" "$copy/plots" > /dev/null 2>&1; then
                pass "$dir: plots regenerate byte for byte, all $(runs_line "$summary"); summary by an older report (${older_report[$dir]}), not compared"
            else
                fail "$dir: plots regenerate differently:"
                { diff -r -q "$dir/plots" "$copy/plots" || true; } | sed 's/^/       /' | head -10
            fi
        elif diff -r -q "$dir/summary.md" "$copy/summary.md" > /dev/null \
            && { [ ! -d "$dir/plots" ] && [ ! -d "$copy/plots" ] \
                || diff -r -q "$dir/plots" "$copy/plots" > /dev/null 2>&1; }; then
            pass "$dir: summary.md and plots regenerate byte for byte"
        else
            fail "$dir: regenerates differently:"
            { diff -r -q "$dir" "$copy" || true; } | sed 's/^/       /' | head -10
        fi
    elif grep -q '"mode":' <<< "$first"; then
        abuse=$bin/wsport-abuse
        [ -x "$abuse" ] || abuse=target/debug/wsport-abuse
        if [ ! -x "$abuse" ]; then
            note "$dir: no wsport-abuse binary (cargo build -p wsport-abuse): not checked"
            continue
        fi
        cp -r "$dir" "$copy"
        if "$abuse" summary "$copy" > /dev/null 2>&1 && cmp -s "$dir/summary.md" "$copy/summary.md"; then
            pass "$dir: summary.md (wsport-abuse summary) regenerates byte for byte"
        else
            fail "$dir: wsport-abuse summary regenerates differently"
        fi
    else
        note "$dir: summary.md not written by a report (no runs.jsonl): not regenerable here"
    fi
done < <(find results -name summary.md | sort)

# Slim: what scripts/slim-results.sh removes is not committed again.
while IFS= read -r f; do
    fail "$f: run scripts/slim-results.sh $(dirname "$f")"
done < <(find results -name '*.hlog' | sort | head -5)
while IFS= read -r f; do
    fail "$f: not slimmed: run scripts/slim-results.sh $(dirname "$f")"
done < <(find results -name runs.jsonl | sort)

[ "$n" -gt 0 ] || fail "no summary.md under results/"
if [ "$failures" -gt 0 ]; then
    echo "check-results: $failures failure(s)"
    exit 1
fi
echo "check-results: $n summaries checked"
