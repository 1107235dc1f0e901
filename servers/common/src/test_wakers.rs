//! A waker that counts its wakes, for the unit tests of this crate's futures (a waker that
//! does nothing is `Waker::noop()`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};

/// How often a [`counting`] waker was woken.
#[derive(Debug, Default)]
pub(crate) struct CountWakes(AtomicUsize);

impl CountWakes {
    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl Wake for CountWakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// A waker and its count.
pub(crate) fn counting() -> (Arc<CountWakes>, Waker) {
    let count = Arc::new(CountWakes::default());
    let waker = Waker::from(Arc::clone(&count));
    (count, waker)
}
