//! `--broadcast`: delivering other connections' messages (see `fanout`), one send per
//! connection for everything queued, behind any reply in flight.

use std::task::{Context, Poll};

use io_uring::{opcode, types};
use wsport_server_common::faults::Faults;
use wsport_server_common::hub::Taken;
use wsport_server_common::session::Control;

use crate::conn::State;
use crate::error::UringError;
use crate::worker::{slot, Op, Worker};

impl<F: Faults> Worker<F> {
    /// Keep a read on the eventfd in flight, so that a publish from another thread ends the
    /// wait.
    pub fn arm_wake(&mut self) -> Result<(), UringError> {
        let Some(fanout) = self.fanout.as_mut() else {
            return Ok(());
        };
        if fanout.armed {
            return Ok(());
        }
        fanout.armed = true;
        let counter: *mut u64 = &mut *fanout.counter;
        let entry = opcode::Read::new(types::Fd(fanout.eventfd()), counter.cast(), 8).build();
        // SAFETY: the read writes 8 bytes into the boxed counter, which lives as long as the
        // fanout, and the fanout as long as the worker; the ring is dropped first.
        unsafe { self.push(entry.user_data(Op::Wake.user_data(0))) }
    }

    /// The eventfd was written: the connections it is for are in the ready list.
    pub fn on_wake(&mut self) -> Result<(), UringError> {
        if let Some(fanout) = self.fanout.as_mut() {
            fanout.armed = false;
        }
        self.arm_wake()
    }

    /// Deliver to every connection woken since the last call (and to those woken meanwhile).
    pub fn deliver_ready(&mut self) -> Result<(), UringError> {
        let mut keys = Vec::new();
        loop {
            match self.fanout.as_ref() {
                Some(fanout) => fanout.take_ready(&mut keys),
                None => return Ok(()),
            }
            if keys.is_empty() {
                return Ok(());
            }
            for key in keys.drain(..) {
                self.deliver(key)?;
            }
        }
    }

    /// Send what `key`'s inbox holds, unless a send of its is in flight: `finish_send` calls
    /// this again once it completes, so the peer's own pace bounds what waits in the inbox.
    pub fn deliver(&mut self, key: u32) -> Result<(), UringError> {
        // Called after every completed send: without --broadcast, nothing more to do.
        if self.fanout.is_none() {
            return Ok(());
        }
        let now = self.now;
        let (Some(fanout), Some(conn)) = (self.fanout.as_mut(), slot(&mut self.conns, key)) else {
            return Ok(());
        };
        if conn.state != State::Open || conn.out.is_some() {
            return Ok(());
        }
        let (Some(subscription), Some(waker)) = (conn.subscription.as_ref(), conn.waker.as_ref())
        else {
            return Ok(());
        };
        let control =
            match subscription.poll_take(&mut Context::from_waker(waker), &mut fanout.inbox) {
                Poll::Pending => return Ok(()),
                Poll::Ready(Taken::Frames) => {
                    let mut control = Control::default();
                    conn.session.deliver(&fanout.inbox, &mut control.output);
                    fanout.inbox.clear();
                    control
                }
                Poll::Ready(Taken::TooSlow) => {
                    conn.subscription = None;
                    conn.session.close_too_slow(now)
                }
            };
        if control.output.is_empty() && control.end.is_none() {
            return Ok(());
        }
        self.send_control(key, control)
    }
}
