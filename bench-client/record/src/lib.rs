//! wsport-bench-record: what the load generator (`wsport-bench`) and its reports
//! (`wsport-bench-report`) must agree on about a run record, and nothing else, so that
//! neither imports the other: the units the figures are printed in, and the rule that calls a
//! client late.
//!
//! The record itself (schema `wsport-bench/1`) is written by the generator's `report` module
//! and read by the reports' `runs` module; both are documented in bench-client/README.md.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Send lag p99 above this is the client's lateness, not noise: the run is flagged (by the
/// generator, in its warnings) and not judged (by the reports).
pub const SEND_LAG_LIMIT_NS: u64 = 100_000;

/// Nanoseconds as `850ns`, `41.2µs`, `1.23ms`, `2.00s`.
pub fn format_ns(ns: u64) -> String {
    let f = ns as f64;
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{:.1}µs", f / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2}ms", f / 1e6)
    } else {
        format!("{:.2}s", f / 1e9)
    }
}

/// A payload size as scenario names spell it: `64B`, `1KiB`, `16KiB`, `1MiB`.
pub fn format_size(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{}MiB", n >> 20)
    } else if n >= 1024 && n % 1024 == 0 {
        format!("{}KiB", n >> 10)
    } else {
        format!("{n}B")
    }
}
