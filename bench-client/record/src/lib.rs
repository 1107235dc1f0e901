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

/// 1234567 -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_largest_unit_below_them() {
        assert_eq!(format_ns(850), "850ns");
        assert_eq!(format_ns(41_234), "41.2µs");
        assert_eq!(format_ns(1_234_567), "1.23ms");
        assert_eq!(format_ns(2_000_000_000), "2.00s");
    }

    #[test]
    fn sizes_are_named_as_scenarios_name_them() {
        assert_eq!(format_size(64), "64B");
        assert_eq!(format_size(1024), "1KiB");
        assert_eq!(format_size(16 * 1024), "16KiB");
        assert_eq!(format_size(1 << 20), "1MiB");
        assert_eq!(format_size(1500), "1500B");
    }

    #[test]
    fn thousands_are_grouped_by_commas() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
