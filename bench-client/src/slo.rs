//! `rate --slo`: the highest rate at which a server still meets latency objectives.
//!
//! Each trial is a whole `rate` run (fresh connections, --warmup, then a --duration window) at
//! one rate. The search starts at --rate and doubles until a trial fails, then bisects between
//! the highest pass and the lowest failure until they are within 5% of each other, at most
//! [`MAX_TRIALS`] trials in all, so it always ends by itself. A trial passes when every
//! objective holds for the corrected latency (from the intended send times: a server that
//! falls behind shows its backlog) *and* the client actually sent at the rate asked: a trial
//! the client could not drive says nothing about the server, so it counts as a failure and
//! says why.

use std::fmt;

use serde::{Serialize, Serializer};
use wsport_server_common::units::parse_duration;

use crate::cli::{Command, Opts, RateArgs};
use crate::error::BenchError;
use crate::report::{format_ns, EndedBy, Latency, Report};
use crate::Stop;

/// Trials in one search, at most.
pub const MAX_TRIALS: usize = 12;

/// The search stops once the lowest failing rate is within this fraction above the highest
/// passing one.
const PRECISION: f64 = 0.05;

/// A trial whose client sent less than this fraction of its target rate failed: the client
/// (or its --max-in-flight cap) could not keep up.
const SENT_FRACTION: f64 = 0.97;

/// `--slo`: objectives that must all hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// As typed.
    pub text: String,
    /// Each objective.
    pub objectives: Vec<Objective>,
}

impl Serialize for Slo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// One objective: the `percentile`th percentile stays below `limit_ns`.
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    /// e.g. `p99.9<20ms`.
    pub text: String,
    /// e.g. `p99.9`.
    pub name: String,
    /// 0 < percentile <= 100.
    pub percentile: f64,
    /// Strict upper bound, ns.
    pub limit_ns: u64,
}

impl Objective {
    /// The percentile of `hist` this objective looks at, ns.
    pub fn value(&self, hist: &hdrhistogram::Histogram<u64>) -> u64 {
        if hist.is_empty() {
            0
        } else {
            hist.value_at_quantile(self.percentile / 100.0)
        }
    }
}

/// Parse `p99<5ms` or `p99<5ms,p99.9<20ms`.
pub fn parse_slo(text: &str) -> Result<Slo, String> {
    let mut objectives = Vec::new();
    for part in text.split(',').map(str::trim) {
        let bad = || format!("{part:?}: expected an objective like p99<5ms or p99.9<20ms");
        let (name, written) = part.split_once('<').ok_or_else(bad)?;
        let (name, written) = (name.trim(), written.trim());
        let percentile: f64 = name
            .strip_prefix('p')
            .ok_or_else(bad)?
            .parse()
            .map_err(|_| bad())?;
        if !(percentile > 0.0 && percentile <= 100.0) {
            return Err(format!(
                "{part:?}: the percentile must be above 0 and at most 100"
            ));
        }
        let limit = parse_duration(written).map_err(|e| format!("{part:?}: {e}"))?;
        let limit_ns = limit.as_nanos().min(u128::from(u64::MAX)) as u64;
        if limit_ns == 0 {
            return Err(format!("{part:?}: no latency is below 0"));
        }
        objectives.push(Objective {
            text: format!("{name}<{written}"),
            name: name.to_owned(),
            percentile,
            limit_ns,
        });
    }
    Ok(Slo {
        text: text.trim().to_owned(),
        objectives,
    })
}

/// The search's rates: which to try next, and what has been learned.
#[derive(Debug, Clone)]
pub struct Search {
    start: u64,
    /// The highest rate a client can be asked for (one message per ns per connection).
    cap: u64,
    /// Highest rate that passed.
    pass: Option<u64>,
    /// Lowest rate that failed.
    fail: Option<u64>,
    trials: usize,
}

impl Search {
    /// A search from `start`, never above `cap`.
    pub fn new(start: u64, cap: u64) -> Self {
        Self {
            start,
            cap: cap.max(start),
            pass: None,
            fail: None,
            trials: 0,
        }
    }

    /// The next rate to try, or `None` when the search is over.
    pub fn next_rate(&self) -> Option<u64> {
        if self.trials >= MAX_TRIALS {
            return None;
        }
        match (self.pass, self.fail) {
            (None, None) => Some(self.start),
            (None, Some(_)) => None,
            (Some(pass), None) => (pass < self.cap).then(|| pass.saturating_mul(2).min(self.cap)),
            (Some(pass), Some(fail)) => {
                let mid = pass + (fail - pass) / 2;
                let close = (fail - pass) as f64 <= PRECISION * pass as f64;
                (!close && mid > pass).then_some(mid)
            }
        }
    }

    /// The outcome of a trial at `rate`.
    pub fn record(&mut self, rate: u64, passed: bool) {
        self.trials += 1;
        if passed {
            self.pass = Some(self.pass.map_or(rate, |p| p.max(rate)));
        } else {
            self.fail = Some(self.fail.map_or(rate, |f| f.min(rate)));
        }
    }

    /// Why the search ended (once [`Self::next_rate`] is `None`).
    pub fn stopped_by(&self) -> &'static str {
        match (self.pass, self.fail) {
            (None, Some(_)) => "start_failed",
            (Some(p), None) if p >= self.cap => "rate_limit",
            _ if self.trials >= MAX_TRIALS && self.next_rate_ignoring_limit() => "trial_limit",
            _ => "converged",
        }
    }

    fn next_rate_ignoring_limit(&self) -> bool {
        Self {
            trials: 0,
            ..self.clone()
        }
        .next_rate()
        .is_some()
    }
}

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
    /// Judge the run of one trial.
    pub fn judge(rate: u64, report: &Report, slo: &Slo) -> Self {
        let r = &report.results;
        let mut why = Vec::new();
        let objectives: Vec<ObjectiveResult> = slo
            .objectives
            .iter()
            .map(|o| {
                let value_ns = o.value(&report.hists.latency);
                let met = value_ns < o.limit_ns;
                if !met {
                    why.push(format!(
                        "{} {} is not below {}",
                        o.name,
                        format_ns(value_ns),
                        format_ns(o.limit_ns)
                    ));
                }
                ObjectiveResult {
                    objective: o.text.clone(),
                    value_ns,
                    met,
                }
            })
            .collect();
        if r.messages == 0 {
            why.push("no echo came back in the window".into());
        }
        if r.sent_per_sec < SENT_FRACTION * rate as f64 {
            why.push(format!(
                "sent only {:.0} of {rate} msgs/s: the client could not keep up (or --max-in-flight \
                 held it back)",
                r.sent_per_sec
            ));
        }
        // Corrected = as sent + send lag: lateness can only make an objective fail, so it
        // is worth saying only beside a miss, which may then be the client's.
        let missed = objectives.iter().any(|o| !o.met);
        if let (true, true, Some(lag)) = (missed, r.send_lag_exceeded, &r.send_lag_ns) {
            why.push(format!(
                "the client sent late (send lag p99 {}): the miss may be its own",
                format_ns(lag.p99)
            ));
        }
        let failed: u64 = r.errors.values().map(|e| e.count).sum();
        if failed > 0 {
            why.push(format!("{failed} connection(s) failed"));
        }
        if r.mismatches > 0 {
            why.push(format!("{} echoes did not match", r.mismatches));
        }
        if report.ended_by == EndedBy::Interrupted {
            why.push("interrupted".into());
        }
        Self {
            rate,
            pass: why.is_empty(),
            sent_per_sec: r.sent_per_sec,
            msgs_per_sec: r.msgs_per_sec,
            latency_ns: r.latency_ns.clone(),
            latency_uncorrected_ns: r.latency_uncorrected_ns.clone(),
            send_lag_ns: r.send_lag_ns.clone(),
            objectives,
            failed_because: why,
        }
    }

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

/// Run the search for `rate --slo`: one `rate` run per trial.
pub(crate) fn search(
    opts: &Opts,
    args: &RateArgs,
    slo: &Slo,
    stop: &Stop,
) -> Result<Report, BenchError> {
    if args.common.hlog.is_some() {
        return Err(BenchError::Usage(
            "--hlog records one window; with --slo each trial is summarised in the JSON \
             (slo.trials) instead"
                .into(),
        ));
    }
    let cap = (args.common.connections.max(1) as u64).saturating_mul(1_000_000_000);
    let mut search = Search::new(args.rate, cap);
    let live = !args.common.quiet;
    let mut trials = Vec::new();
    // The report of the highest passing trial, else of the first one.
    let mut shown: Option<Report> = None;
    let mut interrupted = false;
    while let Some(rate) = search.next_rate().filter(|_| !stop.is_stopped()) {
        let mut trial = args.clone();
        trial.rate = rate;
        trial.slo = None;
        trial.common.json = None;
        trial.common.quiet = true;
        let trial_opts = Opts {
            command: Command::Rate(trial),
            argv: Vec::new(),
        };
        // Ctrl-C between trials, or while one opens its connections, ends the search with
        // the trials done so far.
        let report = match crate::run_once(&trial_opts, stop) {
            Err(BenchError::Interrupted) if shown.is_some() => {
                interrupted = true;
                break;
            }
            other => other?,
        };
        let record = TrialRecord::judge(rate, &report, slo);
        if live {
            eprintln!("{}", record.line(trials.len() + 1));
        }
        search.record(rate, record.pass);
        // Passing rates only grow as the search goes on: a pass is always the highest yet.
        interrupted = report.ended_by == EndedBy::Interrupted;
        if shown.is_none() || record.pass {
            shown = Some(report);
        }
        trials.push(record);
        if interrupted {
            break;
        }
    }
    let Some(mut report) = shown else {
        return Err(BenchError::Interrupted);
    };
    let record = SloRecord {
        objectives: slo.objectives.iter().map(|o| o.text.clone()).collect(),
        start_rate: args.rate,
        highest_rate: trials.iter().filter(|t| t.pass).map(|t| t.rate).max(),
        lowest_failing_rate: trials.iter().filter(|t| !t.pass).map(|t| t.rate).min(),
        stopped_by: if interrupted || stop.is_stopped() {
            "interrupted"
        } else {
            search.stopped_by()
        },
        trials,
    };
    if live {
        eprintln!("{}", record.answer());
    }
    report.scenario = scenario(&report.scenario, slo);
    report.flags = serde_json::to_value(args).unwrap_or_default();
    report.argv = opts.argv.clone();
    report.slo = Some(record);
    if let Some(path) = &args.common.json {
        if let Err(source) = crate::write_json(path, &report) {
            report.output_errors.push(crate::OutputError {
                path: path.clone(),
                source,
            });
        }
    }
    Ok(report)
}

/// `rate-8000ps-64B-...` -> `rate-slo-p99lt5ms-64B-...`: the answer is the result, not an
/// input, so the rate leaves the name and the objectives take its place.
fn scenario(trial: &str, slo: &Slo) -> String {
    let objectives: Vec<String> = slo
        .objectives
        .iter()
        .map(|o| o.text.replace('<', "lt"))
        .collect();
    let rest = trial
        .strip_prefix("rate-")
        .and_then(|r| r.split_once("ps-"))
        .map_or(trial, |(_, rest)| rest);
    format!("rate-slo-{}-{rest}", objectives.join("+"))
}

/// 1234567 -> `1,234,567`.
fn thousands(n: u64) -> String {
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
    fn objectives_parse() {
        let s = parse_slo("p99<5ms, p99.9<20ms").unwrap();
        assert_eq!(s.objectives.len(), 2);
        assert_eq!(s.objectives[0].percentile, 99.0);
        assert_eq!(s.objectives[0].limit_ns, 5_000_000);
        assert_eq!(s.objectives[1].text, "p99.9<20ms");
        assert_eq!(s.objectives[1].percentile, 99.9);
        assert_eq!(parse_slo("p50<1us").unwrap().objectives[0].limit_ns, 1_000);
        for bad in [
            "", "99<5ms", "p99>5ms", "p0<1ms", "p101<1ms", "p99<", "p99<5", "p99<0s",
        ] {
            assert!(parse_slo(bad).is_err(), "{bad}");
        }
    }

    /// A server that meets the objective up to `limit`: the search's trials and answer.
    fn simulate(start: u64, limit: u64) -> (Vec<u64>, Search) {
        let mut s = Search::new(start, u64::MAX / 4);
        let mut rates = Vec::new();
        while let Some(r) = s.next_rate() {
            rates.push(r);
            s.record(r, r <= limit);
        }
        (rates, s)
    }

    #[test]
    fn search_doubles_then_bisects_to_five_percent() {
        let (rates, s) = simulate(1000, 5000);
        assert_eq!(&rates[..4], &[1000, 2000, 4000, 8000]);
        assert_eq!(rates[4], 6000);
        let (pass, fail) = (s.pass.unwrap(), s.fail.unwrap());
        assert!(pass <= 5000 && fail > 5000);
        assert!((fail - pass) as f64 <= 0.05 * pass as f64, "{pass} {fail}");
        assert!(rates.len() <= MAX_TRIALS);
        assert_eq!(s.stopped_by(), "converged");
    }

    #[test]
    fn search_stops_when_the_start_fails_or_trials_run_out() {
        let (rates, s) = simulate(1000, 10);
        assert_eq!((rates, s.stopped_by()), (vec![1000], "start_failed"));
        let (rates, s) = simulate(1, u64::MAX);
        assert_eq!(rates.len(), MAX_TRIALS);
        assert_eq!(rates[MAX_TRIALS - 1], 1 << (MAX_TRIALS - 1));
        assert_eq!(s.stopped_by(), "trial_limit");
        let mut capped = Search::new(600, 1000);
        assert_eq!(capped.next_rate(), Some(600));
        capped.record(600, true);
        assert_eq!(capped.next_rate(), Some(1000));
        capped.record(1000, true);
        assert_eq!(
            (capped.next_rate(), capped.stopped_by()),
            (None, "rate_limit")
        );
    }

    #[test]
    fn scenario_names_the_objectives() {
        let slo = parse_slo("p99<5ms,p99.9<20ms").unwrap();
        assert_eq!(
            scenario("rate-8000ps-64B-100c-1t-ws-9001", &slo),
            "rate-slo-p99lt5ms+p99.9lt20ms-64B-100c-1t-ws-9001"
        );
    }
}
