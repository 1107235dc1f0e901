//! How a connection whose reads never wait gives its thread back, in monoio 0.2.

use std::time::{Duration, Instant};

/// How a connection whose reads never wait gives its thread back (see
/// `wsport_server_common::budget`), in monoio 0.2, whose run loop has two blind spots:
/// - a task that wakes itself is queued first again (`yield_now` pushes it to the front), so
///   it runs again before anything else; woken by another task it goes to the back, behind
///   the thread's other tasks, and the IO is polled (without a wait) before it runs again;
/// - timers fire only when the run queue is empty and the runtime parks: under a flood it
///   never is, so once every [`PARK_EVERY`] the connection sleeps for a timer tick (≤ 1 ms)
///   instead, and the thread's timers (deadlines, the shutdown poll) get their turn.
#[derive(Debug)]
pub(crate) struct Park {
    last: Instant,
}

/// How often a flooded connection leaves the run queue empty for the timers (see [`Park`]):
/// the timers are at most this late, and a flood (or a load past saturation, whose reads
/// never wait either) loses at most 1 ms in 50.
const PARK_EVERY: Duration = Duration::from_millis(50);

impl Default for Park {
    fn default() -> Self {
        Park {
            last: Instant::now(),
        }
    }
}

impl Park {
    pub(crate) async fn yield_to_others(&mut self) {
        if self.last.elapsed() < PARK_EVERY {
            // An empty task, which wakes this one when it ends: about a microsecond.
            monoio::spawn(async {}).await;
            return;
        }
        monoio::time::sleep(Duration::from_millis(1)).await;
        self.last = Instant::now();
    }
}
