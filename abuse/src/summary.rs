//! The markdown section of a run-bench `abuse` directory: legitimate throughput and p99 with
//! and without the abuse, abusive connections by outcome, server RSS against its bound.
//!
//! Reads `runs.jsonl`, one line per run as scripts/lib/abuse.sh writes it:
//! `{"server", "scheme", "repeat", "mode": "clean"|"decoy"|"abused", "bench": <wsport-bench
//! JSON>, "abuse": <wsport-abuse JSON>|null}`. In a `decoy` run the abuse was aimed at a second
//! copy of the server, not the measured one: what the legitimate load loses there is the
//! instrument's (the abuse shares the client's cores), and the abused runs are judged against
//! it when there are decoy runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::report::mib;

/// Legitimate load may lose at most this much to the abuse (issue 14).
const TOLERANCE: f64 = 0.10;

/// Why a directory cannot be summarised.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SummaryError {
    #[error("line {line} of runs.jsonl is not JSON: {source}")]
    BadLine {
        line: usize,
        source: serde_json::Error,
    },
}

#[derive(Default)]
struct Cell {
    clean_rate: Vec<f64>,
    abused_rate: Vec<f64>,
    clean_p99: Vec<f64>,
    abused_p99: Vec<f64>,
    decoy_p99: Vec<f64>,
    outcomes: BTreeMap<(String, String), u64>,
    unexpected: u64,
    rss: Vec<(u64, u64, u64)>,
    /// Runs whose client sent late (send lag p99 over 100 µs): their p99 is partly the client's.
    late: u64,
}

/// The markdown for the runs in `jsonl`.
pub fn markdown(jsonl: &str) -> Result<String, SummaryError> {
    let mut cells: BTreeMap<(String, String), Cell> = BTreeMap::new();
    for (i, line) in jsonl
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let run: Value = serde_json::from_str(line).map_err(|source| SummaryError::BadLine {
            line: i + 1,
            source,
        })?;
        let key = (text(&run["server"]), text(&run["scheme"]));
        add_run(cells.entry(key).or_default(), &run);
    }
    let mut out = String::from("## Abuse beside a measured load\n\n");
    legit_table(&mut out, &cells);
    outcome_table(&mut out, &cells);
    rss_table(&mut out, &cells);
    Ok(out)
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("?").to_string()
}

fn add_run(cell: &mut Cell, run: &Value) {
    let results = &run["bench"]["results"];
    let rate = results["msgs_per_sec"].as_f64();
    let p99 = results["latency_ns"]["p99"].as_f64();
    match run["mode"].as_str() {
        Some("abused") => {
            cell.abused_rate.extend(rate);
            cell.abused_p99.extend(p99);
        }
        Some("decoy") => cell.decoy_p99.extend(p99),
        _ => {
            cell.clean_rate.extend(rate);
            cell.clean_p99.extend(p99);
        }
    }
    if results["send_lag_exceeded"] == true {
        cell.late += 1;
    }
    // The decoy's answers are not the measured server's.
    if run["mode"] == "abused" {
        add_outcomes(cell, &run["abuse"]);
    }
}

/// The abusive connections' endings and the server's RSS of one abused run.
fn add_outcomes(cell: &mut Cell, abuse: &Value) {
    for kind in abuse["kinds"].as_array().into_iter().flatten() {
        cell.unexpected += kind["unexpected"].as_u64().unwrap_or(0);
        for (outcome, n) in kind["outcomes"].as_object().into_iter().flatten() {
            *cell
                .outcomes
                .entry((text(&kind["kind"]), outcome.clone()))
                .or_insert(0) += n.as_u64().unwrap_or(0);
        }
    }
    let check = &abuse["rss_check"];
    if let (Some(base), Some(max), Some(bound)) = (
        check["base"].as_u64(),
        check["max"].as_u64(),
        check["bound"].as_u64(),
    ) {
        cell.rss.push((base, max, bound));
    }
}

/// The median; of an even count, the mean of the middle two (two repeats give their mean).
fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[mid]),
        _ => Some((v[mid - 1] + v[mid]) / 2.0),
    }
}

fn legit_table(out: &mut String, cells: &BTreeMap<(String, String), Cell>) {
    if cells.values().any(|c| !c.decoy_p99.is_empty()) {
        return legit_table_with_decoy(out, cells);
    }
    out.push_str(
        "Legitimate load, medians of the repeats (clean and abused runs interleaved):\n\n",
    );
    out.push_str("| server | scheme | msgs/s clean | msgs/s abused | ratio | p99 clean | p99 abused | ratio | within 10% |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---|\n");
    for ((server, scheme), c) in cells {
        let (Some(rc), Some(ra), Some(pc), Some(pa)) = (
            median(&c.clean_rate),
            median(&c.abused_rate),
            median(&c.clean_p99),
            median(&c.abused_p99),
        ) else {
            let _ = writeln!(
                out,
                "| {server} | {scheme} | no complete pair of runs | | | | | | |"
            );
            continue;
        };
        let (rate_ratio, p99_ratio) = (ra / rc, pa / pc);
        let verdict = verdict(c.late, rate_ratio, p99_ratio);
        let _ = writeln!(
            out,
            "| {server} | {scheme} | {rc:.0} | {ra:.0} | {rate_ratio:.2} | {:.0} µs | {:.0} µs | {p99_ratio:.2} | {} |",
            pc / 1e3,
            pa / 1e3,
            verdict
        );
    }
    out.push('\n');
}

/// The legitimate load's table when decoy runs calibrate the instrument: p99 is judged
/// abused against decoy, what the abuse costs the measured server beyond what it costs the
/// client's core.
fn legit_table_with_decoy(out: &mut String, cells: &BTreeMap<(String, String), Cell>) {
    out.push_str(
        "Legitimate load, medians of the repeats (clean, decoy and abused runs interleaved; \
         *decoy*: the same abuse aimed at a second copy of the server on the abuse's cores, \
         so what p99 loses there is the instrument's; p99 is judged abused against decoy):\n\n",
    );
    out.push_str("| server | scheme | msgs/s clean | msgs/s abused | ratio | p99 clean | p99 decoy | p99 abused | abused/clean | abused/decoy | within 10% |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for ((server, scheme), c) in cells {
        let (Some(rc), Some(ra), Some(pc), Some(pd), Some(pa)) = (
            median(&c.clean_rate),
            median(&c.abused_rate),
            median(&c.clean_p99),
            median(&c.decoy_p99),
            median(&c.abused_p99),
        ) else {
            let _ = writeln!(
                out,
                "| {server} | {scheme} | no complete set of runs | | | | | | | | |"
            );
            continue;
        };
        let rate_ratio = ra / rc;
        let verdict = verdict(c.late, rate_ratio, pa / pd);
        let _ = writeln!(
            out,
            "| {server} | {scheme} | {rc:.0} | {ra:.0} | {rate_ratio:.2} | {:.0} µs | {:.0} µs | {:.0} µs | {:.2} | {:.2} | {verdict} |",
            pc / 1e3,
            pd / 1e3,
            pa / 1e3,
            pa / pc,
            pa / pd,
        );
    }
    out.push('\n');
}

/// Within the tolerance: throughput kept and p99 not over it; a p99 the client made late is
/// not judged, as wsport-bench's own rule.
fn verdict(late: u64, rate_ratio: f64, p99_ratio: f64) -> String {
    let ok = rate_ratio >= 1.0 - TOLERANCE && p99_ratio <= 1.0 + TOLERANCE;
    match (late, ok) {
        (0, true) => "yes".to_string(),
        (0, false) => "**no**".to_string(),
        (late, _) => format!("⚠ not judged: client late in {late} runs"),
    }
}

fn outcome_table(out: &mut String, cells: &BTreeMap<(String, String), Cell>) {
    out.push_str("Abusive connections by outcome, all abused repeats:\n\n");
    out.push_str("| server | scheme | kind: outcome × connections | not the RFC ending |\n|---|---|---|---:|\n");
    for ((server, scheme), c) in cells {
        let outcomes: Vec<String> = c
            .outcomes
            .iter()
            .map(|((k, o), n)| format!("{k}: {o} ×{n}"))
            .collect();
        let _ = writeln!(
            out,
            "| {server} | {scheme} | {} | {} |",
            outcomes.join("; "),
            c.unexpected
        );
    }
    out.push('\n');
}

fn rss_table(out: &mut String, cells: &BTreeMap<(String, String), Cell>) {
    out.push_str("Server RSS during the abused runs (VmRSS every 100 ms) against the bound of abuse/src/rss.rs:\n\n");
    out.push_str("| server | scheme | RSS at start | RSS max | bound | within |\n|---|---|---:|---:|---:|---|\n");
    for ((server, scheme), c) in cells {
        for (base, max, bound) in &c.rss {
            let _ = writeln!(
                out,
                "| {server} | {scheme} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {} |",
                mib(*base),
                mib(*max),
                mib(*bound),
                if max <= bound { "yes" } else { "**no**" }
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_two_is_their_mean() {
        assert_eq!(median(&[1.0, 3.0]), Some(2.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn a_slower_abused_run_is_flagged() {
        let run = |mode: &str, rate: f64| {
            format!(
                r#"{{"server":"tokio","scheme":"ws","repeat":1,"mode":"{mode}","bench":{{"results":{{"msgs_per_sec":{rate},"latency_ns":{{"p99":1000}}}}}},"abuse":null}}"#
            )
        };
        let ok = markdown(&format!(
            "{}\n{}\n",
            run("clean", 100.0),
            run("abused", 95.0)
        ))
        .unwrap();
        assert!(ok.contains("| yes |"), "{ok}");
        let slow = markdown(&format!(
            "{}\n{}\n",
            run("clean", 100.0),
            run("abused", 80.0)
        ))
        .unwrap();
        assert!(slow.contains("**no**"), "{slow}");
    }

    #[test]
    fn with_decoy_runs_p99_is_judged_against_the_decoy() {
        let run = |mode: &str, p99: u64| {
            format!(
                r#"{{"server":"tokio","scheme":"ws","repeat":1,"mode":"{mode}","bench":{{"results":{{"msgs_per_sec":100,"latency_ns":{{"p99":{p99}}}}}}},"abuse":null}}"#
            )
        };
        let runs = |abused: u64| {
            [
                run("clean", 100_000),
                run("decoy", 300_000),
                run("abused", abused),
            ]
            .join("\n")
        };
        let instrument = markdown(&runs(320_000)).unwrap();
        assert!(instrument.contains("| p99 decoy |"), "{instrument}");
        assert!(
            instrument.contains("| 100 µs | 300 µs | 320 µs | 3.20 | 1.07 | yes |"),
            "{instrument}"
        );
        let server = markdown(&runs(400_000)).unwrap();
        assert!(server.contains("| 4.00 | 1.33 | **no** |"), "{server}");
    }
}
