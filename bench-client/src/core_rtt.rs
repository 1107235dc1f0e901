//! How far apart the server's core and the client's core are, measured: the round trip of one
//! cache line between two threads pinned to them, before the warmup and after the window.
//!
//! On a VM the two vCPUs are the hypervisor's to place. On the 2-vCPU AMD EPYC VM of
//! results/2026-12-07-vm/placed-rounds this round trip moved between ~60 ns and ~220 ns every
//! few tens of seconds (the vCPUs on one core complex, then on two), and every server's CPU
//! per message moved with it, 1.3–1.45× (a loopback echo hands every message's cache lines
//! from one core to the other). A figure taken across such a move compares two hosts; this
//! measurement says which host each run had, so that a reader can tell, and runs can be
//! grouped by it.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Round trips per batch, and batches: the median batch is the figure, so that a batch the
/// scheduler interrupted does not count.
const TRIPS: u32 = 2_000;
const BATCHES: usize = 5;

/// Give up on a batch after this long (a probe thread that is not scheduled).
const BATCH_LIMIT: Duration = Duration::from_millis(20);

/// The round trips of one run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CoreRtt {
    /// The CPU the server's busiest thread is pinned to.
    pub server_cpu: usize,
    /// The CPU of the client's first worker.
    pub client_cpu: usize,
    /// Before the warmup, ns; `null` when the probe did not complete.
    pub before_ns: Option<f64>,
    /// After the window, ns.
    pub after_ns: Option<f64>,
}

/// The line in flight, alone in its cache line.
#[repr(align(128))]
struct Line {
    turn: AtomicU32,
}

/// The median round trip of a cache line between `a` and `b`, ns; `None` if a thread could not
/// be pinned or a batch did not complete in time.
pub fn round_trip_ns(a: usize, b: usize) -> Option<f64> {
    let line = Line {
        turn: AtomicU32::new(0),
    };
    let stop = AtomicBool::new(false);
    // Both ends on threads of their own: pinning the caller would move it for good.
    std::thread::scope(|s| {
        let answer = s.spawn(|| {
            let pinned = crate::sys::pin(b).is_ok();
            if pinned {
                answer_pings(&line.turn, &stop);
            }
            pinned
        });
        let ping = s.spawn(|| {
            let mut batches: Vec<f64> = Vec::with_capacity(BATCHES);
            if crate::sys::pin(a).is_ok() {
                while batches.len() < BATCHES {
                    let Some(ns) = ping_batch(&line.turn) else {
                        break;
                    };
                    batches.push(ns);
                }
            }
            stop.store(true, Ordering::Release);
            batches
        });
        let mut batches = ping.join().unwrap_or_default();
        let answered = answer.join().unwrap_or(false);
        batches.sort_by(f64::total_cmp);
        (answered && batches.len() == BATCHES).then(|| batches[BATCHES / 2])
    })
}

/// Flip the line from 1 back to 0 until told to stop.
fn answer_pings(turn: &AtomicU32, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        if turn
            .compare_exchange_weak(1, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
    }
}

/// One batch of round trips from the calling thread, mean ns each.
fn ping_batch(turn: &AtomicU32) -> Option<f64> {
    let start = Instant::now();
    for i in 0..TRIPS {
        turn.store(1, Ordering::Release);
        let mut spins = 0u32;
        while turn.load(Ordering::Acquire) != 0 {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins % 4096 == 0 && start.elapsed() > BATCH_LIMIT {
                return None;
            }
        }
        if i % 256 == 0 && start.elapsed() > BATCH_LIMIT {
            return None;
        }
    }
    Some(start.elapsed().as_nanos() as f64 / f64::from(TRIPS))
}

/// The CPU the server's busiest thread may run on, when that is a single CPU (a server that may
/// run anywhere has no core to measure from).
pub fn server_cpu(pid: u32) -> Option<usize> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let busiest = tasks
        .filter_map(Result::ok)
        .filter_map(|t| {
            let dir = t.path();
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            Some((cpu_ticks(&stat)?, dir))
        })
        .max_by_key(|(ticks, _)| *ticks)?
        .1;
    let status = std::fs::read_to_string(busiest.join("status")).ok()?;
    single_cpu(&status)
}

/// utime + stime of a /proc stat line, in clock ticks.
fn cpu_ticks(stat: &str) -> Option<u64> {
    crate::sys::stat_times(stat).map(|(utime, stime)| utime + stime)
}

/// The CPU of a status file's `Cpus_allowed_list`, when it names exactly one.
fn single_cpu(status: &str) -> Option<usize> {
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?
        .trim();
    list.parse().ok()
}

/// Both probes of a run: `before` now, [`CoreRtt::finish`] after the window.
pub fn start(server_pid: Option<u32>, client_cpus: Option<&[usize]>) -> Option<CoreRtt> {
    let server_cpu = server_cpu(server_pid?)?;
    let client_cpu = *client_cpus?.first()?;
    (server_cpu != client_cpu).then(|| CoreRtt {
        server_cpu,
        client_cpu,
        before_ns: round_trip_ns(server_cpu, client_cpu),
        after_ns: None,
    })
}

impl CoreRtt {
    /// Take the after-window probe.
    pub fn finish(mut self) -> Self {
        self.after_ns = round_trip_ns(self.server_cpu, self.client_cpu);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_threads_cpu_is_read_from_proc() {
        let stat = "4242 (wsport (x) 1) S 1 2 3 4 5 6 7 8 9 10 700 30 0 0 20 0 2 0";
        assert_eq!(cpu_ticks(stat), Some(730));
        assert_eq!(single_cpu("Name:\tx\nCpus_allowed_list:\t3\n"), Some(3));
        assert_eq!(single_cpu("Cpus_allowed_list:\t0-1\n"), None);
        assert_eq!(single_cpu("Cpus_allowed_list:\t0,2\n"), None);
    }

    #[test]
    fn a_round_trip_between_two_cpus_is_measured() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let allowed = allowed_cpus(&status);
        let [a, b, ..] = allowed[..] else {
            eprintln!("skipped: this test may run on one CPU only, no round trip to measure");
            return;
        };
        let ns = round_trip_ns(a, b).expect("both threads pinned and answering");
        // A cache line's round trip between two cores: tens to hundreds of ns, never zero.
        assert!(ns > 1.0 && ns < 100_000.0, "{ns}");
        assert_eq!(
            round_trip_ns(a, usize::MAX / 2),
            None,
            "a CPU that cannot be pinned"
        );
        let after = std::fs::read_to_string("/proc/self/status").unwrap();
        assert_eq!(
            allowed_cpus(&after),
            allowed,
            "the caller's affinity is left alone"
        );
    }

    /// The CPUs of `Cpus_allowed_list` (`0-3,6`).
    fn allowed_cpus(status: &str) -> Vec<usize> {
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim();
        list.split(',')
            .flat_map(|part| match part.split_once('-') {
                Some((lo, hi)) => lo.parse().unwrap()..=hi.parse().unwrap(),
                None => part.parse().unwrap()..=part.parse().unwrap(),
            })
            .collect()
    }
}
