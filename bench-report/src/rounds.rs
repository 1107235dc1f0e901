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

use std::collections::BTreeMap;

use crate::median_interval::{median_interval, MIN_PAIRS_95};

/// The confidence of the interval: the same as the regression gate's.
pub const CONFIDENCE: f64 = 0.95;

/// Fewest rounds in which both servers ran before the paired order is used: below it no 95%
/// interval exists (with 5, even "cheaper in all five" happens 1 time in 16 by chance).
pub const MIN_ROUNDS: usize = MIN_PAIRS_95;

/// a/b over the rounds both ran: the median ratio and its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedRatio {
    /// Rounds in which both ran once.
    pub rounds: usize,
    /// The median of the per-round ratios.
    pub median: f64,
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

/// One server's figures by round; a round in which it ran more than once is left out (its
/// runs could not be told apart).
pub fn by_round(figures: &[(Option<u32>, f64)]) -> BTreeMap<u32, f64> {
    let mut out = BTreeMap::new();
    let mut twice = Vec::new();
    for &(round, figure) in figures {
        if let Some(r) = round {
            if out.insert(r, figure).is_some() {
                twice.push(r);
            }
        }
    }
    for r in twice {
        out.remove(&r);
    }
    out
}

/// a/b paired by round, `None` with fewer than [`MIN_ROUNDS`] rounds in common.
pub fn paired_ratio(a: &BTreeMap<u32, f64>, b: &BTreeMap<u32, f64>) -> Option<PairedRatio> {
    let logs: Vec<f64> = a
        .iter()
        .filter_map(|(r, x)| Some((x / b.get(r)?).ln()))
        .filter(|l| l.is_finite())
        .collect();
    if logs.len() < MIN_ROUNDS {
        return None;
    }
    let m = median_interval(&logs, CONFIDENCE)?;
    Some(PairedRatio {
        rounds: logs.len(),
        median: m.median.exp(),
        low: m.low.exp(),
        high: m.high.exp(),
    })
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::*;

    fn rounds(figures: &[f64]) -> BTreeMap<u32, f64> {
        let tagged: Vec<(Option<u32>, f64)> = figures
            .iter()
            .enumerate()
            .map(|(i, &f)| (Some(i as u32 + 1), f))
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
        let r = by_round(&[(Some(1), 1.0), (Some(2), 2.0), (Some(2), 2.5), (None, 3.0)]);
        assert_eq!(r.into_iter().collect::<Vec<_>>(), vec![(1, 1.0)]);
    }
}
