//! A waker that remembers whether it was woken.
//!
//! A `select!` polls every branch that is not ready each time its task is woken by any of
//! them. A connection's timer is one such branch, polled on every turn of the loop for a
//! deadline minutes away: tokio's `Sleep::poll` alone costs some 50 instructions per message
//! (a coop budget check, the entry's state, the waker registration). Polled with a
//! [`Fired`]'s waker instead of the task's, the sleep tells us when it woke the task, and
//! need not be polled on the turns it did not.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Wake, Waker};

/// Stands between one future and its task's waker; see the module doc.
#[derive(Debug)]
pub struct Fired {
    shared: Arc<Shared>,
    /// The waker the future is polled with: wakes the task, and leaves a mark.
    waker: Waker,
    /// The task's waker last handed to `shared`: while the task's waker stays the same, no
    /// lock is taken.
    task: Option<Waker>,
}

#[derive(Debug, Default)]
struct Shared {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = task.as_ref() {
            task.wake_by_ref();
        }
    }
}

impl Default for Fired {
    fn default() -> Self {
        let shared = Arc::new(Shared::default());
        Fired {
            waker: Waker::from(Arc::clone(&shared)),
            shared,
            task: None,
        }
    }
}

impl Fired {
    /// Whether the future woke its task since the last call, clearing the mark; `task` (the
    /// waker of the poll under way) is the one the next wake reaches.
    pub fn take(&mut self, task: &Waker) -> bool {
        if !self
            .task
            .as_ref()
            .is_some_and(|known| known.will_wake(task))
        {
            *self
                .shared
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(task.clone());
            self.task = Some(task.clone());
        }
        self.shared.woken.swap(false, Ordering::AcqRel)
    }

    /// The waker to poll the future with.
    pub fn waker(&self) -> &Waker {
        &self.waker
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_wakers::counting;

    #[test]
    fn a_wake_is_marked_once_and_reaches_the_task() {
        let (counter, task) = counting();
        let mut fired = Fired::default();
        assert!(!fired.take(&task));
        fired.waker().wake_by_ref();
        assert_eq!(counter.count(), 1);
        assert!(fired.take(&task));
        assert!(!fired.take(&task));
    }

    #[test]
    fn a_wake_reaches_the_latest_task_waker() {
        let (first, first_waker) = counting();
        let (second, second_waker) = counting();
        let mut fired = Fired::default();
        fired.take(&first_waker);
        fired.take(&second_waker);
        fired.waker().wake_by_ref();
        assert_eq!(first.count(), 0);
        assert_eq!(second.count(), 1);
    }
}
