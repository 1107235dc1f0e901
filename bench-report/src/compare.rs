//! `wsport-bench compare BASE CUR`: did any server get slower between two result directories?
//!
//! Each scenario of each workload is judged on the one figure that is the server's own cost
//! and that lower is better for:
//!
//! | workload | figure | why |
//! |---|---|---|
//! | echo | server CPU µs per message | msgs/s is the client–server pair's limit on loopback |
//! | rate | server CPU µs per message | the load is the same for both sides (same scenario = same rate) |
//! | connect | server CPU µs per handshake; else µs per handshake of wall time (1 / handshakes/s) | without `--server-pid` there is no server CPU |
//! | hold | server memory per connection, bytes | what idle connections cost |
//!
//! The decision rule ([`decide`]) is the same for all. A scenario in which either side has a
//! run whose client sent late (send-lag p99 over [`wsport_bench_record::SEND_LAG_LIMIT_NS`]) is not judged:
//! its figures describe the client as much as the server. The verdicts also go out as
//! github-action-benchmark and Bencher JSON, so a CI can keep their history.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use crate::runs::{self, spread, ClientLimit, Run, RunsError};

/// What `compare` decided for one scenario and server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The figure went up beyond the noise of the repeats.
    Slower,
    /// It went down beyond the noise.
    Faster,
    /// Within the noise.
    Unchanged,
    /// No base to compare with (a scenario or server new in CUR).
    New,
    /// A run of either side sent late, so its figures are partly the client's.
    NotJudged,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Self::Slower => "slower",
            Self::Faster => "faster",
            Self::Unchanged => "unchanged",
            Self::New => "new",
            Self::NotJudged => "not judged: the client sent late",
        }
    }
}

/// The figure a workload is judged on.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Bencher measure slug (at most 64 characters, created on first upload).
    pub slug: &'static str,
    /// Unit, for people and for github-action-benchmark.
    pub unit: &'static str,
    pub(crate) read: fn(&Run) -> Option<f64>,
}

/// Metrics are told apart by their slug (function pointers have no reliable identity).
impl PartialEq for Metric {
    fn eq(&self, other: &Self) -> bool {
        self.slug == other.slug
    }
}

impl Eq for Metric {}

pub(crate) const SERVER_CPU_PER_MSG: Metric = Metric {
    slug: "server-cpu-us-per-message",
    unit: "µs/msg",
    read: |r| r.server_us_per_msg,
};
const SERVER_CPU_PER_HANDSHAKE: Metric = Metric {
    slug: "server-cpu-us-per-handshake",
    unit: "µs/handshake",
    read: |r| r.server_us_per_msg,
};
const WALL_PER_HANDSHAKE: Metric = Metric {
    slug: "wall-us-per-handshake",
    unit: "µs/handshake (1 / handshakes per second)",
    read: |r| (r.msgs_per_sec > 0.0).then(|| 1e6 / r.msgs_per_sec),
};
const MEMORY_PER_CONNECTION: Metric = Metric {
    slug: "server-memory-bytes-per-connection",
    unit: "bytes/connection",
    read: |r| r.memory_per_connection,
};

/// The metrics of a workload, preferred first.
pub(crate) fn metrics(workload: &str) -> &'static [Metric] {
    match workload {
        "echo" | "rate" | "raw" => &[SERVER_CPU_PER_MSG],
        "connect" => &[SERVER_CPU_PER_HANDSHAKE, WALL_PER_HANDSHAKE],
        "hold" => &[MEMORY_PER_CONNECTION],
        _ => &[],
    }
}

/// One scenario and server, judged.
#[derive(Debug, Clone)]
pub struct Row {
    /// Scenario (without server and ports).
    pub scenario: String,
    /// Server.
    pub server: String,
    /// The figure compared.
    pub metric: Metric,
    /// Base (median, min, max), `None` when new.
    pub base: Option<(f64, f64, f64)>,
    /// Current (median, min, max).
    pub current: (f64, f64, f64),
    /// Current repeats.
    pub runs: usize,
    /// The decision.
    pub verdict: Verdict,
}

impl Row {
    /// `scenario/server`: the benchmark's name in both JSON formats.
    pub fn name(&self) -> String {
        format!("{}/{}", self.scenario, self.server)
    }

    fn change(&self) -> Option<f64> {
        self.base.map(|b| self.current.0 / b.0 - 1.0)
    }
}

/// Every scenario and server of CUR with a figure, judged against BASE.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// In CUR's order.
    pub rows: Vec<Row>,
}

/// Compare the runs of `current` with those of `base`; `threshold` is the smallest relative
/// change that can count (0.03 = 3%).
pub fn compare(base: &Path, current: &Path, threshold: f64) -> Result<Comparison, RunsError> {
    let (base, _) = runs::load(base)?;
    let (current, _) = runs::load(current)?;
    Ok(compare_runs(&base, &current, threshold))
}

/// [`compare`] on runs already read.
pub fn compare_runs(base: &[Run], current: &[Run], threshold: f64) -> Comparison {
    let base = group(base);
    let mut rows = Vec::new();
    for ((scenario, server), runs) in ordered(current) {
        let base_runs = base.get(&(scenario.clone(), server.clone()));
        let workload = runs[0].workload.as_str();
        // The first metric both sides have; a new scenario takes the first CUR has.
        let figures = |list: &[&Run], m: &Metric| spread(list.iter().filter_map(|r| (m.read)(r)));
        let chosen = metrics(workload).iter().find_map(|m| {
            let current = figures(&runs, m)?;
            match base_runs {
                Some(b) => figures(b, m).map(|b| (*m, Some(b), current)),
                None => Some((*m, None, current)),
            }
        });
        let Some((metric, base_figure, current_figure)) = chosen else {
            continue;
        };
        let late = |list: &[&Run]| {
            list.iter()
                .any(|r| r.client_bound == Some(ClientLimit::Late))
        };
        let verdict = match base_figure {
            _ if late(&runs) || base_runs.is_some_and(|b| late(b)) => Verdict::NotJudged,
            Some(b) => decide(b, current_figure, threshold),
            None => Verdict::New,
        };
        rows.push(Row {
            scenario,
            server,
            metric,
            base: base_figure,
            current: current_figure,
            runs: runs.len(),
            verdict,
        });
    }
    Comparison { rows }
}

fn group(runs: &[Run]) -> BTreeMap<(String, String), Vec<&Run>> {
    let mut out: BTreeMap<(String, String), Vec<&Run>> = BTreeMap::new();
    for r in runs {
        out.entry((r.scenario.clone(), r.server.clone()))
            .or_default()
            .push(r);
    }
    out
}

/// (scenario, server) groups in the order `runs` has them (the report's order).
fn ordered(runs: &[Run]) -> Vec<((String, String), Vec<&Run>)> {
    let mut out: Vec<((String, String), Vec<&Run>)> = Vec::new();
    for r in runs {
        let key = (r.scenario.clone(), r.server.clone());
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(r),
            None => out.push((key, vec![r])),
        }
    }
    out
}

/// The rule, on (median, min, max) of each side, for a figure where lower is better.
///
/// A change counts only when the repeats of the two sides do not overlap at all (every
/// current run beyond every base run) and the medians differ by more than `threshold` and by
/// more than twice the larger relative spread of either side; with 3 repeats a side, a
/// non-overlap by chance alone happens 1 time in 20 in a given direction.
pub fn decide(base: (f64, f64, f64), current: (f64, f64, f64), threshold: f64) -> Verdict {
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

/// A figure with as many decimals as it needs to show a few % change.
pub(crate) fn figure(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn with_range((m, lo, hi): (f64, f64, f64)) -> String {
    format!("{} ({}–{})", figure(m), figure(lo), figure(hi))
}

impl Comparison {
    /// Whether any server got slower.
    pub fn any_slower(&self) -> bool {
        self.rows.iter().any(|r| r.verdict == Verdict::Slower)
    }

    /// The Markdown table.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| scenario | server | figure | base (range) | current (range) | change | verdict |\n|---|---|---|---:|---:|---:|---|\n",
        );
        for r in &self.rows {
            let verdict = match r.verdict {
                Verdict::Slower => "**slower**",
                v => v.as_str(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {verdict} |",
                r.scenario,
                r.server,
                r.metric.unit,
                r.base.map_or("–".into(), with_range),
                with_range(r.current),
                r.change()
                    .map_or("–".into(), |c| format!("{:+.1}%", c * 100.0)),
            );
        }
        out
    }

    /// github-action-benchmark's `customSmallerIsBetter` input: an array of
    /// `{name, unit, value, range, extra}`, `value` a number, `range` and `extra` free text
    /// (README "Examples" → custom tools, and `BenchmarkResult` in src/extract.ts of
    /// <https://github.com/benchmark-action/github-action-benchmark>). Every figure here is
    /// lower-is-better; `value` is CUR's median, `range` half its min–max spread.
    pub fn github_json(&self) -> Value {
        Value::Array(
            self.rows
                .iter()
                .map(|r| {
                    let (m, lo, hi) = r.current;
                    let base = r.base.map_or("no base".into(), |b| {
                        format!(
                            "base {}, change {:+.1}%",
                            with_range(b),
                            r.change().unwrap_or(0.0) * 100.0
                        )
                    });
                    json!({
                        "name": r.name(),
                        "unit": r.metric.unit,
                        "value": m,
                        "range": format!("± {}", figure((hi - lo) / 2.0)),
                        "extra": format!(
                            "{}: median of {} runs ({}–{}); {base}; {}",
                            r.metric.slug,
                            r.runs,
                            figure(lo),
                            figure(hi),
                            r.verdict.as_str()
                        ),
                    })
                })
                .collect(),
        )
    }

    /// Bencher Metric Format: `{"<benchmark>": {"<measure slug>": {"value", "lower_value",
    /// "upper_value"}}}` (<https://bencher.dev/docs/reference/bencher-metric-format/>); a
    /// measure given by slug is created on first upload. `value` is CUR's median, the bounds
    /// its min and max.
    pub fn bencher_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        for r in &self.rows {
            let (m, lo, hi) = r.current;
            let entry = out
                .entry(r.name())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
            if let Value::Object(measures) = entry {
                measures.insert(
                    r.metric.slug.to_owned(),
                    json!({"value": m, "lower_value": lo, "upper_value": hi}),
                );
            }
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_late_client_is_not_judged() {
        let run = |cpu: f64, lag_p99: u64| {
            Run::parse(
                "x.json".into(),
                json!({
                    "schema": "wsport-bench/1", "workload": "rate",
                    "scenario": "rate-1000ps-64B-10c-1t-tokio-ws-1", "flags": {"label": "tokio"},
                    "setup": {"threads": 1, "pacing": {"rate": 1000}},
                    "results": {"msgs_per_sec": 1000.0, "latency_ns": {"p50": 1},
                        "send_lag_ns": {"p50": 1, "p99": lag_p99},
                        "server": {"cpu_us_per_msg": cpu}}
                }),
            )
            .unwrap()
        };
        let on_time = wsport_bench_record::SEND_LAG_LIMIT_NS;
        let base = [run(7.0, on_time), run(7.01, on_time)];
        let slower = [run(9.0, on_time), run(9.01, on_time)];
        assert_eq!(
            compare_runs(&base, &slower, 0.03).rows[0].verdict,
            Verdict::Slower
        );
        let late = [run(9.0, on_time), run(9.01, on_time + 1)];
        let c = compare_runs(&base, &late, 0.03);
        assert_eq!(c.rows[0].verdict, Verdict::NotJudged);
        assert!(!c.any_slower());
        assert!(c.markdown().contains("not judged: the client sent late"));
        let c = compare_runs(&late, &base, 0.03);
        assert_eq!(c.rows[0].verdict, Verdict::NotJudged);
    }

    #[test]
    fn connect_without_server_cpu_falls_back_to_wall_time() {
        let run = |rate: f64, cpu: Option<f64>| {
            Run::parse(
                "x.json".into(),
                json!({
                    "schema": "wsport-bench/1", "workload": "connect",
                    "scenario": "connect-10c-1t-tokio-ws-1", "flags": {"label": "tokio"},
                    "setup": {"threads": 1},
                    "results": {"msgs_per_sec": rate, "latency_ns": {"p50": 1},
                        "server": cpu.map(|c| json!({"cpu_us_per_msg": c}))}
                }),
            )
            .unwrap()
        };
        let c = compare_runs(&[run(1000.0, None)], &[run(500.0, None)], 0.03);
        assert_eq!(c.rows[0].metric, WALL_PER_HANDSHAKE);
        assert_eq!(c.rows[0].current.0, 2000.0);
        assert_eq!(c.rows[0].verdict, Verdict::Slower);
        let c = compare_runs(
            &[run(1000.0, Some(200.0))],
            &[run(1000.0, Some(201.0))],
            0.03,
        );
        assert_eq!(c.rows[0].metric, SERVER_CPU_PER_HANDSHAKE);
        assert_eq!(c.rows[0].verdict, Verdict::Unchanged);
    }
}
