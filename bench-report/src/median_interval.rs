//! The distribution-free confidence interval of a median: the statistics behind
//! `compare --paired`, kept apart from the runs it is applied to.
//!
//! Given n paired differences (here: the log of head/base per pair), sorted, the interval
//! [x₍k₎, x₍n+1−k₎] covers their median with probability 1 − 2·P(B < k), B ~ Binomial(n, ½)
//! (the sign test inverted; Hollander & Wolfe, *Nonparametric Statistical Methods*, §3.6). It
//! assumes nothing of the noise's shape, and a random order within each pair makes "head
//! above base" a fair coin under no change. Only the order of the differences counts, so an
//! outlier moves one order statistic, never the interval by its size: with 10 pairs the 95%
//! interval is [x₍2₎, x₍9₎], and one wild pair cannot veto (or fake) what the other nine
//! agree on. The Wilcoxon signed-rank interval is narrower on normal noise but gives the
//! largest deviation the largest rank: one opposite outlier among 10 pairs vetoes it.

/// A median and its confidence interval, in the units of the differences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MedianInterval {
    /// The sample median.
    pub median: f64,
    /// Lower bound of the interval.
    pub low: f64,
    /// Upper bound of the interval.
    pub high: f64,
    /// The interval's exact coverage (at least the confidence asked for).
    pub coverage: f64,
}

/// The fewest differences for which a 95% interval exists: with 5, even "all five positive"
/// happens 1 time in 32 by chance, in either direction 1 in 16.
pub const MIN_PAIRS_95: usize = 6;

/// C(n, i) for i in 0..=n, as f64 (exact far beyond the pairs a gate runs).
fn binomial_row(n: usize) -> Vec<f64> {
    let mut row = vec![1.0];
    for _ in 0..n {
        let mut next = vec![1.0; row.len() + 1];
        for i in 1..row.len() {
            next[i] = row[i - 1] + row[i];
        }
        row = next;
    }
    row
}

/// The largest k such that P(B < k) ≤ (1 − confidence) / 2, B ~ Binomial(n, ½), with the
/// coverage 1 − 2·P(B < k); k = 0 when no interval reaches the confidence.
fn critical_rank(n: usize, confidence: f64) -> (usize, f64) {
    let row = binomial_row(n);
    let total = 2f64.powi(n as i32);
    let tail = (1.0 - confidence) / 2.0;
    let mut below = 0.0;
    let mut k = 0;
    while k <= n / 2 && (below + row[k]) / total <= tail {
        below += row[k];
        k += 1;
    }
    (k, 1.0 - 2.0 * below / total)
}

/// The median of `differences` and its interval at `confidence` (0.95), or `None` when there
/// are too few finite differences for one.
pub fn median_interval(differences: &[f64], confidence: f64) -> Option<MedianInterval> {
    let mut d: Vec<f64> = differences
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    d.sort_by(f64::total_cmp);
    let n = d.len();
    let (k, coverage) = critical_rank(n, confidence);
    if k == 0 {
        return None;
    }
    let median = if n % 2 == 1 {
        d[n / 2]
    } else {
        (d[n / 2 - 1] + d[n / 2]) / 2.0
    };
    Some(MedianInterval {
        median,
        low: d[k - 1],
        high: d[n - k],
        coverage,
    })
}

/// (z₀.₉₇₅ + z₀.₈) / z₀.₉₇₅: a true shift this many half-widths of a 95% interval away from
/// zero is detected about 4 times in 5 (normal approximation).
pub const POWER_80_HALF_WIDTHS: f64 = (1.959_964 + 0.841_621) / 1.959_964;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_coefficients() {
        assert_eq!(binomial_row(4), vec![1.0, 4.0, 6.0, 4.0, 1.0]);
    }

    #[test]
    fn critical_ranks_match_the_published_table() {
        // 95% sign-test intervals: n = 6: [x(1), x(6)], n = 10: [x(2), x(9)],
        // n = 15: [x(4), x(12)], n = 20: [x(6), x(15)] (Hollander & Wolfe, Table A.5).
        assert_eq!(critical_rank(5, 0.95).0, 0);
        assert_eq!(critical_rank(6, 0.95).0, 1);
        assert_eq!(critical_rank(10, 0.95).0, 2);
        assert_eq!(critical_rank(15, 0.95).0, 4);
        assert_eq!(critical_rank(20, 0.95).0, 6);
        let (_, coverage) = critical_rank(10, 0.95);
        assert!((coverage - (1.0 - 2.0 * 11.0 / 1024.0)).abs() < 1e-12);
    }

    #[test]
    fn interval_of_a_clear_shift_excludes_zero() {
        let d = [0.09, 0.11, 0.10, 0.12, 0.08, 0.10, 0.095, 0.105, 0.11, 0.09];
        let m = median_interval(&d, 0.95).unwrap();
        assert!((m.median - 0.1).abs() < 1e-12, "{m:?}");
        assert_eq!((m.low, m.high), (0.09, 0.11));
    }

    #[test]
    fn one_outlier_does_not_move_the_interval_across_zero() {
        let mut d: Vec<f64> = (0..9).map(|i| 0.09 + 0.002 * i as f64).collect();
        d.push(-5.0);
        let m = median_interval(&d, 0.95).unwrap();
        assert!(m.low > 0.0 && m.median > 0.09, "{m:?}");
        // A second one does: then two pairs in ten disagree, which chance alone explains.
        d[0] = -5.0;
        assert!(median_interval(&d, 0.95).unwrap().low < 0.0);
    }

    #[test]
    fn too_few_pairs_give_no_interval() {
        assert_eq!(median_interval(&[0.1; 5], 0.95), None);
        assert_eq!(
            median_interval(&[0.1, 0.1, 0.1, 0.1, 0.1, f64::NAN], 0.95),
            None
        );
        assert!(median_interval(&[0.1; MIN_PAIRS_95], 0.95).is_some());
    }
}
