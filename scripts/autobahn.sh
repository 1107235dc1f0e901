#!/usr/bin/env bash
# Autobahn-style conformance run (wsport-autobahn) against every wsport echo server, ws and wss.
#
#   scripts/autobahn.sh [--servers LIST] [--cases PATTERNS] [--out DIR] [--jobs N]
#
#   --servers LIST    comma-separated configs (default: all whose package exists):
#                     tokio, tokio-multi, tokio-uring, monoio-uring, monoio-epoll, uring,
#                     uring-basic
#   --cases PATTERNS  passed to wsport-autobahn --cases (e.g. 1.*,6.4.*,H.*); default all
#   --out DIR         reports go to DIR/<config>/{index.json,index.md,run.log}
#                     (default target/autobahn)
#   --jobs N          cases run in parallel per URL (wsport-autobahn's default: 4)
#
# Each server is started on ws://127.0.0.1:0 and wss://127.0.0.1:0 (self-signed certificate)
# with --handshake-timeout 2s, its `listening URL` lines give the ports, wsport-autobahn runs
# against both URLs with --insecure, and the server is stopped by its own PID. Exit status 1
# if any case FAILED or a server did not start (an io_uring server that reports io_uring as
# unavailable is marked "unavailable" and does not fail the run).
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_CONFIGS="tokio,tokio-multi,tokio-uring,monoio-uring,monoio-epoll,uring,uring-basic"
servers=""
cases=""
out="target/autobahn"
jobs=""

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --servers) servers="${2:?--servers needs a list}"; shift 2 ;;
        --cases) cases="${2:?--cases needs patterns}"; shift 2 ;;
        --out) out="${2:?--out needs a directory}"; shift 2 ;;
        --jobs) jobs="${2:?--jobs needs a number}"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "autobahn.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

# config -> package and server flags.
package_of() {
    case "$1" in
        tokio | tokio-multi) echo wsport-tokio ;;
        tokio-uring) echo wsport-tokio-uring ;;
        monoio-uring | monoio-epoll) echo wsport-monoio ;;
        uring | uring-basic) echo wsport-uring ;;
        *) return 1 ;;
    esac
}
flags_of() {
    case "$1" in
        tokio-multi) echo "--flavor multi" ;;
        monoio-uring) echo "--driver uring" ;;
        monoio-epoll) echo "--driver epoll" ;;
        uring-basic) echo "--no-multishot-accept --no-buffer-ring --no-registered-files --no-defer-taskrun --no-batch-submit" ;;
        *) echo "" ;;
    esac
}
uses_io_uring() { [[ "$1" == tokio-uring || "$1" == monoio-uring || "$1" == uring* ]]; }

# Packages of this workspace, from cargo itself.
workspace_packages=$(cargo metadata --no-deps --format-version 1 |
    grep -o '"name":"wsport-[a-z0-9-]*"' | sed 's/"name":"\(.*\)"/\1/' | sort -u)
has_package() { grep -qx "$1" <<<"$workspace_packages"; }

explicit_servers=true
if [[ -z "$servers" ]]; then
    servers="$ALL_CONFIGS"
    explicit_servers=false
fi

configs=()
build_packages=(wsport-autobahn)
IFS=',' read -r -a requested <<<"$servers"
for config in "${requested[@]}"; do
    if ! package=$(package_of "$config"); then
        echo "autobahn.sh: unknown server config '$config' (known: $ALL_CONFIGS)" >&2
        exit 2
    fi
    if ! has_package "$package"; then
        echo "note: skipping $config: package $package is not in the workspace yet"
        if $explicit_servers; then
            echo "autobahn.sh: --servers asked for $config" >&2
            exit 2
        fi
        continue
    fi
    configs+=("$config")
    [[ " ${build_packages[*]} " == *" $package "* ]] || build_packages+=("$package")
done
if [[ ${#configs[@]} -eq 0 ]]; then
    echo "autobahn.sh: no server to test" >&2
    exit 2
fi

echo "building (release): wsport-autobahn"
cargo build --release -p wsport-autobahn
# Servers one package at a time: one that does not build fails its configs, not the others.
declare -A build_failed
for p in "${build_packages[@]:1}"; do
    echo "building (release): $p"
    if ! cargo build --release -p "$p"; then
        echo "note: $p did not build; its configs are marked BUILD FAILED"
        build_failed[$p]=1
    fi
done

target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin_dir="${target_dir:-target}/release"
runner="$bin_dir/wsport-autobahn"

server_pid=""
stop_server() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=""
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

mkdir -p "$out"
declare -A status table
failed=0

for config in "${configs[@]}"; do
    package=$(package_of "$config")
    dir="$out/$config"
    rm -rf "$dir"
    mkdir -p "$dir"
    if [[ -n "${build_failed[$package]:-}" ]]; then
        status[$config]="BUILD FAILED ($package)"
        failed=1
        continue
    fi
    echo
    echo "=== $config: $package $(flags_of "$config")"
    # Created here, not by the background job's redirection, which may come after the first
    # look for the `listening` lines below.
    : >"$dir/server.out"
    # shellcheck disable=SC2046 # the flags are meant to split
    "$bin_dir/$package" $(flags_of "$config") \
        --listen ws://127.0.0.1:0 --listen wss://127.0.0.1:0 --handshake-timeout 2s \
        >"$dir/server.out" 2>"$dir/server.err" &
    server_pid=$!

    ws_url=""
    wss_url=""
    for _ in $(seq 100); do
        ws_url=$(sed -n 's/^listening \(ws:\/\/.*\)$/\1/p' "$dir/server.out" | head -n1)
        wss_url=$(sed -n 's/^listening \(wss:\/\/.*\)$/\1/p' "$dir/server.out" | head -n1)
        [[ -n "$ws_url" && -n "$wss_url" ]] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z "$ws_url" || -z "$wss_url" ]]; then
        code="running"
        if ! kill -0 "$server_pid" 2>/dev/null; then
            wait "$server_pid" 2>/dev/null && code=0 || code=$?
        fi
        stop_server
        echo "server did not announce ws:// and wss:// listeners (exit status: $code); its stderr:"
        sed 's/^/    /' "$dir/server.err"
        if uses_io_uring "$config" && grep -qi "io_uring\|io-uring" "$dir/server.err"; then
            status[$config]="unavailable (io_uring: see $dir/server.err)"
        else
            status[$config]="DID NOT START (see $dir/server.err)"
            failed=1
        fi
        continue
    fi

    runner_args=(--url "$ws_url" --url "$wss_url" --insecure --report "$dir")
    [[ -n "$cases" ]] && runner_args+=(--cases "$cases")
    [[ -n "$jobs" ]] && runner_args+=(--jobs "$jobs")
    rc=0
    "$runner" "${runner_args[@]}" 2>&1 | tee "$dir/run.log" || rc=$?
    stop_server
    # "ws://127.0.0.1:1234: 323 cases, 319 OK, 0 NON-STRICT, 4 INFORMATIONAL, 0 FAILED"
    # -> "ws 323 319 0 4 0"
    rows=$(grep -E '^wss?://[^ ]+: [0-9]+ cases,' "$dir/run.log" | sort -u | sed -E \
        's#^(wss?)://[^ ]*: ([0-9]+) cases, ([0-9]+) OK, ([0-9]+) NON-STRICT, ([0-9]+) INFORMATIONAL, ([0-9]+) FAILED$#\1 \2 \3 \4 \5 \6#' || true)
    case "$rc" in
        0) verdict="pass" ;;
        1) verdict="FAIL"; failed=1 ;;
        *) verdict="ERROR (wsport-autobahn exit $rc; see $dir/run.log)"; failed=1 ;;
    esac
    status[$config]="$verdict"
    table[$config]="$rows"
done

echo
echo "Autobahn-style conformance (reports in $out/<config>/index.md)"
printf '  %-13s %-4s %6s %6s %11s %6s %7s  %s\n' config url cases OK NON-STRICT INFO FAILED result
for config in "${configs[@]}"; do
    if [[ -z "${table[$config]:-}" ]]; then
        printf '  %-13s %-4s %6s %6s %11s %6s %7s  %s\n' "$config" - - - - - - "${status[$config]}"
        continue
    fi
    while read -r url n ok ns info fail; do
        printf '  %-13s %-4s %6s %6s %11s %6s %7s  %s\n' "$config" "$url" "$n" "$ok" "$ns" "$info" "$fail" "${status[$config]}"
    done <<<"${table[$config]}"
done
exit "$failed"
