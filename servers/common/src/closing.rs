//! Graceful shutdown, told to every connection of one runtime.
//!
//! A connection's loop waits for shutdown beside its read on every turn, so what that wait
//! costs when nothing happens is paid per message. tokio's `watch` channel costs about 90
//! instructions per poll there (its `Notified` future, a coop budget check, a version
//! compare); this is a flag plus one waker slot per connection: a poll is an atomic load and
//! a `will_wake` comparison, and the slot's lock is taken only when a connection's task
//! changes its waker (in practice once, at its first poll). One implementation for every
//! runtime, so every server pays the same for being interruptible.

use std::future::{poll_fn, Future};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

/// The shutdown signal of one runtime.
#[derive(Debug, Default)]
pub struct Closing {
    closed: AtomicBool,
    waiters: Mutex<Waiters>,
}

/// One waker slot per subscribed connection; freed slots are reused.
#[derive(Debug, Default)]
struct Waiters {
    slots: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl Closing {
    /// A signal not yet given.
    pub fn new() -> Arc<Closing> {
        Arc::default()
    }

    /// Whether [`Closing::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Give the signal: every subscription's [`Subscription::closed`] completes.
    pub fn close(&self) {
        // The flag first: a subscription that registers after the wakers are taken below
        // sees it when it checks again after registering.
        self.closed.store(true, Ordering::Release);
        // Take the wakers out first: no lock is held while tasks are woken.
        let wakers: Vec<Waker> = self
            .waiters()
            .slots
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for waker in wakers {
            waker.wake();
        }
    }

    /// A waker slot for one connection, freed when the subscription is dropped.
    pub fn subscribe(self: &Arc<Closing>) -> Subscription {
        let mut waiters = self.waiters();
        let slot = match waiters.free.pop() {
            Some(slot) => slot,
            None => {
                waiters.slots.push(None);
                waiters.slots.len() - 1
            }
        };
        Subscription {
            closing: Arc::clone(self),
            slot,
            registered: None,
        }
    }

    /// The waiter list; a panic while it was held left it consistent (every change to it
    /// is a single assignment), so a poisoned lock is used as is.
    fn waiters(&self) -> MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One connection's view of [`Closing`].
#[derive(Debug)]
pub struct Subscription {
    closing: Arc<Closing>,
    slot: usize,
    /// The waker last put in the slot: while the task's waker is the same, a poll need not
    /// take the lock.
    registered: Option<Waker>,
}

impl Subscription {
    /// Whether the signal was given.
    pub fn is_closed(&self) -> bool {
        self.closing.is_closed()
    }

    /// Completes once the signal is given (at once if it already was). Cancel-safe: the slot
    /// keeps the waker, and the next call finds it there.
    pub fn closed(&mut self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            if self.is_closed() {
                return Poll::Ready(());
            }
            if self
                .registered
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()))
            {
                return Poll::Pending;
            }
            self.closing.waiters().slots[self.slot] = Some(cx.waker().clone());
            self.registered = Some(cx.waker().clone());
            // `close` may have taken the wakers between the test above and the registration.
            if self.is_closed() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut waiters = self.closing.waiters();
        waiters.slots[self.slot] = None;
        waiters.free.push(self.slot);
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::task::Context;
    use std::thread;

    use super::*;
    use crate::test_wakers::counting as counting_waker;

    #[test]
    fn close_wakes_each_waiting_subscription_once() {
        let closing = Closing::new();
        let (counter, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut a = closing.subscribe();
        let mut b = closing.subscribe();
        for _ in 0..3 {
            assert!(pin!(a.closed()).poll(&mut cx).is_pending());
            assert!(pin!(b.closed()).poll(&mut cx).is_pending());
        }
        closing.close();
        assert_eq!(counter.count(), 2);
        assert!(pin!(a.closed()).poll(&mut cx).is_ready());
        assert!(pin!(b.closed()).poll(&mut cx).is_ready());
        assert!(closing.subscribe().is_closed());
    }

    #[test]
    fn a_new_waker_takes_the_slot() {
        let closing = Closing::new();
        let (first, first_waker) = counting_waker();
        let (second, second_waker) = counting_waker();
        let mut sub = closing.subscribe();
        assert!(pin!(sub.closed())
            .poll(&mut Context::from_waker(&first_waker))
            .is_pending());
        assert!(pin!(sub.closed())
            .poll(&mut Context::from_waker(&second_waker))
            .is_pending());
        closing.close();
        assert_eq!(first.count(), 0);
        assert_eq!(second.count(), 1);
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
        assert_eq!(closing.waiters().slots.len(), 2);
    }

    /// A close from another thread, racing the first poll, is never missed: either the poll
    /// sees the flag or its waker is woken.
    #[test]
    fn a_close_racing_the_registration_is_seen() {
        for _ in 0..200 {
            let closing = Closing::new();
            let (counter, waker) = counting_waker();
            let mut sub = closing.subscribe();
            let closer = {
                let closing = Arc::clone(&closing);
                thread::spawn(move || closing.close())
            };
            let ready = pin!(sub.closed())
                .poll(&mut Context::from_waker(&waker))
                .is_ready();
            closer.join().unwrap();
            assert!(ready || counter.count() == 1);
        }
    }
}
