//! Graceful shutdown, told to every connection task of one runtime thread.
//!
//! What tokio's `watch` channel does for the tokio server, for tasks that never leave their
//! thread: a flag plus one waker slot per connection. A connection takes its slot once
//! ([`Closing::subscribe`]) and its `select!` polls [`Subscription::closed`] on every turn of
//! its loop; that poll is a flag test and a `will_wake` comparison, so the read path pays
//! nothing measurable for being interruptible.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::task::{Poll, Waker};

/// The shutdown signal of one runtime thread.
#[derive(Debug, Default)]
pub struct Closing {
    closed: Cell<bool>,
    waiters: RefCell<Waiters>,
}

/// One waker slot per subscribed connection; freed slots are reused.
#[derive(Debug, Default)]
struct Waiters {
    slots: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl Closing {
    /// A signal not yet given.
    pub fn new() -> Rc<Closing> {
        Rc::default()
    }

    /// Whether [`Closing::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Give the signal: every subscription's [`Subscription::closed`] completes.
    pub fn close(&self) {
        self.closed.set(true);
        // Take the wakers out first: no borrow is held while tasks are woken.
        let wakers: Vec<Waker> = self
            .waiters
            .borrow_mut()
            .slots
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for waker in wakers {
            waker.wake();
        }
    }

    /// A waker slot for one connection, freed when the subscription is dropped.
    pub fn subscribe(self: &Rc<Closing>) -> Subscription {
        let mut waiters = self.waiters.borrow_mut();
        let slot = match waiters.free.pop() {
            Some(slot) => slot,
            None => {
                waiters.slots.push(None);
                waiters.slots.len() - 1
            }
        };
        Subscription {
            closing: Rc::clone(self),
            slot,
        }
    }
}

/// One connection's view of [`Closing`].
#[derive(Debug)]
pub struct Subscription {
    closing: Rc<Closing>,
    slot: usize,
}

impl Subscription {
    /// Whether the signal was given.
    pub fn is_closed(&self) -> bool {
        self.closing.is_closed()
    }

    /// Completes once the signal is given (at once if it already was).
    pub fn closed(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            if self.closing.is_closed() {
                return Poll::Ready(());
            }
            let mut waiters = self.closing.waiters.borrow_mut();
            let slot = &mut waiters.slots[self.slot];
            // A task's waker stays the same from one poll to the next: keep it, no clone.
            if !slot
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()))
            {
                *slot = Some(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut waiters = self.closing.waiters.borrow_mut();
        waiters.slots[self.slot] = None;
        waiters.free.push(self.slot);
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Wake};

    use super::*;

    struct CountWakes(AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn close_wakes_each_waiting_subscription_once() {
        let closing = Closing::new();
        let counter = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&counter));
        let mut cx = Context::from_waker(&waker);
        let a = closing.subscribe();
        let b = closing.subscribe();
        let mut wait_a = pin!(a.closed());
        let mut wait_b = pin!(b.closed());
        for _ in 0..3 {
            assert!(wait_a.as_mut().poll(&mut cx).is_pending());
            assert!(wait_b.as_mut().poll(&mut cx).is_pending());
        }
        closing.close();
        assert_eq!(counter.0.load(Ordering::Relaxed), 2);
        assert!(wait_a.as_mut().poll(&mut cx).is_ready());
        assert!(wait_b.as_mut().poll(&mut cx).is_ready());
        assert!(closing.subscribe().is_closed());
    }

    #[test]
    fn slots_are_reused() {
        let closing = Closing::new();
        let a = closing.subscribe();
        let b = closing.subscribe();
        drop(a);
        let c = closing.subscribe();
        assert_eq!(c.slot, 0);
        drop((b, c));
        assert_eq!(closing.waiters.borrow().slots.len(), 2);
    }
}
