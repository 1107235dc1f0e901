//! A connection's receives, replies and ending, as completions arrive.
//!
//! The order of events on one connection is the session's: bytes go to the session only when
//! no reply of its is in flight, so replies leave in order; bytes that arrive meanwhile wait in
//! the spill (see `conn`). Pings and close frames from timers and shutdown wait behind the
//! reply in flight the same way.

use std::time::Instant;

use io_uring::{cqueue, opcode, squeue};
use wsport_server_common::ending::linger_until;
use wsport_server_common::faults::Faults;
use wsport_server_common::session::{Control, End, Step, WRITE_TIMEOUT};

use crate::bufring::BUF_GROUP;
use crate::conn::{Held, Outgoing, State};
use crate::error::UringError;
use crate::features::Receive;
use crate::worker::{on_socket, slot, Op, Worker};

/// Room a connection's own read buffer (`--no-buffer-ring`) keeps for the next read: the
/// same 16 KiB the other servers' buffers keep (`Session::after_write`).
const OWN_READ: usize = 16 * 1024;

impl<F: Faults> Worker<F> {
    /// Arm a receive on `key` if it needs one and may have one.
    pub fn ensure_recv(&mut self, key: u32) -> Result<(), UringError> {
        let fixed = self.features.registered_files;
        let receive = self.features.receive;
        let size = self.features.buffer_size as u32;
        let Some(conn) = slot(&mut self.conns, key) else {
            return Ok(());
        };
        // With its own buffer, a connection reads again only once its reply is sent and its
        // input handled: the next read appends to that same buffer.
        let own_busy = receive == Receive::OwnBuffer
            && conn.state == State::Open
            && (conn.out.is_some() || conn.fresh);
        let paused = conn.state == State::Open && conn.flooded();
        if conn.recv || conn.starved || conn.state == State::Closing || own_busy || paused {
            return Ok(());
        }
        let entry = match receive {
            Receive::Multishot => {
                on_socket!(fixed, key, |fd| opcode::RecvMulti::new(fd, BUF_GROUP)
                    .build())
            }
            Receive::SingleProvided => on_socket!(fixed, key, |fd| opcode::Recv::new(
                fd,
                std::ptr::null_mut(),
                size
            )
            .buf_group(BUF_GROUP)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT)),
            Receive::OwnBuffer => {
                let spill = &mut conn.spill;
                if spill.capacity() - spill.len() < OWN_READ / 4 {
                    spill.reserve(OWN_READ);
                }
                let spare = spill.spare_capacity_mut();
                let (ptr, len) = (spare.as_mut_ptr().cast::<u8>(), spare.len() as u32);
                on_socket!(fixed, key, |fd| opcode::Recv::new(fd, ptr, len).build())
            }
        };
        conn.recv = true;
        // SAFETY: a provided-buffer receive points at the ring's buffers, which outlive the
        // ring; an own-buffer receive points at the spill's spare capacity, which is neither
        // moved nor written while `recv` is set (`own_busy` above keeps the session off it, and
        // nothing else appends to an own-buffer spill).
        unsafe { self.push(entry.user_data(Op::Recv.user_data(key))) }
    }

    pub fn on_recv(&mut self, key: u32, result: i32, flags: u32) -> Result<(), UringError> {
        let bid = cqueue::buffer_select(flags);
        let provided = self.bufs.is_some();
        let Some(conn) = slot(&mut self.conns, key) else {
            self.recycle(bid);
            return Ok(());
        };
        if !cqueue::more(flags) {
            conn.recv = false;
            conn.recv_cancelled = false;
        }
        match conn.state {
            State::Closing => {
                self.recycle(bid);
                return self.maybe_close(key);
            }
            State::Linger(_) => {
                // Draining until the peer's FIN: whatever arrives is dropped.
                self.recycle(bid);
                if result == -libc::ENOBUFS {
                    return self.starve(key);
                }
                if result <= 0 {
                    return self.drop_conn(key);
                }
                return self.ensure_recv(key);
            }
            State::Open => {}
        }
        if result > 0 && provided != bid.is_some() {
            // A completion that does not match how it was asked for: nothing safe to read.
            conn.session.handle_eof();
            self.recycle(bid);
            return self.drop_conn(key);
        }
        match result {
            n if n > 0 => {
                self.counters.add_bytes_in(n as u64);
                match bid {
                    Some(bid) => self.input_provided(key, bid, n as usize)?,
                    None => self.input_own(key, n as usize)?,
                }
            }
            0 => {
                conn.session.handle_eof();
                return self.drop_conn(key);
            }
            e if e == -libc::ENOBUFS => return self.starve(key),
            e if e == -libc::EINTR || e == -libc::EAGAIN || e == -libc::ECANCELED => {}
            _ => {
                conn.session.handle_eof();
                return self.drop_conn(key);
            }
        }
        self.pause_if_flooded(key)?;
        self.ensure_recv(key)?;
        self.rearm(key);
        Ok(())
    }

    /// Cancel `key`'s multishot receive while [`Conn::flooded`]: a multishot receive keeps
    /// completing as bytes arrive, so not re-arming it is not enough to stop reading.
    /// `finish_send` arms it again once the reply is out.
    fn pause_if_flooded(&mut self, key: u32) -> Result<(), UringError> {
        let Some(conn) = slot(&mut self.conns, key) else {
            return Ok(());
        };
        if !(conn.recv && !conn.recv_cancelled && conn.flooded()) {
            return Ok(());
        }
        conn.recv_cancelled = true;
        let entry = opcode::AsyncCancel::new(Op::Recv.user_data(key)).build();
        // SAFETY: a cancel names an operation by its user data and points at no memory.
        unsafe { self.push(entry.user_data(Op::Cancel.user_data(key))) }
    }

    /// The multishot receive ended for want of buffers: re-armed once some come back.
    fn starve(&mut self, key: u32) -> Result<(), UringError> {
        if let Some(conn) = slot(&mut self.conns, key) {
            conn.starved = true;
            self.starved.push(key);
        }
        Ok(())
    }

    /// Give a provided buffer back untouched.
    fn recycle(&mut self, bid: Option<u16>) {
        if let (Some(bid), Some(bufs)) = (bid, self.bufs.as_mut()) {
            let buf = bufs.take(bid, 0);
            bufs.give_back(bid, buf);
        }
    }

    /// `n` bytes arrived in provided buffer `bid`.
    fn input_provided(&mut self, key: u32, bid: u16, n: usize) -> Result<(), UringError> {
        let (Some(bufs), Some(conn)) = (self.bufs.as_mut(), slot(&mut self.conns, key)) else {
            return Ok(());
        };
        let buf = bufs.take(bid, n);
        // A reply sent from a provided buffer holds it until the peer has room for it; peers
        // that stop reading must not starve the ring for everyone: past half the ring, input
        // is copied out and the buffer returned at once.
        let may_lend = self.lent < usize::from(self.features.buffers / 2).max(1);
        if conn.out.is_none() && conn.spill.is_empty() && may_lend {
            // The common case: the session works on the buffer in place.
            self.lent += 1;
            return self.process(key, buf, Held::Provided(bid));
        }
        conn.absorb(&buf);
        bufs.give_back(bid, buf);
        if conn.out.is_none() {
            self.process_spill(key)?;
        }
        Ok(())
    }

    /// `n` bytes arrived in the spare capacity of `key`'s own buffer.
    fn input_own(&mut self, key: u32, n: usize) -> Result<(), UringError> {
        let Some(conn) = slot(&mut self.conns, key) else {
            return Ok(());
        };
        let len = conn.spill.len() + n;
        assert!(
            len <= conn.spill.capacity(),
            "a receive longer than its buffer"
        );
        // SAFETY: the kernel wrote `n` bytes into the spare capacity that `ensure_recv` gave
        // it, starting at the old length, and the spill was not touched in between.
        unsafe { conn.spill.set_len(len) };
        conn.fresh = true;
        if conn.out.is_none() {
            self.process_spill(key)?;
        }
        Ok(())
    }

    fn process_spill(&mut self, key: u32) -> Result<(), UringError> {
        let Some(conn) = slot(&mut self.conns, key) else {
            return Ok(());
        };
        let buf = std::mem::take(&mut conn.spill);
        self.process(key, buf, Held::Spill)
    }

    /// Hand `buf` (all the input not yet consumed) to the session and send its reply.
    fn process(&mut self, key: u32, mut buf: Vec<u8>, held: Held) -> Result<(), UringError> {
        let now = self.now;
        let Some(conn) = slot(&mut self.conns, key) else {
            return Ok(());
        };
        conn.fresh = false;
        let step = if conn.raw {
            raw_echo(buf.len())
        } else {
            conn.session.handle_read(&mut buf, now)
        };
        if let Some(subscription) = &conn.subscription {
            if let Some(frames) = conn.session.take_published() {
                subscription.publish(&frames);
            }
        }
        self.faults.after_read(now, step.messages);
        conn.out = Some(Outgoing::reply(buf, held, &step));
        conn.send_since = now;
        self.push_send(key)
    }

    /// Queue the send of what is left of `key`'s reply, or settle it if nothing is.
    fn push_send(&mut self, key: u32) -> Result<(), UringError> {
        let fixed = self.features.registered_files;
        let Some(out) = slot(&mut self.conns, key).and_then(|conn| conn.out.as_ref()) else {
            return Ok(());
        };
        let remaining = out.remaining();
        if remaining.is_empty() {
            return self.finish_send(key);
        }
        let (ptr, len) = (remaining.as_ptr(), remaining.len() as u32);
        let entry = on_socket!(fixed, key, |fd| opcode::Send::new(fd, ptr, len)
            .flags(libc::MSG_NOSIGNAL)
            .build());
        // SAFETY: the bytes are in `conn.out`, which is neither moved nor written until this
        // send completes (`on_send` takes it then; nothing else touches it while it is set).
        unsafe { self.push(entry.user_data(Op::Send.user_data(key))) }
    }

    pub fn on_send(&mut self, key: u32, result: i32) -> Result<(), UringError> {
        let Some(conn) = slot(&mut self.conns, key) else {
            return Ok(());
        };
        if conn.state == State::Closing || result < 0 {
            if conn.state != State::Closing {
                conn.session.handle_eof();
            }
            self.discard_out(key);
            return self.drop_conn(key);
        }
        let Some(out) = conn.out.as_mut() else {
            return Ok(());
        };
        out.sent += result as usize;
        self.counters.add_bytes_out(result as u64);
        if out.sent < out.end {
            // A short send (a full socket buffer): the rest goes next.
            return self.push_send(key);
        }
        self.finish_send(key)
    }

    /// `key`'s reply is out: keep its unconsumed input, then end the connection if the
    /// session said so, else send what waited and handle what arrived meanwhile.
    fn finish_send(&mut self, key: u32) -> Result<(), UringError> {
        let own = self.features.receive == Receive::OwnBuffer;
        let Some(conn) = slot(&mut self.conns, key) else {
            return Ok(());
        };
        let Some(out) = conn.out.take() else {
            return Ok(());
        };
        let then = out.then;
        if let Some((bid, buf)) = conn.settle(out, own) {
            if let Some(bufs) = self.bufs.as_mut() {
                bufs.give_back(bid, buf);
                self.lent -= 1;
            }
        }
        if let Some(end) = then {
            return self.apply_end(key, end);
        }
        if let Some(control) = conn.queued.take() {
            return self.send_control(key, control);
        }
        if conn.fresh {
            self.process_spill(key)?;
        }
        self.deliver(key)?;
        self.ensure_recv(key)?;
        self.rearm(key);
        Ok(())
    }

    /// Send a ping or close frame made outside the read path, behind any reply in flight.
    pub fn send_control(&mut self, key: u32, control: Control) -> Result<(), UringError> {
        let now = self.now;
        let Some(conn) = slot(&mut self.conns, key) else {
            return Ok(());
        };
        if conn.state != State::Open {
            return Ok(());
        }
        if conn.out.is_some() {
            let queued = conn.queued.get_or_insert_with(Control::default);
            queued.output.extend_from_slice(&control.output);
            queued.end = queued.end.or(control.end);
            return Ok(());
        }
        conn.out = Some(Outgoing::control(control));
        conn.send_since = now;
        self.push_send(key)?;
        self.rearm(key);
        Ok(())
    }

    /// `key`'s last output is sent: end it as its session said. `Close` takes the `Drop` path:
    /// the receive in flight (multishot: always) must complete before the socket is closed.
    fn apply_end(&mut self, key: u32, end: End) -> Result<(), UringError> {
        match end {
            End::Drop | End::Close => self.drop_conn(key),
            End::Linger => self.linger(key),
        }
    }

    /// Our FIN, then discard input until the peer's FIN or the linger's end (RFC 6455 §7.1.1: the
    /// server closes TCP first), so unread input does not turn our close into a reset that
    /// could destroy the close frame or the HTTP answer before the peer reads it.
    fn linger(&mut self, key: u32) -> Result<(), UringError> {
        let now = self.now;
        let Some(conn) = slot(&mut self.conns, key) else {
            return Ok(());
        };
        conn.state = State::Linger(linger_until(now));
        conn.fresh = false;
        conn.shutdowns += 1;
        self.push_shutdown(key, libc::SHUT_WR)?;
        self.ensure_recv(key)?;
        self.rearm(key);
        Ok(())
    }

    /// End `key` now: shut its socket down so that its operations complete, and close it once
    /// none is in flight.
    pub fn drop_conn(&mut self, key: u32) -> Result<(), UringError> {
        let Some(conn) = slot(&mut self.conns, key) else {
            return Ok(());
        };
        conn.state = State::Closing;
        conn.queued = None;
        if !conn.busy() {
            return self.close(key);
        }
        if !conn.shut_both {
            conn.shut_both = true;
            conn.shutdowns += 1;
            self.push_shutdown(key, libc::SHUT_RDWR)?;
        }
        Ok(())
    }

    pub fn on_shutdown(&mut self, key: u32) -> Result<(), UringError> {
        if let Some(conn) = slot(&mut self.conns, key) {
            conn.shutdowns = conn.shutdowns.saturating_sub(1);
        }
        self.maybe_close(key)
    }

    fn maybe_close(&mut self, key: u32) -> Result<(), UringError> {
        match slot(&mut self.conns, key) {
            Some(conn) if conn.state == State::Closing && !conn.busy() => self.close(key),
            _ => Ok(()),
        }
    }

    /// Forget `key`'s connection (its session counts it closed) and close its socket.
    fn close(&mut self, key: u32) -> Result<(), UringError> {
        self.discard_out(key);
        if self.conns[key as usize].take().is_some() {
            self.open -= 1;
        }
        self.push_close(key)
    }

    /// Drop the reply of `key` whose send completed or failed, giving its buffer back.
    fn discard_out(&mut self, key: u32) {
        let Some(conn) = slot(&mut self.conns, key) else {
            return;
        };
        if let Some(out) = conn.out.take() {
            if let (Held::Provided(bid), Some(bufs)) = (out.held, self.bufs.as_mut()) {
                bufs.give_back(bid, out.buf);
                self.lent -= 1;
            }
        }
    }

    /// `key`'s timer fired: its linger ended, its write timed out, or its session has a
    /// deadline due (handshake or idle timeout, heartbeat, the wait for a close answer).
    pub fn on_deadline(&mut self, key: u32) -> Result<(), UringError> {
        let now: Instant = self.now;
        let Some(conn) = slot(&mut self.conns, key) else {
            return Ok(());
        };
        match conn.state {
            State::Closing => {}
            State::Linger(at) => {
                if now >= at {
                    return self.drop_conn(key);
                }
            }
            State::Open => {
                if conn.out.is_some() && now >= conn.send_since + WRITE_TIMEOUT {
                    // A peer that does not read must not hold its connection forever.
                    conn.session.handle_eof();
                    return self.drop_conn(key);
                }
                if !conn.raw && conn.session.next_deadline().is_some_and(|at| now >= at) {
                    let control = conn.session.handle_deadline(now);
                    self.send_control(key, control)?;
                }
            }
        }
        self.rearm(key);
        Ok(())
    }
}

/// `--raw-tcp`: the runtime's floor. Every byte received is sent back as it came, from the
/// same buffer and through the same send path as a WebSocket reply; no message is counted.
fn raw_echo(len: usize) -> Step {
    Step {
        output: 0..len,
        consumed: len,
        need: None,
        messages: 0,
        end: None,
    }
}
