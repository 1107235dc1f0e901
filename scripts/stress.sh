#!/usr/bin/env bash
# Stress test (issue 3): N connections (half ws, half wss) echoing continuously against each
# server config, clients killed mid-frame at random (~5/s), then: no leaked connections or
# file descriptors, no stalled connection, clean exit on SIGTERM.
#
#   scripts/stress.sh [--servers LIST]
#
#   --servers LIST    comma-separated configs (default: every config whose package builds):
#                     tokio, tokio-multi, tokio-uring, monoio-uring, monoio-epoll, uring,
#                     uring-basic
#
#   WSPORT_STRESS_SECS   load time per config in seconds (default 60)
#   WSPORT_STRESS_CONNS  connections per config (default 1000)
#
# Builds the release servers (a package that fails to build is skipped with a note), then runs
# conformance/suite/tests/stress.rs (`#[ignore]`d in plain `cargo test`) in release mode.
# io_uring configs are skipped, with the reason, where io_uring is unavailable. Exit status:
# the test's. A table of echoes, kills, descriptors before/peak/after, connections_open after
# and the longest echo gap per config is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_CONFIGS="tokio,tokio-multi,tokio-uring,monoio-uring,monoio-epoll,uring,uring-basic"
servers=""

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --servers) servers="${2:?--servers needs a list}"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "stress.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

package_of() {
    case "$1" in
        tokio | tokio-multi) echo wsport-tokio ;;
        tokio-uring) echo wsport-tokio-uring ;;
        monoio-uring | monoio-epoll) echo wsport-monoio ;;
        uring | uring-basic) echo wsport-uring ;;
        *) echo "stress.sh: unknown server config '$1'; known: $ALL_CONFIGS" >&2; return 1 ;;
    esac
}

IFS=',' read -r -a wanted <<<"${servers:-$ALL_CONFIGS}"
packages=()
for config in "${wanted[@]}"; do
    package="$(package_of "$config")" || exit 2
    [[ " ${packages[*]} " == *" $package "* ]] || packages+=("$package")
done

# Build each package on its own, so one that does not build costs only its own configs (an
# old binary left in target/release must not stand in for it: WSPORT_SERVERS names exactly
# the configs built now).
built=()
for package in "${packages[@]}"; do
    if cargo build --release -p "$package"; then
        built+=("$package")
    else
        echo "stress.sh: NOTE: $package does not build; skipping its configs" >&2
    fi
done
configs=()
for config in "${wanted[@]}"; do
    package="$(package_of "$config")"
    if [[ " ${built[*]} " == *" $package "* ]]; then
        configs+=("$config")
    fi
done
if [[ ${#configs[@]} -eq 0 ]]; then
    echo "stress.sh: no server config left to run" >&2
    exit 1
fi

export WSPORT_SERVERS
WSPORT_SERVERS="$(IFS=','; echo "${configs[*]}")"
export WSPORT_STRESS_SECS="${WSPORT_STRESS_SECS:-60}"
export WSPORT_STRESS_CONNS="${WSPORT_STRESS_CONNS:-1000}"
echo "stress.sh: configs $WSPORT_SERVERS; $WSPORT_STRESS_CONNS connections for" \
    "${WSPORT_STRESS_SECS} s each" >&2
exec cargo test --release -p wsport-conformance --test stress -- --ignored --nocapture
