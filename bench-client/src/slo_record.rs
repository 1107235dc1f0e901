//! What `rate --slo` found, as the JSON's `slo` field and the summary's `slo` lines: the
//! trials, each judged, and the answer.

use std::fmt;

use serde::Serialize;
use wsport_bench_record::{format_ns, thousands};

use crate::hists::Latency;

/// The search stops once the lowest failing rate is within this fraction above the highest
/// passing one.
pub(crate) const PRECISION: f64 = 0.05;

/// The search in the JSON (`slo`) and the summary.
#[derive(Debug, Clone, Serialize)]
pub struct SloRecord {
    /// The objectives, e.g. `["p99<5ms"]`.
    pub objectives: Vec<String>,
    /// `--rate`: the first trial's rate.
    pub start_rate: u64,
    /// The trials in the order run.
    pub trials: Vec<TrialRecord>,
    /// The highest rate that met every objective; `null` when even the start rate failed.
    pub highest_rate: Option<u64>,
    /// The lowest rate that failed; `null` when none did.
    pub lowest_failing_rate: Option<u64>,
    /// `converged` (within 5%), `start_failed`, `trial_limit`, `rate_limit` or `interrupted`.
    pub stopped_by: &'static str,
}

/// One trial.
#[derive(Debug, Clone, Serialize)]
pub struct TrialRecord {
    /// Target messages per second.
    pub rate: u64,
    /// Whether every objective held and the client kept the rate.
    pub pass: bool,
    /// Messages actually sent per second of the window.
    pub sent_per_sec: f64,
    /// Echoes received per second of the window.
    pub msgs_per_sec: f64,
    /// Corrected latency (from the intended send times).
    pub latency_ns: Latency,
    /// Latency from the actual send times.
    pub latency_uncorrected_ns: Option<Latency>,
    /// How late the client sent (actual − intended send time).
    pub send_lag_ns: Option<Latency>,
    /// Each objective's percentile as measured.
    pub objectives: Vec<ObjectiveResult>,
    /// Why it failed, one sentence per reason; empty when it passed.
    pub failed_because: Vec<String>,
}

/// One objective in one trial.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectiveResult {
    /// e.g. `p99<5ms`.
    pub objective: String,
    /// The measured percentile, ns.
    pub value_ns: u64,
    /// Whether it was below the limit.
    pub met: bool,
}

impl TrialRecord {
    /// `  trial  3   8,000 msgs/s  sent 7,998/s  p50 ...  p99 ...  pass`
    pub fn line(&self, n: usize) -> String {
        let l = &self.latency_ns;
        let mut shown = vec![("p50", l.p50), ("p99", l.p99), ("p99.9", l.p99_9)];
        for o in &self.objectives {
            let name = o.objective.split('<').next().unwrap_or_default();
            if !shown.iter().any(|(n, _)| *n == name) {
                shown.push((name, o.value_ns));
            }
        }
        let percentiles = shown
            .iter()
            .map(|(n, v)| format!("{n} {:>8}", format_ns(*v)))
            .collect::<Vec<_>>()
            .join("  ");
        let verdict = if self.pass {
            "pass".to_owned()
        } else {
            format!("FAIL: {}", self.failed_because.join("; "))
        };
        format!(
            "  trial {n:>2}  {:>11} msgs/s  sent {:>11}/s  {percentiles}  {verdict}",
            thousands(self.rate),
            thousands(self.sent_per_sec.round() as u64)
        )
    }
}

impl SloRecord {
    /// `highest rate meeting p99<5ms: 12,000 msgs/s`, or why there is none.
    pub fn answer(&self) -> String {
        let objectives = self.objectives.join(",");
        match (self.highest_rate, self.stopped_by) {
            (None, _) => format!(
                "highest rate meeting {objectives}: none — even the starting rate, {} msgs/s, fails",
                thousands(self.start_rate)
            ),
            (Some(r), "trial_limit" | "rate_limit") if self.lowest_failing_rate.is_none() => {
                format!(
                    "highest rate meeting {objectives}: at least {} msgs/s (no trial failed; start \
                     higher with --rate)",
                    thousands(r)
                )
            }
            (Some(r), _) => format!(
                "highest rate meeting {objectives}: {} msgs/s",
                thousands(r)
            ),
        }
    }
}

impl fmt::Display for SloRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  slo        {}: {} trial(s) from {} msgs/s, doubling until one failed, then bisecting to \
             {:.0}% (stopped: {}); the figures above are the trial at the answer",
            self.objectives.join(","),
            self.trials.len(),
            thousands(self.start_rate),
            PRECISION * 100.0,
            self.stopped_by.replace('_', " ")
        )?;
        for (i, t) in self.trials.iter().enumerate() {
            writeln!(f, "{}", t.line(i + 1))?;
        }
        writeln!(f, "{}", self.answer())
    }
}
