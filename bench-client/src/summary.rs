//! `wsport-bench report DIR`: the summary of a directory of runs (`*.json`, schema
//! `wsport-bench/1`), as a Markdown table per scenario with one row per server.
//!
//! Runs of the same scenario and server are repeats: each figure is their median, with the
//! range beside the figures that compare servers. Servers are compared by server CPU time per
//! message, as a ratio against a baseline server measured in the same directory (so in the
//! same session, interleaved): on loopback the client and the server saturate together, so
//! msgs/s is the pair's limit, while CPU per message stays the server's own cost.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Why a directory could not be summarised.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SummaryError {
    /// The directory could not be listed.
    #[error("cannot read {}: {source}", dir.display())]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A result file could not be read or is not a wsport-bench/1 report.
    #[error("{}: {why}", file.display())]
    BadFile {
        /// The file.
        file: PathBuf,
        /// Why.
        why: String,
    },
    /// No result file at all.
    #[error("no wsport-bench results (*.json) in {}", .0.display())]
    Empty(PathBuf),
}

/// The figures of one run that the summary compares.
#[derive(Debug, Clone)]
struct Run {
    msgs_per_sec: f64,
    server_us_per_msg: Option<f64>,
    client_us_per_msg: Option<f64>,
    p50_ns: f64,
    p99_ns: f64,
    p999_ns: f64,
    server_rss_bytes: Option<f64>,
    client_bottleneck: bool,
    mismatches: u64,
}

/// Runs of one directory: scenario -> server -> repeats.
type Table = BTreeMap<String, BTreeMap<String, Vec<Run>>>;

/// Summarise every `*.json` run in `dir`; `baseline` names the server the ratios are against.
pub fn summarize(dir: &Path, baseline: &str) -> Result<String, SummaryError> {
    let table = load(dir)?;
    let mut out = String::new();
    for (scenario, servers) in &table {
        write_scenario(&mut out, scenario, servers, baseline);
    }
    Ok(out)
}

/// Read every wsport-bench/1 run in `dir`.
fn load(dir: &Path) -> Result<Table, SummaryError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| SummaryError::ReadDir {
            dir: dir.to_owned(),
            source,
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let mut table = Table::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| SummaryError::BadFile {
            file: file.clone(),
            why: e.to_string(),
        })?;
        let json: Value = serde_json::from_str(&text).map_err(|e| SummaryError::BadFile {
            file: file.clone(),
            why: e.to_string(),
        })?;
        if json["schema"] != "wsport-bench/1" {
            continue;
        }
        let (scenario, server) =
            scenario_and_server(&json).ok_or_else(|| SummaryError::BadFile {
                file: file.clone(),
                why: "no scenario name".into(),
            })?;
        let run = parse_run(&json).ok_or_else(|| SummaryError::BadFile {
            file: file.clone(),
            why: "no results".into(),
        })?;
        table
            .entry(scenario)
            .or_default()
            .entry(server)
            .or_default()
            .push(run);
    }
    if table.is_empty() {
        return Err(SummaryError::Empty(dir.to_owned()));
    }
    Ok(table)
}

/// What `compare` decided for one scenario and server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Server CPU per message went up beyond the noise of the repeats.
    Slower,
    /// It went down beyond the noise.
    Faster,
    /// Within the noise.
    Unchanged,
}

/// `compare BASE CUR`: a Markdown table of server CPU µs per message, base against current,
/// per scenario and server present in both, and whether any got slower.
///
/// A change counts only when the repeats of the two sides do not overlap at all (every
/// current run beyond every base run) and the medians differ by more than `threshold` and by
/// more than twice the larger relative spread of either side; with 3 repeats a side, a
/// non-overlap by chance alone happens 1 time in 20 in a given direction.
pub fn compare(
    base: &Path,
    current: &Path,
    threshold: f64,
) -> Result<(String, bool), SummaryError> {
    let (base, current) = (load(base)?, load(current)?);
    let mut out = String::from(
        "| scenario | server | base µs/msg (range) | current µs/msg (range) | change | verdict |\n|---|---|---:|---:|---:|---|\n",
    );
    let mut slower = false;
    for (scenario, servers) in &current {
        for (server, runs) in servers {
            let Some(base_runs) = base.get(scenario).and_then(|s| s.get(server)) else {
                continue;
            };
            let cpu = |runs: &[Run]| spread(runs.iter().filter_map(|r| r.server_us_per_msg));
            let (Some(b), Some(c)) = (cpu(base_runs), cpu(runs)) else {
                continue;
            };
            let verdict = decide(b, c, threshold);
            slower |= verdict == Verdict::Slower;
            let _ = writeln!(
                out,
                "| {scenario} | {server} | {:.2} ({:.2}–{:.2}) | {:.2} ({:.2}–{:.2}) | {:+.1}% | {} |",
                b.0,
                b.1,
                b.2,
                c.0,
                c.1,
                c.2,
                (c.0 / b.0 - 1.0) * 100.0,
                match verdict {
                    Verdict::Slower => "**slower**",
                    Verdict::Faster => "faster",
                    Verdict::Unchanged => "unchanged",
                }
            );
        }
    }
    Ok((out, slower))
}

/// The rule of [`compare`] on (median, min, max) of each side.
fn decide(base: (f64, f64, f64), current: (f64, f64, f64), threshold: f64) -> Verdict {
    let relative_spread = |(median, min, max): (f64, f64, f64)| (max - min) / 2.0 / median;
    let noise = threshold.max(2.0 * relative_spread(base).max(relative_spread(current)));
    let change = current.0 / base.0 - 1.0;
    if current.1 > base.2 && change > noise {
        Verdict::Slower
    } else if current.2 < base.1 && -change > noise {
        Verdict::Faster
    } else {
        Verdict::Unchanged
    }
}

/// The scenario without the server's name and the port (`echo-64B-100c-1t-ws`), and the
/// server's name (`--label`, or "server").
fn scenario_and_server(json: &Value) -> Option<(String, String)> {
    let scenario = json["scenario"].as_str()?;
    let server = json["flags"]["label"]
        .as_str()
        .unwrap_or("server")
        .to_owned();
    let without_label = scenario.replacen(&format!("-{server}-"), "-", 1);
    // Ports differ between runs (servers start on port 0): they are not part of the scenario.
    let trimmed = match without_label.rsplit_once('-') {
        Some((head, port)) if port.chars().all(|c| c.is_ascii_digit()) => head.to_owned(),
        _ => without_label,
    };
    Some((trimmed, server))
}

fn parse_run(json: &Value) -> Option<Run> {
    let results = &json["results"];
    let latency = &results["latency_ns"];
    Some(Run {
        msgs_per_sec: results["msgs_per_sec"].as_f64()?,
        server_us_per_msg: results["server"]["cpu_us_per_msg"].as_f64(),
        client_us_per_msg: results["client"]["cpu_us_per_msg"].as_f64(),
        p50_ns: latency["p50"].as_f64().unwrap_or(0.0),
        p99_ns: latency["p99"].as_f64().unwrap_or(0.0),
        p999_ns: latency["p99_9"].as_f64().unwrap_or(0.0),
        server_rss_bytes: results["server"]["rss_end_bytes"].as_f64(),
        client_bottleneck: results["client_bottleneck"].as_bool().unwrap_or(false),
        mismatches: results["mismatches"].as_u64().unwrap_or(0),
    })
}

fn write_scenario(
    out: &mut String,
    scenario: &str,
    servers: &BTreeMap<String, Vec<Run>>,
    baseline: &str,
) {
    let base_cpu = servers
        .get(baseline)
        .and_then(|runs| median(runs.iter().filter_map(|r| r.server_us_per_msg)));
    let _ = writeln!(out, "### {scenario}\n");
    let _ = writeln!(
        out,
        "| server | runs | msgs/s (range) | server CPU µs/msg (range) | vs {baseline} | p50 | p99 | p99.9 | server RSS | client µs/msg | notes |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for (server, runs) in servers {
        let rate = spread(runs.iter().map(|r| r.msgs_per_sec));
        let cpu = spread(runs.iter().filter_map(|r| r.server_us_per_msg));
        let ratio = match (cpu.map(|c| c.0), base_cpu) {
            (Some(cpu), Some(base)) if base > 0.0 => format!("{:.2}×", cpu / base),
            _ => "–".into(),
        };
        let mut notes = Vec::new();
        if runs.iter().any(|r| r.client_bottleneck) {
            notes.push("client saturated too: compare by CPU/msg".to_owned());
        }
        let mismatches: u64 = runs.iter().map(|r| r.mismatches).sum();
        if mismatches > 0 {
            notes.push(format!("{mismatches} echo mismatches"));
        }
        let _ = writeln!(
            out,
            "| {server} | {} | {} | {} | {ratio} | {} | {} | {} | {} | {} | {} |",
            runs.len(),
            rate.map_or("–".into(), |(m, lo, hi)| format!(
                "{:.0}k ({:.0}–{:.0}k)",
                m / 1e3,
                lo / 1e3,
                hi / 1e3
            )),
            cpu.map_or("–".into(), |(m, lo, hi)| format!(
                "{m:.2} ({lo:.2}–{hi:.2})"
            )),
            duration(median(runs.iter().map(|r| r.p50_ns))),
            duration(median(runs.iter().map(|r| r.p99_ns))),
            duration(median(runs.iter().map(|r| r.p999_ns))),
            median(runs.iter().filter_map(|r| r.server_rss_bytes)).map_or("–".into(), |b| format!(
                "{:.1} MiB",
                b / (1024.0 * 1024.0)
            )),
            median(runs.iter().filter_map(|r| r.client_us_per_msg))
                .map_or("–".into(), |c| format!("{c:.2}")),
            notes.join("; "),
        );
    }
    out.push('\n');
}

/// Median, min and max.
fn spread(values: impl Iterator<Item = f64>) -> Option<(f64, f64, f64)> {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    Some((median_sorted(&values)?, *values.first()?, *values.last()?))
}

fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    spread(values).map(|(m, _, _)| m)
}

fn median_sorted(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

fn duration(ns: Option<f64>) -> String {
    match ns {
        None => "–".into(),
        Some(ns) if ns >= 1e6 => format!("{:.2} ms", ns / 1e6),
        Some(ns) => format!("{:.0} µs", ns / 1e3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_json(label: &str, port: u16, rate: f64, cpu: f64) -> String {
        serde_json::json!({
            "schema": "wsport-bench/1",
            "scenario": format!("echo-64B-100c-1t-{label}-ws-{port}"),
            "flags": {"label": label},
            "results": {
                "msgs_per_sec": rate,
                "latency_ns": {"p50": 700000, "p99": 800000, "p99_9": 2000000},
                "server": {"cpu_us_per_msg": cpu, "rss_end_bytes": 5_000_000},
                "client": {"cpu_us_per_msg": 7.0},
                "client_bottleneck": true,
                "mismatches": 0
            }
        })
        .to_string()
    }

    #[test]
    fn medians_and_ratios_per_scenario() {
        let dir = std::env::temp_dir().join(format!("wsport-summary-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let runs = [
            ("tokio", 1000, 140_000.0, 7.0),
            ("tokio", 1001, 130_000.0, 7.4),
            ("tokio", 1002, 150_000.0, 7.2),
            ("monoio-uring", 1003, 120_000.0, 8.64),
        ];
        for (i, (label, port, rate, cpu)) in runs.iter().enumerate() {
            std::fs::write(
                dir.join(format!("{i}.json")),
                run_json(label, *port, *rate, *cpu),
            )
            .unwrap();
        }
        let summary = summarize(&dir, "tokio").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(summary.contains("### echo-64B-100c-1t-ws\n"), "{summary}");
        assert!(
            summary.contains("| tokio | 3 | 140k (130–150k) | 7.20 (7.00–7.40) | 1.00× |"),
            "{summary}"
        );
        assert!(
            summary.contains("| monoio-uring | 1 | 120k (120–120k) | 8.64 (8.64–8.64) | 1.20× |"),
            "{summary}"
        );
        assert!(summary.contains("client saturated too"), "{summary}");
    }

    #[test]
    fn only_changes_beyond_the_noise_count() {
        // Separated and 10% apart with ±1% spreads: slower; and the mirror image: faster.
        assert_eq!(
            decide((7.0, 6.95, 7.05), (7.7, 7.65, 7.75), 0.03),
            Verdict::Slower
        );
        assert_eq!(
            decide((7.7, 7.65, 7.75), (7.0, 6.95, 7.05), 0.03),
            Verdict::Faster
        );
        // Overlapping repeats: unchanged, however far the medians.
        assert_eq!(
            decide((7.0, 6.5, 7.6), (7.5, 7.5, 7.6), 0.03),
            Verdict::Unchanged
        );
        // Separated but within the threshold.
        assert_eq!(
            decide((7.0, 6.99, 7.01), (7.1, 7.09, 7.11), 0.03),
            Verdict::Unchanged
        );
        // Separated, above the threshold, but within twice the (wide) spread.
        assert_eq!(
            decide((7.0, 6.7, 7.3), (7.6, 7.31, 7.9), 0.03),
            Verdict::Unchanged
        );
    }

    #[test]
    fn empty_directory_is_an_error() {
        let dir = std::env::temp_dir().join(format!("wsport-summary-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let result = summarize(&dir, "tokio");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(result, Err(SummaryError::Empty(_))));
    }
}
