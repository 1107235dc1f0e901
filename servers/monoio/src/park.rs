//! How a connection whose reads never wait gives its thread back, in monoio 0.2.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use wsport_server_common::budget::{Budget, Watched};

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
    /// Counts the reads that did not wait.
    budget: Budget,
    /// When the connection last slept for the timers.
    last: Instant,
}

/// How often a flooded connection leaves the run queue empty for the timers (see [`Park`]):
/// the timers are at most this late, and a flood (or a load past saturation, whose reads
/// never wait either) loses at most 1 ms in 50.
const PARK_EVERY: Duration = Duration::from_millis(50);

impl Default for Park {
    fn default() -> Self {
        Park {
            budget: Budget::default(),
            last: Instant::now(),
        }
    }
}

impl Park {
    /// The connection's next read, watched: whether it had to wait decides the next
    /// [`Park::before_read`].
    pub(crate) fn watch<'a, F: Future>(&'a mut self, read: Pin<&'a mut F>) -> Watched<'a, F> {
        self.budget.watch(read)
    }

    /// Before each read: give the thread back when the budget says so.
    pub(crate) async fn before_read(&mut self) {
        if self.budget.spend() {
            self.yield_to_others().await;
        }
    }

    async fn yield_to_others(&mut self) {
        if self.last.elapsed() < PARK_EVERY {
            // An empty task, which wakes this one when it ends: about a microsecond.
            monoio::spawn(async {}).await;
            return;
        }
        monoio::time::sleep(Duration::from_millis(1)).await;
        self.last = Instant::now();
    }
}
