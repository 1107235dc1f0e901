//! How a connection ends, and how a runtime thread drains at shutdown: the rules every server
//! follows, with no IO, so that each server keeps only the calls that carry them out.
//!
//! A completion-based server (tokio-uring, monoio) keeps a read in flight while it ends a
//! connection: an io_uring read runs in the kernel on a buffer it was given, and dropping its
//! future does not stop it. So an ending is a state the read loop consults, [`Ending`]:
//!
//! - **linger** ([`End::Linger`](crate::session::End::Linger)): our answer and FIN are out;
//!   what the peer still sends is read and discarded until its FIN or [`LINGER`] (RFC 6455
//!   §7.1.1: the server closes TCP first, and unread input would turn our close into a reset
//!   that could destroy the answer before the peer reads it);
//! - **forced**: the socket was shut down for reading, which makes the kernel complete the
//!   read at once; it is awaited up to [`FORCE_GRACE`], then abandoned as a last resort.
//!
//! A readiness-based server (tokio) can drop its read at any time and needs only the rule:
//! [`linger_until`]. [`drain`] is the end of every runtime thread.
//!
//! [`End::Close`](crate::session::End::Close) needs none of this: it comes from the read path,
//! where the read has completed, so the socket is simply closed (io_uring with a multishot
//! receive always in flight ends it as it ends a dropped connection).

use std::future::Future;
use std::time::{Duration, Instant};

use crate::config::ServerConfig;
use crate::session::{drain_time, Session, LINGER};
use crate::shutdown::{Shutdown, POLL_INTERVAL};

/// How long a read may take to complete once its socket is shut down; it should take
/// microseconds.
pub const FORCE_GRACE: Duration = Duration::from_secs(1);

/// Where a connection with a read in flight stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Serving the protocol.
    No,
    /// Our FIN is sent: discard what arrives until the peer's FIN or this instant.
    Linger(Instant),
    /// The socket is shut down for reading so that the read in flight completes; stop
    /// waiting for it at this instant.
    Forced(Instant),
}

/// What to do with a read that completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterRead {
    /// Hand the bytes to the session.
    Serve(usize),
    /// Lingering: drop the bytes and read again.
    Discard,
    /// The connection is over: EOF, an error, or the forced read's completion.
    Over,
}

/// What to do when [`Ending::wake_at`] passed while not serving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterDeadline {
    /// The linger ran out without the peer's FIN: shut the socket down for reading (so the
    /// read completes) and go on as this.
    Force(Ending),
    /// The forced read did not complete within [`FORCE_GRACE`]: abandon it.
    GiveUp,
}

impl Ending {
    /// Our FIN was just sent at `now`.
    pub fn linger(now: Instant) -> Ending {
        Ending::Linger(linger_until(now))
    }

    /// The socket was just shut down for reading at `now`.
    pub fn forced(now: Instant) -> Ending {
        Ending::Forced(now + FORCE_GRACE)
    }

    /// Whether the protocol is still served (timers, shutdown and deliveries apply).
    pub fn is_serving(self) -> bool {
        self == Ending::No
    }

    /// When to wake if the read does not complete first.
    pub fn wake_at(self, session: &Session) -> Option<Instant> {
        match self {
            Ending::No => session.next_deadline(),
            Ending::Linger(at) | Ending::Forced(at) => Some(at),
        }
    }

    /// A read completed with `result` (0 bytes: the peer's FIN).
    pub fn after_read<E>(self, result: &Result<usize, E>) -> AfterRead {
        match (self, result) {
            (Ending::No, Ok(n)) if *n > 0 => AfterRead::Serve(*n),
            (Ending::Linger(_), Ok(n)) if *n > 0 => AfterRead::Discard,
            _ => AfterRead::Over,
        }
    }

    /// [`Ending::wake_at`] passed at `now` while not serving.
    pub fn after_deadline(self, now: Instant) -> AfterDeadline {
        match self {
            Ending::Linger(_) => AfterDeadline::Force(Ending::forced(now)),
            Ending::No | Ending::Forced(_) => AfterDeadline::GiveUp,
        }
    }
}

/// When a connection whose FIN was sent at `now` stops waiting for the peer's.
pub fn linger_until(now: Instant) -> Instant {
    now + LINGER
}

/// A runtime thread's life after its accept loops started: wait for SIGINT/SIGTERM, call
/// `close_all` (stop accepting, tell every connection to close with 1001), then wait until
/// `active()` connections are left at zero or the drain time is over. `sleep` is the
/// runtime's own timer; the shutdown flag is polled every [`POLL_INTERVAL`] because signals
/// arrive on another thread.
pub async fn drain<S: Future<Output = ()>>(
    shutdown: &Shutdown,
    config: &ServerConfig,
    sleep: impl Fn(Duration) -> S,
    close_all: impl FnOnce(),
    active: impl Fn() -> usize,
) {
    while !shutdown.is_requested() {
        sleep(POLL_INTERVAL).await;
    }
    close_all();
    let give_up = Instant::now() + drain_time(config);
    while active() > 0 && Instant::now() < give_up {
        sleep(Duration::from_millis(10)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::test_config::default_config;

    /// Run `future`, whose sleeps are ready at once, to its end.
    fn run_to_end(future: impl Future<Output = ()>) {
        let mut future = pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..1000 {
            if future.as_mut().poll(&mut cx) == Poll::Ready(()) {
                return;
            }
        }
        panic!("the future never ended");
    }

    #[test]
    fn drain_waits_for_the_request_closes_all_once_then_waits_for_the_connections() {
        let shutdown = Shutdown::new();
        let config = default_config();
        let sleeps = Cell::new(0);
        let closed = Cell::new(0);
        let open = Cell::new(3usize);
        let sleep = |_| {
            sleeps.set(sleeps.get() + 1);
            if sleeps.get() == 5 {
                shutdown.request();
            }
            std::future::ready(())
        };
        let active = || {
            let now = open.get();
            open.set(now.saturating_sub(1));
            now
        };
        run_to_end(drain(
            &shutdown,
            &config,
            sleep,
            || closed.set(closed.get() + 1),
            active,
        ));
        assert_eq!(closed.get(), 1);
        assert_eq!(open.get(), 0, "waited until no connection was left");
        assert_eq!(
            sleeps.get(),
            5 + 3,
            "polled until the request, then per check"
        );
    }

    #[test]
    fn a_read_is_served_only_while_serving_and_discarded_while_lingering() {
        let now = Instant::now();
        let ok = |n: usize| -> Result<usize, ()> { Ok(n) };
        assert_eq!(Ending::No.after_read(&ok(5)), AfterRead::Serve(5));
        assert_eq!(Ending::No.after_read(&ok(0)), AfterRead::Over, "EOF");
        assert_eq!(Ending::No.after_read(&Err(())), AfterRead::Over);
        let lingering = Ending::linger(now);
        assert_eq!(lingering.after_read(&ok(5)), AfterRead::Discard);
        assert_eq!(
            lingering.after_read(&ok(0)),
            AfterRead::Over,
            "the peer's FIN"
        );
        assert_eq!(Ending::forced(now).after_read(&ok(5)), AfterRead::Over);
    }

    #[test]
    fn a_linger_that_runs_out_is_forced_and_a_forced_read_that_hangs_is_given_up() {
        let now = Instant::now();
        let lingering = Ending::linger(now);
        assert_eq!(lingering, Ending::Linger(now + LINGER));
        let later = now + LINGER;
        assert_eq!(
            lingering.after_deadline(later),
            AfterDeadline::Force(Ending::Forced(later + FORCE_GRACE))
        );
        assert_eq!(
            Ending::forced(later).after_deadline(later + FORCE_GRACE),
            AfterDeadline::GiveUp
        );
        assert!(Ending::No.is_serving() && !lingering.is_serving());
    }
}
