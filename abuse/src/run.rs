//! One abuse run: the slowloris and never-read connections held, the other kinds opened and
//! ended over and over at a paced rate, all bounded by a deadline and a count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::attack::attack;
use crate::kind::Kind;
use crate::outcome::Record;
use crate::report::Report;
use crate::rss::{self, BoundInputs, Sampler};
use crate::target::Target;

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub target: Target,
    pub kinds: Vec<Kind>,
    pub duration: Duration,
    /// Slowloris connections held at once, split evenly between `slowloris` and
    /// `tls-slowloris` when both run.
    pub slowloris: usize,
    /// Never-read connections held at once.
    pub never_read: usize,
    /// Short-lived abusive connections per second, all churn kinds together.
    pub churn_rate: u32,
    /// Abusive connections in all, at most (every kind).
    pub max_connections: u64,
    /// Sample this server's RSS and check it against the bound.
    pub server_pid: Option<u32>,
    /// The bound's inputs, less the abuse's own connections (added here).
    pub bound: BoundInputs,
}

/// Threads that open and end churn connections.
const CHURN_THREADS: u32 = 2;

/// Run `plan` to its deadline and report.
pub fn run(plan: &Plan) -> Report {
    let started = Instant::now();
    let until = started + plan.duration;
    let sampler = plan
        .server_pid
        .map(|pid| Sampler::start(pid, Duration::from_millis(100)));
    let budget = Arc::new(AtomicU64::new(plan.max_connections));
    let mut threads = Vec::new();
    let (slowloris, per_kind) = slowloris_share(plan);
    for &kind in &slowloris {
        // Each one the server drops is replaced, from up to half the connection budget
        // (shared by the slowloris kinds).
        let share = plan.max_connections / 2 / slowloris.len() as u64;
        let budget = take(&budget, share.max(per_kind as u64));
        let target = plan.target.clone();
        threads.push(thread::spawn(move || {
            crate::slowloris::hold(kind, &target, per_kind, budget, until)
        }));
    }
    if plan.kinds.contains(&Kind::NeverRead) && plan.never_read > 0 {
        let count = take(&budget, plan.never_read as u64) as usize;
        let target = plan.target.clone();
        threads.push(thread::spawn(move || {
            crate::hold::hold_never_read(&target, count, until)
        }));
    }
    let churn: Vec<Kind> = plan
        .kinds
        .iter()
        .copied()
        .filter(|k| !k.is_held())
        .collect();
    let churning = !churn.is_empty() && plan.churn_rate > 0;
    if churning {
        for offset in 0..CHURN_THREADS {
            let (target, kinds, budget) = (plan.target.clone(), churn.clone(), Arc::clone(&budget));
            let every =
                Duration::from_secs_f64(f64::from(CHURN_THREADS) / f64::from(plan.churn_rate));
            threads.push(thread::spawn(move || {
                churn_loop(&target, &kinds, offset as usize, every, &budget, until)
            }));
        }
    }
    let records: Vec<Record> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap_or_default())
        .collect();
    let rss = sampler.map(Sampler::finish);
    // The abuse's own connections at their peak: every slowloris held, every never-read
    // client opened (all held to the end), one churn connection per churn thread (none when
    // only held kinds run: an allowance nothing uses would hide growth elsewhere).
    let mut bound = plan.bound;
    let held = |kind: Kind| records.iter().filter(|r| r.kind == kind).count() as u64;
    bound.handshaking += slowloris
        .iter()
        .map(|&k| held(k).min(per_kind as u64))
        .sum::<u64>();
    bound.never_read += held(Kind::NeverRead);
    if churning {
        bound.open += u64::from(CHURN_THREADS);
    }
    let check = rss.as_ref().and_then(|trace| rss::check(trace, bound));
    Report::new(records, started.elapsed(), rss, check)
}

/// Reserve up to `want` connections from the shared budget; returns how many were granted.
fn take(budget: &AtomicU64, want: u64) -> u64 {
    let mut granted = 0;
    let _ = budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
        granted = left.min(want);
        Some(left - granted)
    });
    granted
}

/// The slowloris kinds to hold and how many of each: `--slowloris` split evenly between them,
/// so the server carries as many unfinished handshakes with both kinds as with one.
fn slowloris_share(plan: &Plan) -> (Vec<Kind>, usize) {
    let kinds: Vec<Kind> = plan
        .kinds
        .iter()
        .copied()
        .filter(|k| matches!(k, Kind::Slowloris | Kind::TlsSlowloris))
        .collect();
    if kinds.is_empty() || plan.slowloris == 0 {
        return (Vec::new(), 0);
    }
    let per_kind = (plan.slowloris / kinds.len()).max(1);
    (kinds, per_kind)
}

/// Open one connection of the next kind every `every`, starting at kind `offset`.
fn churn_loop(
    target: &Target,
    kinds: &[Kind],
    offset: usize,
    every: Duration,
    budget: &AtomicU64,
    until: Instant,
) -> Vec<Record> {
    let mut records = Vec::new();
    let mut next = Instant::now();
    let mut i = offset;
    while Instant::now() < until && take(budget, 1) == 1 {
        records.push(attack(kinds[i % kinds.len()], target));
        i += 1;
        next += every;
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    records
}
