//! Waking on time. A thread that sleeps until an instant wakes late: by its timer slack (50 µs
//! unless the thread lowers it, see [`crate::sys::exact_timers`]) and then by however long the
//! kernel and, in a virtual machine, the hypervisor take to deliver the timer's interrupt and
//! run the thread again — 25–40 µs on the 2-vCPU VMs this project is measured on, whatever the
//! timeout. An open-loop message sent that late is late by that much in its corrected latency.
//!
//! So each worker measures how late its sleeps end before it starts (a few dozen short timed
//! waits of its engine's own kind — `epoll_pwait2`, or `io_uring_enter` with a timeout, which
//! wake differently — on its own, pinned, core), and the engines then sleep until that margin before a deadline
//! and poll their IO without blocking for what is left of it. The price is the CPU of those
//! polls, about the margin minus the actual overshoot per wake-up; at rates whose messages are
//! less than a margin apart the worker never sleeps at all. The margin is recorded with the
//! engine, and the send lag of every message shows whether it was enough.

use std::time::{Duration, Instant};

/// Sleeps measured to choose the margin.
const CALIBRATION_SLEEPS: usize = 48;

/// Length of each of them: short, as the waits between two messages are.
const CALIBRATION_SLEEP: Duration = Duration::from_micros(100);

/// The margin never grows past this: a thread that wakes later than this is starved of CPU,
/// which polling would only make worse (and its send lag says so).
const MAX_MARGIN: Duration = Duration::from_micros(200);

/// How early to wake before a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WakeMargin {
    margin_ns: u64,
}

impl WakeMargin {
    /// A fixed margin (tests, and hosts whose sleeps cannot be measured).
    pub fn fixed(margin: Duration) -> Self {
        Self {
            margin_ns: margin.min(MAX_MARGIN).as_nanos() as u64,
        }
    }

    /// Measure how late the calling thread's timed waits end: twice the 90th percentile of
    /// the overshoot of [`CALIBRATION_SLEEPS`] calls of `wait` for [`CALIBRATION_SLEEP`] (the
    /// headroom keeps the send lag's 99th percentile, not only its 90th, small), at most
    /// [`MAX_MARGIN`]. `wait` must block for the time given unless something is ready (nothing
    /// should be). Call it on the thread that will run the engine, after pinning it and
    /// lowering its timer slack. Takes about 48 × (0.1 ms + overshoot).
    pub fn calibrate(mut wait: impl FnMut(Duration)) -> Self {
        let mut overshoots: Vec<Duration> = (0..CALIBRATION_SLEEPS)
            .map(|_| {
                let start = Instant::now();
                wait(CALIBRATION_SLEEP);
                start.elapsed().saturating_sub(CALIBRATION_SLEEP)
            })
            .collect();
        overshoots.sort_unstable();
        Self::fixed(overshoots[overshoots.len() * 9 / 10] * 2)
    }

    /// How long to block, at `now`, for an engine that must be running by `deadline`: until
    /// the margin before it, or not at all (poll) once inside the margin.
    pub fn timeout(self, now: u64, deadline: u64) -> Duration {
        Duration::from_nanos(deadline.saturating_sub(self.margin_ns).saturating_sub(now))
    }

    /// The margin.
    pub fn margin(self) -> Duration {
        Duration::from_nanos(self.margin_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_until_the_margin_then_polls() {
        let m = WakeMargin::fixed(Duration::from_micros(30));
        assert_eq!(m.timeout(0, 100_000), Duration::from_micros(70));
        assert_eq!(m.timeout(70_000, 100_000), Duration::ZERO);
        assert_eq!(m.timeout(90_000, 100_000), Duration::ZERO);
        assert_eq!(m.timeout(200_000, 100_000), Duration::ZERO);
        assert_eq!(m.timeout(0, 10), Duration::ZERO);
    }

    #[test]
    fn calibration_is_bounded() {
        let m = WakeMargin::calibrate(std::thread::sleep);
        assert!(m.margin() <= MAX_MARGIN);
        assert_eq!(
            WakeMargin::fixed(Duration::from_secs(1)).margin(),
            MAX_MARGIN
        );
    }
}
