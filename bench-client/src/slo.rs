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

use wsport_bench_record::format_ns;

use crate::cli::{Command, Opts, RateArgs};
use crate::error::{BenchError, OutputError};
use crate::objectives::Slo;
use crate::report::{EndedBy, Report};
use crate::run::{run_once, write_json};
use crate::slo_record::{ObjectiveResult, SloRecord, TrialRecord, PRECISION};
use crate::stop::Stop;

/// Trials in one search, at most.
pub const MAX_TRIALS: usize = 12;

/// A trial whose client sent less than this fraction of its target rate failed: the client
/// (or its --max-in-flight cap) could not keep up.
const SENT_FRACTION: f64 = 0.97;

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
        let report = match run_once(&trial_opts, stop) {
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
        if let Err(source) = write_json(path, &report) {
            report.output_errors.push(OutputError {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objectives::parse_slo;

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
