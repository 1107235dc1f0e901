//! Faults injected on purpose by the hidden `--debug-*` flags, kept out of the release echo
//! loop.
//!
//! A server's connection loop is generic over [`Faults`] and picks the implementation once
//! per connection: [`NoFaults`], whose hook compiles to nothing, unless a `--debug-*` flag
//! is set ([`DebugFaults::active`]). The loop that serves the benchmark therefore carries
//! no per-message branch for flags that are off in every measured run.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::config::DebugFaults;

/// What a connection loop calls after each read it handed to the session.
pub trait Faults {
    /// A read was handled at `now`, echoing `messages` complete messages, whose replies are
    /// about to be written.
    fn after_read(&self, now: Instant, messages: u64);
}

/// No fault: the release path.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFaults;

impl Faults for NoFaults {
    #[inline(always)]
    fn after_read(&self, _now: Instant, _messages: u64) {}
}

impl DebugFaults {
    /// `Some` when any `--debug-*` flag is set: the connection is served with these faults.
    pub fn active(self) -> Option<DebugFaults> {
        (self != DebugFaults::default()).then_some(self)
    }
}

impl Faults for DebugFaults {
    fn after_read(&self, now: Instant, messages: u64) {
        if let Some((every, length)) = self.stall {
            stall_if_due(now, every, length);
        }
        if let Some(spin) = self.spin_per_message {
            if messages > 0 {
                burn(spin.saturating_mul(u32::try_from(messages).unwrap_or(u32::MAX)));
            }
        }
        if let Some(rounds) = self.work_per_message {
            for _ in 0..messages {
                work(rounds);
            }
        }
    }
}

thread_local! {
    /// When this runtime thread stalls next (`--debug-stall-every`).
    static NEXT_STALL: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// `--debug-stall-every/-for`: block the whole runtime thread, as a GC pause or a blocking call
/// would, so every connection it serves waits.
fn stall_if_due(now: Instant, every: Duration, length: Duration) {
    NEXT_STALL.with(|next| match next.get() {
        None => next.set(Some(now + every)),
        Some(due) if now >= due => {
            std::thread::sleep(length);
            next.set(Some(Instant::now() + every));
        }
        Some(_) => {}
    });
}

/// `--debug-spin-per-message`: use the CPU for `length`, as slower code would.
fn burn(length: Duration) {
    let until = Instant::now() + length;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// `--debug-work-per-message`: `rounds` steps of an xorshift generator, each through
/// `black_box` so the optimiser can neither fold the loop nor drop it: a cost counted in
/// instructions, the same on every run.
fn work(rounds: u32) {
    let mut x = std::hint::black_box(0x9e37_79b9_7f4a_7c15_u64);
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = std::hint::black_box(x);
    }
    std::hint::black_box(x);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_active_only_when_a_flag_is_set() {
        assert_eq!(DebugFaults::default().active(), None);
        let spin = DebugFaults {
            spin_per_message: Some(Duration::from_micros(1)),
            ..DebugFaults::default()
        };
        assert_eq!(spin.active(), Some(spin));
        let stall = DebugFaults {
            stall: Some((Duration::from_secs(1), Duration::from_millis(1))),
            ..DebugFaults::default()
        };
        assert_eq!(stall.active(), Some(stall));
        let work = DebugFaults {
            work_per_message: Some(100),
            ..DebugFaults::default()
        };
        assert_eq!(work.active(), Some(work));
    }
}
