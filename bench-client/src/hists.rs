//! The histograms a run fills, kept together so that a worker's interval, the merge of the
//! workers' intervals and the run's total carry the same set.
//!
//! - `latency`: round trip from the intended send time (coordinated-omission corrected; the
//!   same as the actual one in the closed loop).
//! - `uncorrected`: scheduled workloads only: round trip from the actual send time.
//! - `send_lag`: scheduled workloads only: how late the client itself handed each message (or
//!   `connect --rate` attempt) to the kernel, actual − intended. The corrected latency of a
//!   message is its as-sent latency plus its send lag, so this is the part of the corrected
//!   figure that is the client's and not the server's.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest value the histograms track: a minute, in nanoseconds.
pub const HIST_MAX_NS: u64 = 60_000_000_000;

/// An empty histogram: 1 ns to a minute, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_NS, 3).expect("static bounds are valid")
}

/// Latency, and for scheduled workloads the as-sent latency and the send lag.
#[derive(Debug, Clone)]
pub struct Hists {
    /// From the intended send time.
    pub latency: Histogram<u64>,
    /// From the actual send time (scheduled workloads).
    pub uncorrected: Option<Histogram<u64>>,
    /// Actual − intended send time (scheduled workloads).
    pub send_lag: Option<Histogram<u64>>,
}

impl Hists {
    /// Empty; `scheduled` adds the as-sent and send-lag histograms.
    pub fn new(scheduled: bool) -> Self {
        Self::shaped(scheduled, scheduled)
    }

    /// Empty, with the as-sent and the send-lag histograms each only if asked: `broadcast`
    /// measures its publishers' send lag but, with only the intended publish time in the
    /// payload, has no as-sent latency.
    pub fn shaped(uncorrected: bool, send_lag: bool) -> Self {
        Self {
            latency: new_histogram(),
            uncorrected: uncorrected.then(new_histogram),
            send_lag: send_lag.then(new_histogram),
        }
    }

    /// An empty set of the same shape.
    pub fn empty_like(&self) -> Self {
        Self::shaped(self.uncorrected.is_some(), self.send_lag.is_some())
    }

    /// Move the contents out, leaving an empty set of the same shape.
    pub fn take(&mut self) -> Self {
        std::mem::replace(self, self.empty_like())
    }

    /// Add another set's samples (histograms missing on either side are skipped).
    pub fn add(&mut self, other: &Hists) {
        let _ = self.latency.add(&other.latency);
        add_option(&mut self.uncorrected, &other.uncorrected);
        add_option(&mut self.send_lag, &other.send_lag);
    }

    /// An answer arrived at `now` for a message intended at `intended` and sent at `sent`.
    pub fn record_answer(&mut self, now: u64, intended: u64, sent: u64) {
        self.latency
            .saturating_record(now.saturating_sub(intended).max(1));
        if let Some(h) = &mut self.uncorrected {
            h.saturating_record(now.saturating_sub(sent).max(1));
        }
    }

    /// A message intended at `intended` was handed to the kernel at `sent`. A message on time
    /// counts as 1 ns late (the histograms start at 1).
    pub fn record_send(&mut self, intended: u64, sent: u64) {
        if let Some(h) = &mut self.send_lag {
            h.saturating_record(sent.saturating_sub(intended).max(1));
        }
    }
}

fn add_option(mine: &mut Option<Histogram<u64>>, theirs: &Option<Histogram<u64>>) {
    if let (Some(mine), Some(theirs)) = (mine, theirs) {
        let _ = mine.add(theirs);
    }
}

/// Latency percentiles, nanoseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Smallest.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub stdev: f64,
    /// 50th percentile.
    pub p50: u64,
    /// 90th.
    pub p90: u64,
    /// 99th.
    pub p99: u64,
    /// 99.9th.
    pub p99_9: u64,
    /// 99.99th.
    pub p99_99: u64,
    /// Largest.
    pub max: u64,
}

impl Latency {
    /// Percentiles of `h`.
    pub fn of(h: &Histogram<u64>) -> Self {
        let q = |p: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(p)
            }
        };
        Self {
            count: h.len(),
            min: if h.is_empty() { 0 } else { h.min() },
            mean: h.mean(),
            stdev: h.stdev(),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p99_9: q(0.999),
            p99_99: q(0.9999),
            max: h.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrected_is_as_sent_plus_lag() {
        let mut h = Hists::new(true);
        h.record_send(1_000, 1_300);
        h.record_answer(2_000, 1_000, 1_300);
        assert_eq!(h.latency.max(), 1_000);
        assert_eq!(h.uncorrected.as_ref().unwrap().max(), 700);
        assert_eq!(h.send_lag.as_ref().unwrap().max(), 300);
    }

    #[test]
    fn closed_loop_has_no_lag_and_add_keeps_the_shape() {
        let mut closed = Hists::new(false);
        closed.record_send(1, 5);
        assert!(closed.send_lag.is_none());
        let mut open = Hists::new(true);
        open.record_send(10, 10);
        let mut total = open.empty_like();
        total.add(&open);
        total.add(&closed);
        assert_eq!(total.send_lag.as_ref().unwrap().len(), 1);
        assert_eq!(total.send_lag.as_ref().unwrap().max(), 1);
        let taken = total.take();
        assert_eq!(taken.send_lag.unwrap().len(), 1);
        assert!(total.send_lag.unwrap().is_empty());
    }
}
