//! A connection that never has to wait must still give its thread back now and then.
//!
//! tokio makes a task's IO pending after a run of operations (its coop budget); monoio has
//! no such budget. With monoio's epoll driver a read finds a flooding peer's bytes already
//! there on every turn, so that connection's task would never return to the runtime, and the
//! thread's other connections, its accept loop and the shutdown signal would wait for as long
//! as the flood lasts. (An io_uring read is always pending at its first poll, so there the
//! task yields anyway.) A [`Budget`] watches each read ([`Budget::watch`]) and says when to
//! yield: after [`READS_PER_TURN`] reads in a row that found their bytes waiting; a read that
//! had to wait gave the thread back already and refills it, so under ordinary traffic it
//! never asks for a yield.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Reads in a row that did not wait before a connection lets its thread's other tasks run.
/// monoio polls its IO only after a task has run about three times since its last poll, so
/// a flood holds the others up for about 3 × 16 reads of 16 KiB: about a millisecond in a
/// release build.
pub const READS_PER_TURN: u32 = 16;

/// Counts a connection's reads that did not wait (see the module doc).
#[derive(Debug)]
pub struct Budget {
    left: u32,
    waited: bool,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            left: READS_PER_TURN,
            waited: false,
        }
    }
}

impl Budget {
    /// `read`, noting whether it had to wait.
    pub fn watch<'a, F: Future>(&'a mut self, read: Pin<&'a mut F>) -> Watched<'a, F> {
        Watched { read, budget: self }
    }

    /// Before the next read: whether the task should now return to the runtime once, after
    /// [`READS_PER_TURN`] reads in a row that did not wait. How to yield is the runtime's
    /// business: a task that wakes itself may be queued first again (monoio does that).
    pub fn spend(&mut self) -> bool {
        if std::mem::take(&mut self.waited) {
            self.left = READS_PER_TURN;
            return false;
        }
        self.left -= 1;
        if self.left > 0 {
            return false;
        }
        self.left = READS_PER_TURN;
        true
    }
}

/// A read watched by a [`Budget`].
pub struct Watched<'a, F> {
    read: Pin<&'a mut F>,
    budget: &'a mut Budget,
}

impl<F: Future> Future for Watched<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let poll = this.read.as_mut().poll(cx);
        if poll.is_pending() {
            this.budget.waited = true;
        }
        poll
    }
}

#[cfg(test)]
mod tests {
    use std::future::{pending, ready};
    use std::pin::pin;
    use std::task::Waker;

    use super::*;

    /// Reads that never wait (a flood): a yield every READS_PER_TURN.
    #[test]
    fn reads_that_never_wait_yield_every_reads_per_turn() {
        let mut cx = Context::from_waker(Waker::noop());
        let mut budget = Budget::default();
        let yields: usize = (0..READS_PER_TURN * 3)
            .map(|_| {
                let read = pin!(ready(()));
                assert!(pin!(budget.watch(read)).poll(&mut cx).is_ready());
                usize::from(budget.spend())
            })
            .sum();
        assert_eq!(yields, 3);
    }

    /// A read that waited once in a while (ordinary traffic): never a yield.
    #[test]
    fn a_read_that_waits_refills_the_budget() {
        let mut cx = Context::from_waker(Waker::noop());
        let mut budget = Budget::default();
        let yields: usize = (0..READS_PER_TURN * 10)
            .map(|i| {
                if i % (READS_PER_TURN - 1) == 0 {
                    let read = pin!(pending::<()>());
                    assert!(pin!(budget.watch(read)).poll(&mut cx).is_pending());
                }
                usize::from(budget.spend())
            })
            .sum();
        assert_eq!(yields, 0);
    }
}
