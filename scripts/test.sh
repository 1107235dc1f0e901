#!/usr/bin/env bash
# The test command (README, .ci/run): build every server binary, then run every test,
# including the conformance suite that drives those binaries over loopback sockets.
set -euo pipefail
cd "$(dirname "$0")/.."

# No module of any crate imports its caller; the self-test first proves the check can fail.
scripts/check-module-cycles.sh --self-test
scripts/check-module-cycles.sh

# The conformance suite starts the server binaries from target/<profile>/; `cargo test`
# alone builds a binary only for its own package's tests, so build them all first.
cargo build --workspace --bins
cargo test --workspace "$@"
# run-bench.sh's deployment paths: nginx config, the "unavailable" paths, no leftovers.
cargo build --release -p wsport-tokio -p wsport-bench
scripts/test-deploy-paths.sh
# Every committed summary regenerates from what results/ keeps, and results/ stays slim.
scripts/check-results.sh
