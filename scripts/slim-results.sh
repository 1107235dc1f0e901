#!/usr/bin/env bash
# Slim a benchmark directory before it is committed (issue #13): what `wsport-bench report`
# reads is kept whole, the rest of the bulk goes.
#
#   scripts/slim-results.sh results/<date>-<host>/<name> [DIR...]
#   scripts/slim-results.sh --bin target/release DIR      # where wsport-bench is
#
# Per directory (one that scripts/run-bench.sh left: runs.jsonl, *.hlog, summary.md, plots;
# or its abuse/ directory, whose runs.jsonl `wsport-abuse summary` reads):
# - runs.jsonl -> runs.jsonl.gz (gzip -9n: the same bytes, uncompressed; about half the
#   size, since the histograms' base64 is most of a line). Every field stays: the report,
#   `compare` and `wsport-abuse summary` read the gzipped file as they read the plain one
#   (bench-report/src/runs.rs, abuse/src/main.rs).
# - *.hlog removed: the per-second interval logs. runs.jsonl keeps each run's whole-window
#   histograms (the ones the report merges and plots) and its per-second figures
#   (`intervals`: messages, p50, p99, max); only the per-second histograms go.
# - nothing else: summary.md, plots, README.md and a failed run's *.txt and server logs stay.
#
# It first proves the slimmed directory reports the same: `report` (abuse/: `wsport-abuse
# summary`) of a copy before and of a slimmed copy after must write byte-identical summary.md
# and plots, and runs.jsonl.gz must uncompress to runs.jsonl byte for byte; only then is the
# directory itself changed. scripts/check-results.sh checks every committed directory.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=target/release
dirs=()
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=$2; shift 2 ;;
        -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) dirs+=("$1"); shift ;;
    esac
done
[ "${#dirs[@]}" -gt 0 ] || { echo "usage: $0 [--bin DIR] RESULT_DIR..." >&2; exit 2; }
[ -x "$bin/wsport-bench" ] || {
    echo "no $bin/wsport-bench: cargo build --release -p wsport-bench (or --bin DIR)" >&2
    exit 2
}
[ -x "$bin/wsport-abuse" ] || [ -x target/debug/wsport-abuse ] || echo "note: no wsport-abuse binary: abuse/ directories are left as they are" >&2
command -v gzip > /dev/null || { echo "gzip not found" >&2; exit 2; }

tmp=$(mktemp -d /tmp/wsport-slim.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# What the report of kind $3 (bench|abuse) writes, of directory $1, into a copy $2.
report_into() {
    local src=$1 dst=$2 kind=$3 cmd
    rm -rf "$dst" && cp -r "$src" "$dst"
    if [ "$kind" = abuse ]; then
        cmd=("$abuse" summary "$dst")
    else
        cmd=("$bin/wsport-bench" report "$dst")
    fi
    "${cmd[@]}" > "$tmp/report.out" 2>&1 || {
        cat "$tmp/report.out" >&2
        return 1
    }
}

# Slim directory $1 in place (no checks).
slim_in_place() {
    local d=$1
    gzip -9 -n -c "$d/runs.jsonl" > "$d/runs.jsonl.gz"
    rm -f "$d/runs.jsonl"
    find "$d" -maxdepth 1 -name '*.hlog' -delete
}

status=0
for dir in "${dirs[@]}"; do
    dir=${dir%/}
    if [ ! -f "$dir/runs.jsonl" ]; then
        if [ -f "$dir/runs.jsonl.gz" ]; then
            echo "$dir: already slim"
        else
            echo "$dir: no runs.jsonl: not a benchmark directory" >&2
            status=1
        fi
        continue
    fi
    if compgen -G "$dir/*.json" > /dev/null; then
        echo "$dir: *.json beside runs.jsonl: run \`wsport-bench report $dir\` first (run-bench.sh removes them after it)" >&2
        status=1
        continue
    fi
    first=$(head -1 "$dir/runs.jsonl")
    if grep -q '"schema":"wsport-bench/1"' <<< "$first"; then
        kind=bench
    elif grep -q '"mode":' <<< "$first"; then
        kind=abuse
        abuse=$bin/wsport-abuse
        [ -x "$abuse" ] || abuse=target/debug/wsport-abuse
        if [ ! -x "$abuse" ]; then
            echo "$dir: abuse runs and no wsport-abuse binary (cargo build --release -p wsport-abuse): left as it is" >&2
            status=1
            continue
        fi
    else
        echo "$dir: runs.jsonl of neither wsport-bench nor scripts/lib/abuse.sh: left as it is" >&2
        status=1
        continue
    fi
    before_files=$(find "$dir" -type f | wc -l)
    before_bytes=$(du -sb "$dir" | cut -f1)
    rm -rf "$tmp/before" "$tmp/after"
    report_into "$dir" "$tmp/before" "$kind"
    cp -r "$dir" "$tmp/slim"
    slim_in_place "$tmp/slim"
    if ! gzip -dc "$tmp/slim/runs.jsonl.gz" | cmp -s - "$dir/runs.jsonl"; then
        echo "$dir: runs.jsonl.gz does not uncompress to runs.jsonl: left as it is" >&2
        status=1
        rm -rf "$tmp/slim"
        continue
    fi
    report_into "$tmp/slim" "$tmp/after" "$kind"
    rm -rf "$tmp/slim"
    # Everything but the slimmed files is the same: summary.md, plots, READMEs, logs.
    if ! diff -r -q -x runs.jsonl -x runs.jsonl.gz -x '*.hlog' "$tmp/before" "$tmp/after" > /dev/null; then
        echo "$dir: the slimmed directory reports differently: left as it is" >&2
        diff -r -q -x runs.jsonl -x runs.jsonl.gz -x '*.hlog' "$tmp/before" "$tmp/after" >&2 || true
        status=1
        continue
    fi
    slim_in_place "$dir"
    echo "$dir: $before_files files, $before_bytes bytes -> $(find "$dir" -type f | wc -l) files, $(du -sb "$dir" | cut -f1) bytes (report unchanged)"
done
exit "$status"
