//! Two servers compared round by round.
//!
//! `scripts/run-bench.sh --repeat N` runs every server in a cell back to back before the next
//! cell, N times over: each repeat is a *round*, and the runs of one round ran within seconds
//! of each other. On a host that drifts (results/2026-12-06-vm/kernel-floor: the VM moved
//! between two states ~1.3× apart for tens of seconds, whichever server ran) every server's
//! repeats spread over both states, so their ranges overlap and a range-based order says
//! "not separated" even where one server is cheaper in every single round. The ratio of two
//! servers' runs of the same round is nearly free of that drift; its median over the rounds,
//! with the sign test's interval ([`crate::median_interval`], as `compare --paired` uses for
//! base and head), orders them.
//!
//! Where the runs measured how far apart the server's and the client's cores were
//! (`results.core_rtt`, a cache line's round trip), a round counts only when both runs had
//! their cores placed alike: neither run's placement moved during it, and the two round trips
//! are within [`PLACED_ALIKE`] of each other. On the AMD EPYC VM of
//! results/2026-12-07-vm/placed-rounds the hypervisor moved the two vCPUs between one core
//! complex (~60 ns) and two (~220 ns) every few tens of seconds, and every server cost
//! 1.3–1.45× more per message in the second placement: a round whose two runs straddle a move
//! compares two hosts.

use std::collections::BTreeMap;

use crate::median_interval::{median_interval, MIN_PAIRS_95};
use crate::runs::median;

/// The confidence of the interval: the same as the regression gate's.
pub const CONFIDENCE: f64 = 0.95;

/// Fewest rounds in which both servers ran before the paired order is used: below it no 95%
/// interval exists (with 5, even "cheaper in all five" happens 1 time in 16 by chance).
pub const MIN_ROUNDS: usize = MIN_PAIRS_95;

/// Two round trips this close (the larger over the smaller) are the same placement: the
/// placements seen differ several-fold, a placement's own readings by a few tens of percent.
pub const PLACED_ALIKE: f64 = 1.5;

/// One run: its figure, and its cores' round trips before and after, where measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoundRun {
    /// Server CPU µs per message.
    pub figure: f64,
    /// ns, before the warmup and after the window.
    pub core_rtt_ns: Option<(f64, f64)>,
}

/// Whether two round trips are within [`PLACED_ALIKE`] of each other.
fn close(x: f64, y: f64) -> bool {
    x.max(y) <= PLACED_ALIKE * x.min(y)
}

/// Whether two runs had their cores placed alike (runs that did not measure it count as alike).
pub fn placed_alike(a: &RoundRun, b: &RoundRun) -> bool {
    match (a.core_rtt_ns, b.core_rtt_ns) {
        (Some((a0, a1)), Some((b0, b1))) => {
            close(a0, a1) && close(b0, b1) && close((a0 + a1) / 2.0, (b0 + b1) / 2.0)
        }
        _ => true,
    }
}

/// a/b over the rounds both ran: the median ratio and its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedRatio {
    /// Rounds in which both ran once, with their cores placed alike.
    pub rounds: usize,
    /// Rounds in which both ran once but their cores were placed differently: left out.
    pub placed_apart: usize,
    /// The median of the per-round ratios.
    pub median: f64,
    /// a's and b's median figures over those rounds.
    pub medians: (f64, f64),
    /// The interval's bounds, as ratios.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

impl PairedRatio {
    /// Whether the interval lies wholly below 1 (a is cheaper) or above (b is).
    pub fn apart(&self) -> Option<std::cmp::Ordering> {
        if self.high < 1.0 {
            Some(std::cmp::Ordering::Less)
        } else if self.low > 1.0 {
            Some(std::cmp::Ordering::Greater)
        } else {
            None
        }
    }
}

/// One server's runs by round; a round in which it ran more than once is left out (its runs
/// could not be told apart).
pub fn by_round(runs: &[(Option<u32>, RoundRun)]) -> BTreeMap<u32, RoundRun> {
    let mut out = BTreeMap::new();
    let mut twice = Vec::new();
    for &(round, run) in runs {
        if let Some(r) = round {
            if out.insert(r, run).is_some() {
                twice.push(r);
            }
        }
    }
    for r in twice {
        out.remove(&r);
    }
    out
}

/// a/b paired by round, over the rounds whose two runs were placed alike; `None` with fewer
/// than [`MIN_ROUNDS`] of them.
pub fn paired_ratio(
    a: &BTreeMap<u32, RoundRun>,
    b: &BTreeMap<u32, RoundRun>,
) -> Option<PairedRatio> {
    let both: Vec<(&RoundRun, &RoundRun)> =
        a.iter().filter_map(|(r, x)| Some((x, b.get(r)?))).collect();
    let alike: Vec<&(&RoundRun, &RoundRun)> = both
        .iter()
        .filter(|(x, y)| placed_alike(x, y) && (x.figure / y.figure).ln().is_finite())
        .collect();
    let logs: Vec<f64> = alike
        .iter()
        .map(|(x, y)| (x.figure / y.figure).ln())
        .collect();
    if logs.len() < MIN_ROUNDS {
        return None;
    }
    let m = median_interval(&logs, CONFIDENCE)?;
    Some(PairedRatio {
        rounds: logs.len(),
        placed_apart: both.iter().filter(|(x, y)| !placed_alike(x, y)).count(),
        median: m.median.exp(),
        medians: (
            median(alike.iter().map(|(x, _)| x.figure))?,
            median(alike.iter().map(|(_, y)| y.figure))?,
        ),
        low: m.low.exp(),
        high: m.high.exp(),
    })
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::*;

    fn run(figure: f64) -> RoundRun {
        RoundRun {
            figure,
            core_rtt_ns: None,
        }
    }

    fn rounds(figures: &[f64]) -> BTreeMap<u32, RoundRun> {
        let tagged: Vec<(Option<u32>, RoundRun)> = figures
            .iter()
            .enumerate()
            .map(|(i, &f)| (Some(i as u32 + 1), run(f)))
            .collect();
        by_round(&tagged)
    }

    #[test]
    fn a_bimodal_host_overlaps_the_ranges_but_not_the_rounds() {
        // kernel-floor's shape: both servers in the slow state in rounds 3 and 6.
        let a = rounds(&[4.6, 4.6, 6.1, 4.7, 4.6, 6.0]);
        let b = rounds(&[5.6, 5.7, 7.4, 5.6, 5.7, 7.3]);
        let p = paired_ratio(&a, &b).unwrap();
        assert_eq!(p.rounds, 6);
        assert!(p.high < 1.0 && (p.median - 0.81).abs() < 0.02, "{p:?}");
        assert_eq!(p.apart(), Some(Ordering::Less));
        assert_eq!(
            paired_ratio(&b, &a).unwrap().apart(),
            Some(Ordering::Greater)
        );
    }

    #[test]
    fn one_round_the_other_way_is_not_apart_with_six() {
        let a = rounds(&[4.6, 4.6, 6.1, 4.7, 4.6, 6.0]);
        let b = rounds(&[5.6, 5.7, 7.4, 4.5, 5.7, 7.3]);
        assert_eq!(paired_ratio(&a, &b).unwrap().apart(), None);
    }

    #[test]
    fn too_few_rounds_in_common_give_nothing() {
        let a = rounds(&[1.0; 6]);
        let mut b = rounds(&[2.0; 6]);
        b.remove(&3);
        assert_eq!(paired_ratio(&a, &b), None);
        assert!(paired_ratio(&a, &rounds(&[2.0; 6])).is_some());
    }

    #[test]
    fn a_round_run_twice_or_unknown_is_left_out() {
        let r = by_round(&[
            (Some(1), run(1.0)),
            (Some(2), run(2.0)),
            (Some(2), run(2.5)),
            (None, run(3.0)),
        ]);
        assert_eq!(r.into_iter().collect::<Vec<_>>(), vec![(1, run(1.0))]);
    }

    #[test]
    fn rounds_whose_cores_were_placed_apart_are_left_out() {
        let near = Some((70.0, 75.0));
        let far = Some((340.0, 330.0));
        let placed = |figure, core_rtt_ns| RoundRun {
            figure,
            core_rtt_ns,
        };
        assert!(placed_alike(
            &placed(1.0, near),
            &placed(1.0, Some((80.0, 70.0)))
        ));
        assert!(!placed_alike(&placed(1.0, near), &placed(1.0, far)));
        assert!(
            !placed_alike(&placed(1.0, Some((70.0, 340.0))), &placed(1.0, near)),
            "moved"
        );
        assert!(
            placed_alike(&placed(1.0, None), &placed(1.0, far)),
            "not measured"
        );
        // Six rounds alike, a cheaper by 0.8×; two more where b ran near and a far (1.2×):
        // left out, they do not widen the interval.
        let mut a = BTreeMap::new();
        let mut b = BTreeMap::new();
        for r in 1..=8 {
            let apart = r > 6;
            a.insert(
                r,
                placed(
                    if apart { 6.0 } else { 4.0 },
                    if apart { far } else { near },
                ),
            );
            b.insert(r, placed(5.0, near));
        }
        let p = paired_ratio(&a, &b).unwrap();
        assert_eq!((p.rounds, p.placed_apart), (6, 2));
        assert!((p.high - 0.8).abs() < 1e-9, "{p:?}");
    }
}
