//! `wsport-bench compare --paired DIR`: did head get slower than base, judged pair by pair in
//! one directory where the two builds ran alternately (`scripts/run-bench.sh --base-bin DIR
//! --head-bin DIR`).
//!
//! Each run of such a directory carries `"gate": {"side", "pair", "order", "server"}`. Runs of
//! one scenario, server and pair ran back to back, in a random order, so whatever the host did
//! in those seconds hit both alike; the ratio head/base of a pair is free of the drift that
//! swamps a comparison of two separate runs (results/2026-11-22-vm/gate: the host moved by
//! more than 10% between sides ~45 s apart). The figure is [`compare`]'s for the workload,
//! with the server's CPU per message read from schedstat (ns resolution) where both runs have
//! it, so that short repeats are not rounded to clock ticks.
//!
//! The rule, per scenario and server, on the log ratios of the pairs
//! ([`crate::median_interval`]): **slower** when the whole 95% interval of the median ratio
//! lies above 1 and the median itself above 1 + `min_effect`;
//! **faster** in mirror image; otherwise **unchanged within ±X%**, X the effect this run
//! would have detected 4 times in 5 (from the interval's width, at least `min_effect`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::compare::{self, figure, Metric, Verdict, SERVER_CPU_PER_MSG};
use crate::median_interval::{self, MedianInterval, POWER_80_HALF_WIDTHS};
use crate::runs::{self, ClientLimit, Run, RunsError};

/// The confidence of the interval the rule reads.
pub const CONFIDENCE: f64 = 0.95;

/// One scenario and server of a paired directory, judged.
#[derive(Debug, Clone)]
pub struct PairedRow {
    /// Scenario (without server and ports).
    pub scenario: String,
    /// Server (without the side).
    pub server: String,
    /// The figure compared.
    pub metric: Metric,
    /// Complete pairs (both sides measured).
    pub pairs: usize,
    /// Median of the base side's figures.
    pub base_median: f64,
    /// head/base: the median ratio and its interval, `None` with too few pairs.
    pub ratio: Option<(f64, f64, f64)>,
    /// The smallest relative change this row would detect 4 times in 5.
    pub detectable: Option<f64>,
    /// The decision (never [`Verdict::New`]).
    pub verdict: Verdict,
}

/// Every scenario and server of a paired directory, judged.
#[derive(Debug, Clone)]
pub struct PairedComparison {
    /// In the directory's order.
    pub rows: Vec<PairedRow>,
    /// The sides compared, base first.
    pub sides: (String, String),
}

/// The runs of one scenario and server: per pair, (base, head), either missing if it failed.
#[derive(Debug, Default)]
struct Cell<'a> {
    pairs: BTreeMap<u64, (Option<&'a Run>, Option<&'a Run>)>,
}

/// Judge the pairs of `dir`, `head` side against `base` side.
pub fn compare_paired(
    dir: &Path,
    base: &str,
    head: &str,
    min_effect: f64,
) -> Result<PairedComparison, RunsError> {
    let (runs, _) = runs::load(dir)?;
    Ok(compare_paired_runs(&runs, base, head, min_effect))
}

/// [`compare_paired`] on runs already read; runs without a gate tag, or of other sides, are
/// left out.
pub fn compare_paired_runs(
    runs: &[Run],
    base: &str,
    head: &str,
    min_effect: f64,
) -> PairedComparison {
    let rows = cells(runs, base, head)
        .into_iter()
        .filter_map(|((scenario, server), cell)| judge_cell(scenario, server, &cell, min_effect))
        .collect();
    PairedComparison {
        rows,
        sides: (base.to_owned(), head.to_owned()),
    }
}

/// A run's side, pair and server, from its gate tag.
fn gate_tag(run: &Run) -> Option<(&str, u64, &str)> {
    let gate = &run.doc["gate"];
    Some((
        gate["side"].as_str()?,
        gate["pair"].as_u64()?,
        gate["server"].as_str()?,
    ))
}

fn cells<'a>(runs: &'a [Run], base: &str, head: &str) -> Vec<((String, String), Cell<'a>)> {
    let mut out: Vec<((String, String), Cell<'a>)> = Vec::new();
    for run in runs {
        let Some((side, pair, server)) = gate_tag(run) else {
            continue;
        };
        if side != base && side != head {
            continue;
        }
        let key = (run.scenario.clone(), server.to_owned());
        let at = match out.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                out.push((key, Cell::default()));
                out.len() - 1
            }
        };
        let slot = out[at].1.pairs.entry(pair).or_default();
        if side == base {
            slot.0 = Some(run);
        } else {
            slot.1 = Some(run);
        }
    }
    out
}

/// The figure of `run`: server CPU per message from schedstat when `precise`.
fn read(run: &Run, metric: &Metric, precise: bool) -> Option<f64> {
    if precise {
        run.doc["results"]["server"]["sched_cpu_us_per_msg"].as_f64()
    } else {
        (metric.read)(run)
    }
}

fn judge_cell(
    scenario: String,
    server: String,
    cell: &Cell<'_>,
    min_effect: f64,
) -> Option<PairedRow> {
    let complete: Vec<(&Run, &Run)> = cell
        .pairs
        .values()
        .filter_map(|(b, h)| Some(((*b)?, (*h)?)))
        .collect();
    let workload = complete.first()?.0.workload.clone();
    let runs_of = || complete.iter().flat_map(|(b, h)| [*b, *h]);
    let metric = *compare::metrics(&workload)
        .iter()
        .find(|m| runs_of().all(|r| (m.read)(r).is_some()))?;
    let precise = metric == SERVER_CPU_PER_MSG
        && runs_of().all(|r| read(r, &metric, true).is_some_and(|v| v > 0.0));
    let figures: Vec<(f64, f64)> = complete
        .iter()
        .filter_map(|(b, h)| Some((read(b, &metric, precise)?, read(h, &metric, precise)?)))
        .filter(|(b, h)| *b > 0.0 && *h > 0.0)
        .collect();
    let late = runs_of().any(|r| r.client_bound == Some(ClientLimit::Late));
    let base_median = runs::median(figures.iter().map(|(b, _)| *b))?;
    let log_ratios: Vec<f64> = figures.iter().map(|(b, h)| (h / b).ln()).collect();
    let shift = median_interval::median_interval(&log_ratios, CONFIDENCE);
    let verdict = match shift {
        _ if late => Verdict::NotJudged,
        Some(s) => decide(s, min_effect),
        None => Verdict::Unchanged,
    };
    Some(PairedRow {
        scenario,
        server,
        metric,
        pairs: figures.len(),
        base_median,
        ratio: shift.map(|s| (s.median.exp(), s.low.exp(), s.high.exp())),
        detectable: shift.map(|s| detectable(s, min_effect)),
        verdict,
    })
}

/// The rule (see the module doc), on the median log ratio and its interval.
pub fn decide(shift: MedianInterval, min_effect: f64) -> Verdict {
    let least = min_effect.ln_1p();
    if shift.low > 0.0 && shift.median > least {
        Verdict::Slower
    } else if shift.high < 0.0 && shift.median < -least {
        Verdict::Faster
    } else {
        Verdict::Unchanged
    }
}

/// The relative change this run would detect 4 times in 5: the interval's half-width in log
/// units scaled to 80% power, never below `min_effect` (smaller changes are never called).
pub fn detectable(shift: MedianInterval, min_effect: f64) -> f64 {
    let half_width = (shift.high - shift.low) / 2.0;
    (POWER_80_HALF_WIDTHS * half_width).exp_m1().max(min_effect)
}

fn percent(ratio: f64) -> String {
    format!("{:+.1}%", (ratio - 1.0) * 100.0)
}

impl PairedRow {
    /// The verdict as the table says it: "unchanged within ±X%" names what this run could see.
    pub fn verdict_text(&self) -> String {
        match (self.verdict, self.detectable) {
            (Verdict::Slower, _) => "**slower**".into(),
            (Verdict::Unchanged, Some(d)) => format!("unchanged within ±{:.1}%", d * 100.0),
            (Verdict::Unchanged, None) => format!(
                "not judged: {} pairs, at least {} needed",
                self.pairs,
                median_interval::MIN_PAIRS_95
            ),
            (Verdict::NotJudged, _) => "not judged: the client sent late".into(),
            (v, _) => format!("{v:?}").to_lowercase(),
        }
    }
}

impl PairedComparison {
    /// Whether any server got slower.
    pub fn any_slower(&self) -> bool {
        self.rows.iter().any(|r| r.verdict == Verdict::Slower)
    }

    /// The Markdown table.
    pub fn markdown(&self) -> String {
        let (base, head) = &self.sides;
        let mut out = format!(
            "| scenario | server | figure | pairs | {base} median | {head}/{base} | 95% interval | detectable | verdict |\n|---|---|---|---:|---:|---:|---:|---:|---|\n"
        );
        for r in &self.rows {
            let (ratio, interval) = r.ratio.map_or(("–".into(), "–".into()), |(m, lo, hi)| {
                (percent(m), format!("{} … {}", percent(lo), percent(hi)))
            });
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {ratio} | {interval} | {} | {} |",
                r.scenario,
                r.server,
                r.metric.unit,
                r.pairs,
                figure(r.base_median),
                r.detectable
                    .map_or("–".into(), |d| format!("±{:.1}%", d * 100.0)),
                r.verdict_text(),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A deterministic stream of standard normal draws (splitmix64, Box–Muller), so the
    /// statistics are tested on the same noise every time.
    struct Noise(u64);

    impl Noise {
        fn uniform(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            let u = self.uniform().max(1e-300);
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
        }
    }

    /// The verdict on `pairs` pairs whose log ratio is `effect` plus normal noise of `sd`.
    fn trial(noise: &mut Noise, pairs: usize, effect: f64, sd: f64) -> Verdict {
        let d: Vec<f64> = (0..pairs)
            .map(|_| effect.ln_1p() + sd * noise.normal())
            .collect();
        decide(
            median_interval::median_interval(&d, CONFIDENCE).unwrap(),
            0.03,
        )
    }

    fn rate(effect: f64, sd: f64, verdict: Verdict) -> f64 {
        let mut noise = Noise(42);
        let n = 1000;
        (0..n)
            .filter(|_| trial(&mut noise, 10, effect, sd) == verdict)
            .count() as f64
            / n as f64
    }

    #[test]
    fn error_rates_on_synthetic_pairs() {
        // 10 pairs with 3% noise per pair ratio (this VM's paired spread is of that order):
        // A/A almost never slower, +10% always, +5% at least 4 times in 5.
        assert!(rate(0.0, 0.03, Verdict::Slower) <= 0.01);
        assert!(rate(0.10, 0.03, Verdict::Slower) >= 0.99);
        assert!(rate(0.05, 0.03, Verdict::Slower) >= 0.80);
        assert!(rate(-0.10, 0.03, Verdict::Faster) >= 0.99);
        // Noise three times wider: the rule stays safe and loses the small effect.
        assert!(rate(0.0, 0.09, Verdict::Slower) <= 0.05);
        assert!(rate(0.05, 0.09, Verdict::Slower) < 0.5);
    }

    #[test]
    fn a_change_below_the_minimum_effect_is_not_called() {
        let d = [0.02_f64.ln_1p(); 10];
        let s = median_interval::median_interval(&d, CONFIDENCE).unwrap();
        assert!(s.low > 0.0);
        assert_eq!(decide(s, 0.03), Verdict::Unchanged);
        assert_eq!(decide(s, 0.01), Verdict::Slower);
    }

    #[test]
    fn one_outlier_cannot_veto_a_slowdown() {
        let mut d: Vec<f64> = (0..9).map(|i| 0.09 + 0.004 * i as f64).collect();
        d.push(-0.5);
        let s = median_interval::median_interval(&d, CONFIDENCE).unwrap();
        assert_eq!(decide(s, 0.03), Verdict::Slower);
    }

    #[test]
    fn detectable_effect_follows_the_spread() {
        let shift = |half: f64| MedianInterval {
            median: 0.0,
            low: -half,
            high: half,
            coverage: 0.95,
        };
        assert_eq!(detectable(shift(0.001), 0.03), 0.03);
        let wide = detectable(shift(0.05), 0.03);
        assert!((wide - (0.05 * POWER_80_HALF_WIDTHS).exp_m1()).abs() < 1e-12);
    }

    fn run(side: &str, pair: u64, sched: f64) -> Run {
        Run::parse(
            "x.json".into(),
            json!({
                "schema": "wsport-bench/1", "workload": "echo",
                "gate": {"side": side, "pair": pair, "order": 0, "server": "tokio"},
                "scenario": format!("echo-64B-100c-1t-tokio@{side}-ws-1"),
                "flags": {"label": format!("tokio@{side}")},
                "setup": {"threads": 1},
                "results": {"msgs_per_sec": 1000.0, "latency_ns": {"p50": 1},
                    "server": {"cpu_us_per_msg": 7.0, "sched_cpu_us_per_msg": sched}}
            }),
        )
        .unwrap()
    }

    #[test]
    fn pairs_are_read_from_gate_tags_with_the_precise_figure() {
        // The host drifts by 40% across the pairs; head is 10% dearer within each.
        let mut runs = Vec::new();
        for pair in 1..=8 {
            let host = 1.0 + 0.05 * pair as f64;
            runs.push(run("base", pair, 5.0 * host));
            runs.push(run("head", pair, 5.5 * host));
        }
        // A pair with one side missing is left out.
        runs.push(run("base", 9, 5.0));
        let c = compare_paired_runs(&runs, "base", "head", 0.03);
        assert_eq!(c.rows.len(), 1);
        let row = &c.rows[0];
        assert_eq!(
            (row.scenario.as_str(), row.server.as_str()),
            ("echo-64B-100c-1t-ws", "tokio")
        );
        assert_eq!(row.pairs, 8);
        assert!((row.ratio.unwrap().0 - 1.1).abs() < 1e-9);
        assert_eq!(row.verdict, Verdict::Slower);
        assert!(c.any_slower());
        assert!(c.markdown().contains("+10.0%"));
        // Swapped sides: faster.
        let c = compare_paired_runs(&runs, "head", "base", 0.03);
        assert_eq!(c.rows[0].verdict, Verdict::Faster);
        // Too few pairs: no interval, and the table says so.
        let c = compare_paired_runs(&runs[..10], "base", "head", 0.03);
        assert_eq!(
            (c.rows[0].pairs, c.rows[0].verdict),
            (5, Verdict::Unchanged)
        );
        assert!(c
            .markdown()
            .contains("not judged: 5 pairs, at least 6 needed"));
        assert!(!c.any_slower());
    }
}
