//! Deadlines without a timer per message.
//!
//! A connection's deadlines move on every message: the idle timeout and the next heartbeat
//! count from the last read, and each echo is written under a write timeout. Arming a
//! runtime timer for every new instant costs a timer-wheel insert and removal (each under
//! a lock, in tokio and in monoio) per message, for timeouts that almost never fire. Worse
//! for a benchmark, the servers would not pay it alike: tokio's `timeout()` registers its
//! timer only when the write does not complete at its first poll, and an io_uring write
//! never does.
//!
//! So each connection keeps one runtime sleep for all its deadlines, armed lazily by an
//! `Alarm`: the sleep is moved only when a deadline comes *earlier* than the instant it
//! is armed for. A deadline that moves later — the idle timeout after each message — leaves
//! it alone; when it then fires early, the clock is compared with the real deadline and the
//! sleep re-armed for it. Under steady traffic a connection arms a timer about once per
//! deadline period (the handshake timeout, the idle timeout, the write timeout), not once per
//! message; the rarer deadlines — the heartbeat's ping and pong (RFC 6455 §5.5.2-5.5.3), the
//! wait for the peer's close frame and the linger after our FIN (§7.1.1) — use the same
//! sleep, and [`Counters::timer_armed`] counts each arm so a test can hold every server to
//! it.
//!
//! [`Timer`] is that alarm around a runtime's sleep. It needs no runtime: it is generic over
//! the sleep future, and each server names its runtime's sleep and how to move it. Writes
//! go through [`Timer::bound`], which consults the timer only when the write does not
//! complete at its first poll, the same rule in every server.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use crate::counters::Counters;
use crate::fired::Fired;

/// Whether `deadline` had passed at `now`: for a loop whose `select!` polls its read first,
/// so that a peer keeping the socket readable cannot keep the timer from being polled.
pub fn is_due(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|at| at <= now)
}

/// Where a connection's one sleep is armed, and whether it must move.
///
/// [`Timer`] wraps it around a runtime's sleep; a server without a runtime (wsport-uring, with
/// its own per-thread timer queue) uses it directly, so every server arms alike.
#[derive(Debug, Default, Clone, Copy)]
pub struct Alarm {
    /// The instant the sleep is armed for; `None` before the first arm and once it fired.
    armed: Option<Instant>,
}

impl Alarm {
    /// Before waiting for `deadline`: the instant to (re)arm the sleep for, or `None` when
    /// the sleep is armed for no later than `deadline` (it fires early and is re-armed then).
    #[must_use]
    pub fn arm_for(&mut self, deadline: Instant) -> Option<Instant> {
        if self.armed.is_some_and(|at| at <= deadline) {
            return None;
        }
        self.armed = Some(deadline);
        Some(deadline)
    }

    /// The sleep completed: it is no longer armed.
    pub fn fired(&mut self) {
        self.armed = None;
    }

    /// The instant the sleep is armed for, if any: a timer queue entry for another instant is
    /// stale.
    pub fn armed(&self) -> Option<Instant> {
        self.armed
    }
}

/// A connection's one timer: a runtime sleep `S`, armed lazily for the earliest deadline
/// asked (see the module doc).
pub struct Timer<S> {
    alarm: Alarm,
    /// Made at the first arm; boxed because a runtime's sleep is `!Unpin` and the timer
    /// moves with its connection.
    sleep: Option<Pin<Box<S>>>,
    start: fn(Instant) -> S,
    reset: fn(Pin<&mut S>, Instant),
    /// The sleep is polled with this waker, and only again once it woke the task or was
    /// moved (see [`crate::fired`]).
    fired: Fired,
}

impl<S: Future<Output = ()>> Timer<S> {
    /// A timer not yet armed, that makes its sleep with `start` and moves it with `reset`
    /// (`tokio::time::sleep_until` and `Sleep::reset`, or monoio's).
    pub fn new(start: fn(Instant) -> S, reset: fn(Pin<&mut S>, Instant)) -> Self {
        Timer {
            alarm: Alarm::default(),
            sleep: None,
            start,
            reset,
            fired: Fired::default(),
        }
    }

    /// Completes once `deadline` has passed; never when it is `None`.
    ///
    /// Cancel-safe, for a `select!` beside a read: dropped before it completes, it leaves the
    /// sleep armed, and the next call re-arms it only if its deadline is earlier.
    pub async fn until(&mut self, deadline: Option<Instant>, counters: &Counters) {
        poll_fn(|cx| self.poll_until(cx, deadline, counters)).await
    }

    /// Drive `op` to completion, or until `give_up` passes: `None` then, with `op` still
    /// pending, for the caller to end it its own way (an io_uring write cannot be dropped).
    ///
    /// The timer is consulted only when `op` does not complete at its first poll, so a write
    /// that completes at once arms nothing, in every server; one that waits mostly finds the
    /// sleep armed early enough already.
    pub async fn bound<F: Future>(
        &mut self,
        mut op: Pin<&mut F>,
        give_up: Instant,
        counters: &Counters,
    ) -> Option<F::Output> {
        poll_fn(|cx| {
            if let Poll::Ready(output) = op.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            self.poll_until(cx, Some(give_up), counters).map(|()| None)
        })
        .await
    }

    fn poll_until(
        &mut self,
        cx: &mut Context<'_>,
        deadline: Option<Instant>,
        counters: &Counters,
    ) -> Poll<()> {
        let Some(deadline) = deadline else {
            return Poll::Pending;
        };
        loop {
            let moved = self.arm_for(deadline, counters);
            // Not moved and not woken: polled again it could only say it is pending.
            if !self.fired.take(cx.waker()) && !moved {
                return Poll::Pending;
            }
            let sleep = self.sleep.as_mut().expect("armed above").as_mut();
            ready!(sleep.poll(&mut Context::from_waker(self.fired.waker())));
            self.alarm.fired();
            // Armed for an earlier deadline that has since moved on (the idle timeout after
            // more traffic): not due yet, so arm again for the real one.
            if Instant::now() >= deadline {
                return Poll::Ready(());
            }
        }
    }

    /// Arm the sleep for `deadline` or earlier; whether it was (re)armed now, and must be
    /// polled to register.
    fn arm_for(&mut self, deadline: Instant, counters: &Counters) -> bool {
        let Some(at) = self.alarm.arm_for(deadline) else {
            return false;
        };
        counters.timer_armed();
        match &mut self.sleep {
            Some(sleep) => (self.reset)(sleep.as_mut(), at),
            None => self.sleep = Some(Box::pin((self.start)(at))),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::future::{pending, ready};
    use std::pin::pin;
    use std::task::Waker;
    use std::time::Duration;

    use super::*;

    /// A sleep that completes once the clock passes its instant (never within a test, for the
    /// deadlines used here): arms are what is counted, not time.
    struct FakeSleep(Instant);

    impl Future for FakeSleep {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            if Instant::now() >= self.0 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    fn timer() -> Timer<FakeSleep> {
        Timer::new(FakeSleep, |sleep, at| sleep.get_mut().0 = at)
    }

    /// Poll `future` once.
    fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
        pin!(future).poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn only_a_passed_deadline_is_due() {
        let now = Instant::now();
        assert!(is_due(Some(now), now));
        assert!(is_due(Some(now - Duration::from_millis(1)), now));
        assert!(!is_due(Some(now + Duration::from_millis(1)), now));
        assert!(!is_due(None, now));
    }

    fn arms(counters: &Counters) -> u64 {
        counters
            .timer_arms
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    #[test]
    fn later_deadlines_leave_the_alarm_alone_and_earlier_ones_move_it() {
        let now = Instant::now();
        let mut alarm = Alarm::default();
        assert_eq!(
            alarm.arm_for(now + Duration::from_secs(10)),
            Some(now + Duration::from_secs(10))
        );
        assert_eq!(alarm.arm_for(now + Duration::from_secs(300)), None);
        assert_eq!(
            alarm.arm_for(now + Duration::from_secs(2)),
            Some(now + Duration::from_secs(2))
        );
        alarm.fired();
        assert_eq!(
            alarm.arm_for(now + Duration::from_secs(300)),
            Some(now + Duration::from_secs(300))
        );
    }

    /// 10,000 reads, each moving the idle deadline later: one arm, not 10,000.
    #[test]
    fn an_idle_deadline_moved_per_message_arms_once() {
        let counters = Counters::default();
        let mut timer = timer();
        for _ in 0..10_000 {
            let idle = Instant::now() + Duration::from_secs(300);
            assert!(poll_once(timer.until(Some(idle), &counters)).is_pending());
        }
        assert_eq!(arms(&counters), 1);
    }

    #[test]
    fn no_deadline_arms_nothing() {
        let counters = Counters::default();
        let mut timer = timer();
        assert!(poll_once(timer.until(None, &counters)).is_pending());
        assert_eq!(arms(&counters), 0);
    }

    thread_local! {
        static SLEEP_POLLS: Cell<usize> = const { Cell::new(0) };
        static SLEEP_WAKER: RefCell<Option<Waker>> = const { RefCell::new(None) };
    }

    /// A sleep that counts its polls and keeps the waker it was polled with.
    struct WatchedSleep(Instant);

    impl Future for WatchedSleep {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            SLEEP_POLLS.set(SLEEP_POLLS.get() + 1);
            SLEEP_WAKER.set(Some(cx.waker().clone()));
            if Instant::now() >= self.0 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    /// A `select!` turn that the sleep did not cause does not poll it: 1,000 turns, one poll;
    /// once it wakes the task, it is polled again.
    #[test]
    fn the_sleep_is_polled_again_only_once_it_woke_the_task() {
        let counters = Counters::default();
        let mut timer = Timer::new(WatchedSleep, |sleep, at| sleep.get_mut().0 = at);
        let mut cx = Context::from_waker(Waker::noop());
        let idle = Instant::now() + Duration::from_secs(300);
        for _ in 0..1_000 {
            let until = pin!(timer.until(Some(idle), &counters));
            assert!(until.poll(&mut cx).is_pending());
        }
        assert_eq!(SLEEP_POLLS.get(), 1);
        SLEEP_WAKER.take().expect("the sleep was polled").wake();
        assert!(pin!(timer.until(Some(idle), &counters))
            .poll(&mut cx)
            .is_pending());
        assert_eq!(SLEEP_POLLS.get(), 2);
    }

    #[test]
    fn a_deadline_that_passed_completes() {
        let counters = Counters::default();
        let mut timer = timer();
        let past = Instant::now() - Duration::from_millis(1);
        assert!(poll_once(timer.until(Some(past), &counters)).is_ready());
        // Fired: the next deadline arms again.
        let later = Instant::now() + Duration::from_secs(300);
        assert!(poll_once(timer.until(Some(later), &counters)).is_pending());
        assert_eq!(arms(&counters), 2);
    }

    /// Armed for an earlier deadline that has passed, the timer fires early for a later one:
    /// it re-arms instead of completing.
    #[test]
    fn an_early_fire_re_arms_for_the_real_deadline() {
        let counters = Counters::default();
        let mut timer = timer();
        let past = Instant::now() - Duration::from_millis(1);
        assert!(poll_once(timer.until(Some(past), &counters)).is_ready());
        let later = Instant::now() + Duration::from_secs(300);
        let earlier = Instant::now() - Duration::from_millis(1);
        assert!(poll_once(timer.until(Some(earlier), &counters)).is_ready());
        assert!(poll_once(timer.until(Some(later), &counters)).is_pending());
        assert_eq!(arms(&counters), 3);
    }

    #[test]
    fn an_operation_that_completes_at_once_arms_nothing() {
        let counters = Counters::default();
        let mut timer = timer();
        let give_up = Instant::now() + Duration::from_secs(30);
        for _ in 0..10_000 {
            let op = pin!(ready(7));
            assert_eq!(
                poll_once(timer.bound(op, give_up, &counters)),
                Poll::Ready(Some(7))
            );
        }
        assert_eq!(arms(&counters), 0);
    }

    /// Writes that wait (every io_uring write) share the armed timer: one arm for 10,000.
    #[test]
    fn operations_that_wait_share_one_arm() {
        let counters = Counters::default();
        let mut timer = timer();
        for _ in 0..10_000 {
            let give_up = Instant::now() + Duration::from_secs(30);
            let op = pin!(pending::<()>());
            assert!(poll_once(timer.bound(op, give_up, &counters)).is_pending());
        }
        assert_eq!(arms(&counters), 1);
    }

    #[test]
    fn an_operation_past_its_deadline_gives_up() {
        let counters = Counters::default();
        let mut timer = timer();
        let give_up = Instant::now() - Duration::from_millis(1);
        let op = pin!(pending::<()>());
        assert_eq!(
            poll_once(timer.bound(op, give_up, &counters)),
            Poll::Ready(None)
        );
    }
}
