//! The "Runtime floor" section of `summary.md`: per server, the cost of a raw TCP echo (the
//! server's `--raw-tcp` mode under `wsport-bench echo --raw`: the runtime and the server's IO
//! loop, no WebSocket) beside the cost of the same echo over ws, so that
//! total = floor + WebSocket layer. The WebSocket layer is the same sans-IO core in every
//! server, so it should cost about the same everywhere; a server whose layer differs from the
//! servers' median by more than [`LAYER_SPREAD`] is flagged — its loop does something per message
//! that the others do not (see DESIGN.md, "Every figure is explained").

use std::fmt::Write as _;

use crate::runs::{median, scenarios, spread, Run, ServerOrder};
use crate::verdict::MIN_REPEATS;

/// How far (as a fraction) a server's WebSocket layer may be from the servers' median before
/// the section flags it.
pub const LAYER_SPREAD: f64 = 0.25;

/// One server's floor, total and the layer between them, µs of server CPU per message.
#[derive(Debug, Clone, PartialEq)]
pub struct Layers {
    /// The server.
    pub server: String,
    /// Raw TCP echo: median, min, max.
    pub floor: (f64, f64, f64),
    /// WebSocket echo over ws, same parameters and client engine: median, min, max.
    pub total: (f64, f64, f64),
    /// Runs behind the fewer-measured of the two figures.
    pub repeats: usize,
}

impl Layers {
    /// Total − floor: what the WebSocket layer adds per message.
    pub fn layer(&self) -> f64 {
        self.total.0 - self.floor.0
    }

    /// How far the layer may move between repeats: half the range of the floor plus half
    /// the range of the total. A layer is a small difference of two larger figures, so on a
    /// noisy host the repeats alone can move it by more than [`LAYER_SPREAD`].
    pub fn noise(&self) -> f64 {
        (self.floor.2 - self.floor.1) / 2.0 + (self.total.2 - self.total.1) / 2.0
    }
}

/// How a server's layer compares with the servers' median.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within [`LAYER_SPREAD`] of the median.
    Alike,
    /// Further than [`LAYER_SPREAD`], and further than the repeats' noise: flagged.
    Differs,
    /// Further than [`LAYER_SPREAD`], but within the repeats' noise: not judged.
    Noisy,
    /// Further than [`LAYER_SPREAD`], from fewer than [`MIN_REPEATS`] runs: no noise to
    /// judge against, so not judged.
    OneRun,
}

/// The verdict on `row` among `rows`; `None` alone.
pub fn judge(rows: &[Layers], row: &Layers) -> Option<(f64, Verdict)> {
    let deviation = layer_deviation(rows, row)?;
    let median_layer = row.layer() / (1.0 + deviation);
    let verdict = if deviation.abs() <= LAYER_SPREAD {
        Verdict::Alike
    } else if row.repeats < MIN_REPEATS {
        Verdict::OneRun
    } else if (row.layer() - median_layer).abs() > row.noise() {
        Verdict::Differs
    } else {
        Verdict::Noisy
    };
    Some((deviation, verdict))
}

/// The section, or nothing when the directory has no raw runs with a matching ws echo.
pub fn section(runs: &[Run], order: &ServerOrder) -> String {
    let tables = tables(runs, order);
    if tables.is_empty() {
        return String::new();
    }
    let mut out = String::from("## Runtime floor and WebSocket layer\n\n");
    out.push_str(
        "Server CPU µs per message. *Floor*: the server's `--raw-tcp` mode (its runtime and IO \
         loop echoing bytes, no WebSocket) under `wsport-bench echo --raw`; *total*: the same \
         echo over ws; *WebSocket layer* = total − floor (frames, masking, the session), the \
         same core in every server, so it should cost about the same everywhere: ⚠ marks a \
         server whose layer is more than 25% from the servers' median by more than the \
         repeats' noise (half the floor's range + half the total's); *noise* marks one that is \
         that far only within the noise, and *one run* one measured once (no noise to judge \
         by), which say nothing.\n\n",
    );
    for (key, rows) in tables {
        let _ = writeln!(out, "### {key}\n");
        table(&mut out, &rows);
    }
    out
}

/// Per pair of raw and ws echo scenarios with the same parameters and client engine, keyed
/// by what they share (`64B-100c-1t`, `64B-100c-1t-client-epoll`), the servers with both.
pub fn tables(runs: &[Run], order: &ServerOrder) -> Vec<(String, Vec<Layers>)> {
    let echoes = scenarios(runs, "echo");
    let mut out = Vec::new();
    for (raw_scenario, raw_runs) in scenarios(runs, "raw") {
        let Some(key) = shared_key(raw_scenario, "raw-", "-tcp") else {
            continue;
        };
        let Some((_, echo_runs)) = echoes
            .iter()
            .find(|(s, _)| shared_key(s, "echo-", "-ws") == Some(key))
        else {
            continue;
        };
        let mut rows: Vec<Layers> = order
            .names()
            .iter()
            .filter_map(|server| {
                let (floor, floor_runs) = cpu_of(&raw_runs, server)?;
                let (total, total_runs) = cpu_of(echo_runs, server)?;
                Some(Layers {
                    server: server.clone(),
                    floor,
                    total,
                    repeats: floor_runs.min(total_runs),
                })
            })
            .collect();
        rows.sort_by_key(|l| order.rank(&l.server));
        if !rows.is_empty() {
            out.push((key.to_owned(), rows));
        }
    }
    out
}

/// How far `row`'s layer is from the median layer of all `rows`, as a fraction (0.3 = 30%
/// dearer); `None` alone. The median of all, not of the others: one outlier then moves the
/// reference little, and only the outlier is flagged.
pub fn layer_deviation(rows: &[Layers], row: &Layers) -> Option<f64> {
    if rows.len() < 2 {
        return None;
    }
    let all = median(rows.iter().map(Layers::layer))?;
    (all > 0.0).then(|| row.layer() / all - 1.0)
}

fn table(out: &mut String, rows: &[Layers]) {
    out.push_str(
        "| server | floor µs/msg (range) | WebSocket layer µs/msg | total µs/msg (range) | layer share of total | layer vs the servers' median |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let judged = judge(rows, row);
        let flag = match judged.map(|(_, v)| v) {
            Some(Verdict::Differs) => " ⚠",
            Some(Verdict::Noisy) => " (noise)",
            Some(Verdict::OneRun) => " (one run)",
            _ => "",
        };
        let deviation = judged.map(|(d, _)| d);
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {} | {:.0}% | {}{flag} |",
            row.server,
            range(row.floor),
            row.layer(),
            range(row.total),
            100.0 * row.layer() / row.total.0,
            deviation.map_or("–".into(), |d| format!("{:+.0}%", 100.0 * d)),
        );
    }
    out.push('\n');
}

/// `raw-64B-100c-1t-client-epoll-tcp` → `64B-100c-1t-client-epoll`.
fn shared_key<'a>(scenario: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    scenario.strip_prefix(prefix)?.strip_suffix(suffix)
}

/// The server's CPU per message (median, min, max) and how many runs it comes from.
fn cpu_of(runs: &[&Run], server: &str) -> Option<((f64, f64, f64), usize)> {
    let values: Vec<f64> = runs
        .iter()
        .filter(|r| r.server == server)
        .filter_map(|r| r.server_us_per_msg)
        .collect();
    Some((spread(values.iter().copied())?, values.len()))
}

fn range((m, lo, hi): (f64, f64, f64)) -> String {
    format!("{m:.2} ({lo:.2}–{hi:.2})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn run(workload: &str, label: &str, cpu: f64) -> Run {
        let (scheme, name) = if workload == "raw" {
            ("ws", format!("raw-64B-100c-1t-{label}-tcp-8080"))
        } else {
            ("ws", format!("echo-64B-100c-1t-{label}-ws-8080"))
        };
        Run::parse(
            PathBuf::from(format!("{name}.json")),
            serde_json::json!({
                "schema": "wsport-bench/1",
                "workload": workload,
                "scenario": name,
                "flags": {"label": label},
                "setup": {"threads": 1, "connections": 100, "sizes": [64],
                    "targets": [{"url": format!("{scheme}://127.0.0.1:8080/"), "connections": 100}]},
                "results": {
                    "msgs_per_sec": 100000.0,
                    "latency_ns": {"p50": 700000, "p99": 800000, "p99_9": 2000000},
                    "server": {"cpu_us_per_msg": cpu, "cpu_percent": 99.0},
                    "client": {"cpu_us_per_msg": 1.0, "cpu_percent": 50.0, "cores": 1},
                    "mismatches": 0
                }
            }),
        )
        .expect("a valid run")
    }

    fn runs() -> Vec<Run> {
        vec![
            run("raw", "tokio", 5.0),
            run("raw", "tokio", 5.2),
            run("echo", "tokio", 6.5),
            run("echo", "tokio", 6.5),
            run("raw", "tokio-uring", 5.5),
            run("raw", "tokio-uring", 5.5),
            run("echo", "tokio-uring", 7.0),
            run("echo", "tokio-uring", 7.0),
            run("raw", "monoio-uring", 4.0),
            run("raw", "monoio-uring", 4.0),
            run("echo", "monoio-uring", 6.5),
            run("echo", "monoio-uring", 6.5),
            // No floor: a reference, or a server whose raw run failed.
            run("echo", "fastwebsockets", 6.8),
        ]
    }

    #[test]
    fn floor_layer_and_total_per_server_with_a_floor() {
        let runs = runs();
        let tables = tables(&runs, &ServerOrder::of(&runs, "tokio"));
        assert_eq!(tables.len(), 1);
        let (key, rows) = &tables[0];
        assert_eq!(key, "64B-100c-1t");
        let servers: Vec<&str> = rows.iter().map(|r| r.server.as_str()).collect();
        assert_eq!(servers, ["tokio", "tokio-uring", "monoio-uring"]);
        assert!((rows[0].floor.0 - 5.1).abs() < 1e-9, "median of two floors");
        assert!((rows[0].layer() - 1.4).abs() < 1e-9);
        assert!((rows[2].layer() - 2.5).abs() < 1e-9);
    }

    #[test]
    fn a_layer_far_from_the_others_is_flagged_and_only_it() {
        let runs = runs();
        let summary = section(&runs, &ServerOrder::of(&runs, "tokio"));
        // Layers 1.4, 1.5, 2.5: monoio-uring's is 67% above their median (1.5).
        assert!(
            summary.contains(
                "| monoio-uring | 4.00 (4.00–4.00) | 2.50 | 6.50 (6.50–6.50) | 38% | +67% ⚠ |"
            ),
            "{summary}"
        );
        assert!(
            summary.contains("| tokio | 5.10 (5.00–5.20) | 1.40 |"),
            "{summary}"
        );
        assert_eq!(
            summary.matches('⚠').count(),
            2,
            "the note's and one row's: {summary}"
        );
    }

    #[test]
    fn a_layer_that_is_far_only_within_the_repeats_noise_is_not_flagged() {
        let mut runs = runs();
        // monoio-uring's floor now ranges 2.8–5.2: ±1.2 µs of noise, more than its layer's
        // distance from the median (1.0).
        runs.push(run("raw", "monoio-uring", 2.8));
        runs.push(run("raw", "monoio-uring", 5.2));
        let summary = section(&runs, &ServerOrder::of(&runs, "tokio"));
        assert!(summary.contains("| +67% (noise) |"), "{summary}");
        assert_eq!(summary.matches("% ⚠").count(), 0, "{summary}");
    }

    #[test]
    fn a_layer_measured_once_is_not_judged() {
        let mut runs = runs();
        let once = runs
            .iter()
            .position(|r| r.server == "monoio-uring" && r.workload == "raw")
            .expect("a floor run");
        runs.remove(once);
        let summary = section(&runs, &ServerOrder::of(&runs, "tokio"));
        assert!(summary.contains("| +67% (one run) |"), "{summary}");
        assert_eq!(summary.matches("% ⚠").count(), 0, "{summary}");
    }

    #[test]
    fn no_section_without_raw_runs() {
        let runs: Vec<Run> = runs()
            .into_iter()
            .filter(|r| r.workload == "echo")
            .collect();
        assert_eq!(section(&runs, &ServerOrder::of(&runs, "tokio")), "");
    }
}
