//! The echo figures again, split by where the host had put the server's and the client's cores
//! (`results.core_rtt`, see `wsport-bench`'s `core_rtt.rs`): a section only where runs
//! measured it.
//!
//! A run is **near** when both of its round trips (before the warmup, after the window) are
//! within [`PLACED_ALIKE`] of the directory's nearest (the 5th percentile of its round trips),
//! **far** when both are beyond it, and **moved** otherwise. On a VM whose vCPUs the hypervisor moves between core complexes,
//! every server costs more in the far placement (1.3–1.45× on the AMD EPYC VM of
//! results/2026-12-07-vm/placed-rounds), so the medians of the main tables mix two hosts in
//! whatever proportion each server happened to get; within one placement they do not.

use std::fmt::Write as _;

use crate::rounds::PLACED_ALIKE;
use crate::runs::{self, scenarios, spread, Run, ServerOrder, REFERENCE_SERVER};

/// Where a run's cores were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Both round trips within [`PLACED_ALIKE`] of the directory's nearest.
    Near,
    /// Both beyond it.
    Far,
    /// One each side: the host moved the cores during the run.
    Moved,
}

/// The table's columns, in order.
const PLACEMENTS: [Placement; 3] = [Placement::Near, Placement::Far, Placement::Moved];

/// The placement of a run whose round trips were `(before, after)`, `nearest` being the
/// directory's nearest round trip.
pub fn placement((before, after): (f64, f64), nearest: f64) -> Placement {
    let near = |ns: f64| ns <= PLACED_ALIKE * nearest;
    match (near(before), near(after)) {
        (true, true) => Placement::Near,
        (false, false) => Placement::Far,
        _ => Placement::Moved,
    }
}

/// The Markdown section; empty when no echo run measured its placement.
pub fn section(runs: &[Run], order: &ServerOrder, baseline: &str) -> String {
    let mut readings: Vec<f64> = runs
        .iter()
        .filter(|r| r.workload == "echo")
        .filter_map(|r| r.core_rtt_ns)
        .flat_map(|(a, b)| [a, b])
        .collect();
    readings.sort_by(f64::total_cmp);
    // The 5th percentile, not the least: a rare closer placement (two SMT siblings of one
    // core, ~30 ns where the usual near one is ~60) must not make the usual one "far".
    let Some(&nearest) = readings.get(readings.len() / 20) else {
        return String::new();
    };
    // Ratios against the baseline, or the reference server where the baseline did not run.
    let baseline = [baseline, REFERENCE_SERVER]
        .into_iter()
        .find(|b| runs.iter().any(|r| r.server == *b))
        .unwrap_or(baseline);
    let mut out = format!(
        "## Echo by core placement\n\nWhere the host had put the server's and the client's \
         cores, from a cache line's round trip between them before and after each run: \
         **near** when both are within {PLACED_ALIKE}× of this directory's nearest (the 5th \
         percentile of its round trips, {nearest:.0} ns), **far** when both are beyond it, \
         **moved** when the host moved them during the run. Server CPU µs per message, median (min–max), runs, and the ratio to \
         {baseline}'s median in the same placement.\n\n"
    );
    for (scenario, list) in scenarios(runs, "echo") {
        if list.iter().all(|r| r.core_rtt_ns.is_none()) {
            continue;
        }
        let _ = writeln!(
            out,
            "### {scenario}\n\n| server | near | far | moved |\n|---|---:|---:|---:|"
        );
        for server in order.names() {
            let of_server: Vec<&Run> = list
                .iter()
                .copied()
                .filter(|r| &r.server == server)
                .collect();
            if of_server.is_empty() {
                continue;
            }
            let cells: Vec<String> = PLACEMENTS
                .iter()
                .map(|&p| cell(&of_server, &list, baseline, p, nearest))
                .collect();
            let _ = writeln!(out, "| {server} | {} |", cells.join(" | "));
        }
        out.push('\n');
    }
    out
}

/// One server's figure in one placement, with its ratio to the baseline's there.
fn cell(server: &[&Run], all: &[&Run], baseline: &str, p: Placement, nearest: f64) -> String {
    let figures = |runs: &[&Run]| -> Vec<f64> {
        runs.iter()
            .filter(|r| {
                r.core_rtt_ns
                    .is_some_and(|rtt| placement(rtt, nearest) == p)
            })
            .filter_map(|r| r.server_us_per_msg)
            .collect()
    };
    let mine = figures(server);
    let Some((median, low, high)) = spread(mine.iter().copied()) else {
        return "–".into();
    };
    let base: Vec<&Run> = all
        .iter()
        .copied()
        .filter(|r| r.server == baseline)
        .collect();
    let ratio = runs::median(figures(&base).into_iter())
        .map_or(String::new(), |b| format!(", {:.2}×", median / b));
    let runs = match mine.len() {
        1 => "1 run".to_owned(),
        n => format!("{n} runs"),
    };
    format!("{median:.2} ({low:.2}–{high:.2}), {runs}{ratio}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_placed_against_the_nearest_round_trip() {
        assert_eq!(placement((62.0, 66.0), 58.0), Placement::Near);
        assert_eq!(placement((220.0, 214.0), 58.0), Placement::Far);
        assert_eq!(placement((62.0, 220.0), 58.0), Placement::Moved);
        assert_eq!(placement((220.0, 62.0), 58.0), Placement::Moved);
    }

    #[test]
    fn the_section_splits_each_server_by_placement() {
        let run = |server: &str, cpu: f64, rtt: Option<(f64, f64)>| {
            let mut results = serde_json::json!({
                "msgs_per_sec": 1.0, "latency_ns": {"p50": 1},
                "server": {"cpu_us_per_msg": cpu}, "client": {"cpu_us_per_msg": 1.0}
            });
            if let Some((before, after)) = rtt {
                results["core_rtt"] = serde_json::json!({
                    "server_cpu": 0, "client_cpu": 1, "before_ns": before, "after_ns": after
                });
            }
            let doc = serde_json::json!({
                "schema": "wsport-bench/1", "workload": "echo",
                "scenario": format!("echo-64B-100c-1t-{server}-ws-1"),
                "flags": {"label": server},
                "setup": {"threads": 1, "engine": "epoll",
                          "targets": [{"url": "ws://127.0.0.1:1/"}]},
                "results": results
            });
            Run::parse("x.json".into(), doc).unwrap()
        };
        let near = Some((60.0, 62.0));
        let far = Some((220.0, 225.0));
        let runs = vec![
            run("tokio", 5.6, near),
            run("tokio", 5.7, near),
            run("tokio", 7.4, far),
            run("uring", 4.1, near),
            run("uring", 6.0, far),
            run("uring", 5.0, Some((60.0, 220.0))),
        ];
        let order = ServerOrder::of(&runs, "tokio");
        let text = section(&runs, &order, "tokio");
        assert!(text.contains("round trips, 60 ns)"), "{text}");
        assert!(
            text.contains("| uring | 4.10 (4.10–4.10), 1 run, 0.73× | 6.00 (6.00–6.00), 1 run, 0.81× | 5.00 (5.00–5.00), 1 run |"),
            "{text}"
        );
        assert!(
            text.contains("| tokio | 5.65 (5.60–5.70), 2 runs, 1.00× |"),
            "{text}"
        );
        let unmeasured: Vec<Run> = vec![run("tokio", 5.6, None)];
        assert_eq!(
            section(&unmeasured, &ServerOrder::of(&unmeasured, "tokio"), "tokio"),
            ""
        );
    }
}
