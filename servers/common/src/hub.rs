//! `--broadcast`: one hub per process through which every data message a connection receives
//! reaches every other open connection, on every runtime thread.
//!
//! Runtime-free on purpose, so that all four servers fan out with the same code and differ
//! only in their IO: a publisher hands the hub its frames, encoded once
//! ([`crate::publish`]); the hub appends a reference to them to each other subscriber's inbox
//! and wakes that subscriber's task with the [`Waker`] it left there (tokio, tokio-uring and
//! monoio tasks, or a wsport-uring thread's wake-up, see its `wake` module). The subscriber
//! takes everything queued at once and sends it in one write.
//!
//! One lock around the subscriber list orders publishes: every inbox receives messages in the
//! same order, the order in which the hub took them. An inbox refers to at most
//! [`MAX_QUEUED_BYTES`] of publishes; a subscriber that falls further behind (a peer that does not read) is told it is
//! too slow, and the server closes it with 1008 (RFC 6455 §7.4.1, policy violation) instead of
//! buffering without bound.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Bytes of publishes an inbox refers to before its subscriber is closed as too slow. Frames
/// are shared, so this bounds how long a slow peer keeps old messages alive, not a copy each.
pub const MAX_QUEUED_BYTES: usize = 4 << 20;

/// Frames one publisher sent in one go, shared by every inbox they are queued in.
pub type Frames = Arc<[u8]>;

/// The process's subscribers.
#[derive(Debug, Default)]
pub struct Hub {
    subscribers: Mutex<HashMap<u64, Arc<Inbox>>>,
    next_id: AtomicU64,
}

#[derive(Debug, Default)]
struct Inbox {
    state: Mutex<InboxState>,
}

#[derive(Debug, Default)]
struct InboxState {
    queued: Vec<Frames>,
    queued_bytes: usize,
    waker: Option<Waker>,
    /// More than [`MAX_QUEUED_BYTES`] waited: the queue was dropped.
    overflowed: bool,
}

/// What a subscriber finds in its inbox.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// Publishes to send, oldest first (appended to the caller's vector).
    Frames,
    /// The subscriber fell [`MAX_QUEUED_BYTES`] behind; nothing more will be queued.
    TooSlow,
}

/// One connection's place in the hub; leaving it on drop.
#[derive(Debug)]
pub struct Subscription {
    id: u64,
    inbox: Arc<Inbox>,
    hub: Arc<Hub>,
}

impl Hub {
    /// A hub with no subscribers.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Join: from now on every message another subscriber publishes is queued here.
    pub fn subscribe(self: &Arc<Self>) -> Subscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let inbox = Arc::new(Inbox::default());
        lock(&self.subscribers).insert(id, Arc::clone(&inbox));
        Subscription {
            id,
            inbox,
            hub: Arc::clone(self),
        }
    }

    /// Queue `frames` for every subscriber but `from`, waking each.
    pub fn publish(&self, from: &Subscription, frames: &Frames) {
        let subscribers = lock(&self.subscribers);
        for (&id, inbox) in subscribers.iter() {
            if id != from.id {
                inbox.push(frames);
            }
        }
    }

    /// Subscribers now, the publisher included.
    pub fn len(&self) -> usize {
        lock(&self.subscribers).len()
    }

    /// Whether nobody is subscribed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inbox {
    fn push(&self, frames: &Frames) {
        let mut state = lock(&self.state);
        if state.overflowed {
            return;
        }
        state.queued_bytes += frames.len();
        if state.queued_bytes > MAX_QUEUED_BYTES {
            state.overflowed = true;
            state.queued = Vec::new();
        } else {
            state.queued.push(Arc::clone(frames));
        }
        // Wake once per batch: the waker is taken, and left again only when the inbox was
        // found empty.
        if let Some(waker) = state.waker.take() {
            drop(state);
            waker.wake();
        }
    }
}

impl Subscription {
    /// Move everything queued into `out`, or leave `cx`'s waker to be woken by the next
    /// publish when nothing is.
    pub fn poll_take(&self, cx: &mut Context<'_>, out: &mut Vec<Frames>) -> Poll<Taken> {
        let mut state = lock(&self.inbox.state);
        if state.overflowed {
            return Poll::Ready(Taken::TooSlow);
        }
        if state.queued.is_empty() {
            if !state
                .waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                state.waker = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        out.append(&mut state.queued);
        state.queued_bytes = 0;
        Poll::Ready(Taken::Frames)
    }

    /// [`Subscription::poll_take`] as a future.
    pub async fn take(&self, out: &mut Vec<Frames>) -> Taken {
        std::future::poll_fn(|cx| self.poll_take(cx, out)).await
    }

    /// Queue `frames` for every other subscriber.
    pub fn publish(&self, frames: &Frames) {
        self.hub.publish(self, frames);
    }
}

/// [`Subscription::take`] when subscribed; never ready without a subscription (no
/// `--broadcast`, or closed as too slow), so that a runtime's `select!` can always hold it.
pub async fn deliveries(subscription: Option<&Subscription>, out: &mut Vec<Frames>) -> Taken {
    match subscription {
        Some(subscription) => subscription.take(out).await,
        None => std::future::pending().await,
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        lock(&self.hub.subscribers).remove(&self.id);
    }
}

/// A poisoned lock only means another thread panicked mid-update of a queue of `Arc`s, which
/// leaves it consistent: keep going.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_wakers::CountWakes;

    fn take_now(sub: &Subscription, wakes: &Arc<CountWakes>) -> (Poll<Taken>, Vec<Frames>) {
        let waker = Waker::from(Arc::clone(wakes));
        let mut out = Vec::new();
        let poll = sub.poll_take(&mut Context::from_waker(&waker), &mut out);
        (poll, out)
    }

    fn frames(bytes: &[u8]) -> Frames {
        Arc::from(bytes)
    }

    #[test]
    fn every_other_subscriber_gets_each_publish_in_order_and_the_publisher_none() {
        let hub = Hub::new();
        let (publisher, a, b) = (hub.subscribe(), hub.subscribe(), hub.subscribe());
        publisher.publish(&frames(b"one"));
        publisher.publish(&frames(b"two"));
        a.publish(&frames(b"from a"));
        let wakes = Arc::new(CountWakes::default());
        for (sub, want) in [
            (&a, vec![&b"one"[..], b"two"]),
            (&b, vec![&b"one"[..], b"two", b"from a"]),
            (&publisher, vec![&b"from a"[..]]),
        ] {
            let (poll, out) = take_now(sub, &wakes);
            assert_eq!(poll, Poll::Ready(Taken::Frames));
            assert_eq!(out.iter().map(|f| &f[..]).collect::<Vec<_>>(), want);
        }
    }

    #[test]
    fn an_empty_inbox_leaves_its_waker_and_the_next_publish_wakes_it_once() {
        let hub = Hub::new();
        let (publisher, sub) = (hub.subscribe(), hub.subscribe());
        let wakes = Arc::new(CountWakes::default());
        assert_eq!(take_now(&sub, &wakes).0, Poll::Pending);
        publisher.publish(&frames(b"x"));
        publisher.publish(&frames(b"y"));
        assert_eq!(wakes.count(), 1, "one wake per batch");
        let (poll, out) = take_now(&sub, &wakes);
        assert_eq!((poll, out.len()), (Poll::Ready(Taken::Frames), 2));
    }

    #[test]
    fn a_subscriber_past_the_bound_is_too_slow_and_gets_nothing_more() {
        let hub = Hub::new();
        let (publisher, slow) = (hub.subscribe(), hub.subscribe());
        let one = frames(&[0; 1024]);
        for _ in 0..=MAX_QUEUED_BYTES / 1024 {
            publisher.publish(&one);
        }
        let wakes = Arc::new(CountWakes::default());
        let (poll, out) = take_now(&slow, &wakes);
        assert_eq!(poll, Poll::Ready(Taken::TooSlow));
        assert!(out.is_empty());
        assert_eq!(
            Arc::strong_count(&one),
            1,
            "the dropped queue freed its frames"
        );
    }

    #[test]
    fn a_dropped_subscription_leaves_the_hub() {
        let hub = Hub::new();
        let first = hub.subscribe();
        drop(hub.subscribe());
        assert_eq!(hub.len(), 1);
        drop(first);
        assert!(hub.is_empty());
    }
}
