//! One runtime thread: its ring, its connections, its loop.
//!
//! The loop, per iteration: one `io_uring_enter` that submits every operation queued since
//! the last one (all the replies of the previous batch, re-armed receives, closes) and waits
//! for completions or the next timer; then every completion is handled, due timers fire, and
//! the buffers given back are published to the kernel in one store.
//!
//! Memory the kernel may write (provided buffers, a receive's spare capacity) or read (a
//! reply) is never freed or moved while an operation holds it: a connection is dropped only
//! once none of its operations is in flight, after `shutdown(2)` made them complete; if they
//! do not within the drain time at exit, that memory is leaked rather than freed.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue};
use wsport_server_common::counters::Counters;
use wsport_server_common::faults::Faults;
use wsport_server_common::process::{RuntimeThread, Shared};
use wsport_server_common::session::drain_time;
use wsport_server_common::shutdown::POLL_INTERVAL;
use wsport_server_common::{socket, Scheme};

use crate::bufring::BufRing;
use crate::conn::Conn;
use crate::error::UringError;
use crate::fanout::Fanout;
use crate::features::{Features, Receive};
use crate::ring::Ring;
use crate::timers::{Owner, Timers};

/// What a completion is for, in the low byte of its user data; the key (a connection's
/// descriptor or registered slot, or a listener's index) is above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    Accept = 1,
    Recv = 2,
    Send = 3,
    Shutdown = 4,
    Close = 5,
    /// Cancelling a multishot receive (its own completion carries nothing to do).
    Cancel = 6,
    /// `--broadcast`: the eventfd another thread's publish writes (see `fanout`).
    Wake = 7,
}

impl Op {
    fn of(user_data: u64) -> Option<Op> {
        [
            Op::Accept,
            Op::Recv,
            Op::Send,
            Op::Shutdown,
            Op::Close,
            Op::Cancel,
            Op::Wake,
        ]
        .into_iter()
        .find(|op| *op as u64 == user_data & 0xff)
    }

    pub fn user_data(self, key: u32) -> u64 {
        u64::from(key) << 8 | self as u64
    }
}

/// Build an SQE on connection `key`'s socket, named by its registered slot or its descriptor
/// (the opcodes take either type, so each branch is built on its own).
macro_rules! on_socket {
    ($fixed:expr, $key:expr, |$fd:ident| $build:expr) => {
        if $fixed {
            let $fd = io_uring::types::Fixed($key);
            $build
        } else {
            let $fd = io_uring::types::Fd($key as i32);
            $build
        }
    };
}
pub(crate) use on_socket;

/// A listener of this thread.
pub struct Listener {
    pub scheme: Scheme,
    pub socket: TcpListener,
    /// An accept is in flight on it.
    pub armed: bool,
}

pub struct Worker<F> {
    // Field order is drop order: the ring (and its registrations) before the buffers.
    pub ring: Ring,
    pub bufs: Option<BufRing>,
    pub features: Features,
    /// Indexed by key; a key is reused once its connection is closed.
    pub conns: Vec<Option<Conn>>,
    pub open: usize,
    pub listeners: Vec<Listener>,
    pub timers: Timers,
    pub counters: Arc<Counters>,
    pub shared: Arc<Shared>,
    pub faults: F,
    /// Connections whose multishot receive ran out of buffers.
    pub starved: Vec<u32>,
    /// Provided buffers lent to replies in flight (see `io::input_provided`).
    pub lent: usize,
    pub next_id: u64,
    /// The time of the last wake-up: one clock read per iteration.
    pub now: Instant,
    /// Set at shutdown: the instant to stop waiting for connections.
    pub draining: Option<Instant>,
    /// Accepts failed (EMFILE, a full file table): try again at this instant.
    pub accept_retry: Option<Instant>,
    /// `--broadcast`: this thread's side of the hub.
    pub fanout: Option<Fanout>,
}

impl<F: Faults> Worker<F> {
    /// Build the ring and its registrations for `thread`. Must run on the thread that will
    /// drive it (SINGLE_ISSUER).
    pub fn new(thread: RuntimeThread, features: Features, faults: F) -> Result<Self, UringError> {
        let ring = Ring::new(features.defer_taskrun, features.batch_submit)?;
        let submitter = ring.uring.submitter();
        if features.registered_files {
            // One slot per connection this thread may hold; the kernel refuses more than
            // RLIMIT_NOFILE (which the process raised to its hard limit).
            let slots = file_slots(thread.shared.config.max_connections);
            submitter
                .register_files_sparse(slots)
                .map_err(|e| UringError::io("registering the file table", e))?;
        }
        let bufs = match features.receive {
            Receive::OwnBuffer => None,
            Receive::Multishot | Receive::SingleProvided => {
                let bufs = BufRing::new(features.buffers, features.buffer_size);
                bufs.register(&submitter)?;
                Some(bufs)
            }
        };
        let mut listeners = Vec::new();
        for (spec, socket) in thread.listeners {
            // io_uring waits for readiness itself; accepted sockets inherit TCP_NODELAY from
            // the listener (Linux copies it), so registered sockets, which have no descriptor
            // to set it on, get it too.
            socket
                .set_nonblocking(false)
                .map_err(|e| UringError::io("making a listener blocking", e))?;
            socket::configure_stream(&socket)
                .map_err(|e| UringError::io("setting TCP_NODELAY on a listener", e))?;
            listeners.push(Listener {
                scheme: spec.scheme,
                socket,
                armed: false,
            });
        }
        let fanout = match &thread.shared.hub {
            Some(hub) => Some(
                Fanout::new(Arc::clone(hub))
                    .map_err(|e| UringError::io("creating the broadcast eventfd", e))?,
            ),
            None => None,
        };
        Ok(Worker {
            ring,
            bufs,
            features,
            conns: Vec::new(),
            open: 0,
            listeners,
            timers: Timers::default(),
            counters: thread.counters,
            shared: thread.shared,
            faults,
            starved: Vec::new(),
            lent: 0,
            next_id: 0,
            now: Instant::now(),
            draining: None,
            accept_retry: None,
            fanout,
        })
    }

    /// Whether the ring was built with SINGLE_ISSUER | DEFER_TASKRUN.
    pub fn defer_taskrun(&self) -> bool {
        self.ring.defer_taskrun
    }

    /// Serve until shutdown and the drain after it.
    pub fn run(mut self) -> Result<(), UringError> {
        let mut completions: Vec<(u64, i32, u32)> = Vec::with_capacity(1024);
        loop {
            if self.draining.is_none() && self.shared.shutdown.is_requested() {
                self.begin_drain()?;
            }
            if let Some(give_up) = self.draining {
                let accepting = self.listeners.iter().any(|l| l.armed);
                if (self.open == 0 && !accepting) || self.now >= give_up {
                    break;
                }
            } else {
                self.arm_accepts()?;
            }
            self.arm_wake()?;
            let wait = match &self.fanout {
                Some(fanout) if !fanout.may_sleep() => Duration::ZERO,
                _ => self.wait_time(),
            };
            self.ring.submit_and_wait(wait)?;
            if let Some(fanout) = &self.fanout {
                fanout.woke();
            }
            self.now = Instant::now();
            completions.clear();
            completions.extend(
                self.ring
                    .uring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            for &(user_data, result, flags) in &completions {
                self.complete(user_data, result, flags)?;
            }
            self.fire_timers()?;
            self.deliver_ready()?;
            self.refill()?;
        }
        self.exit();
        Ok(())
    }

    /// How long the next wait may last: until the next timer, and never longer than the
    /// shutdown poll (signals arrive on another thread, see `Shutdown`).
    fn wait_time(&self) -> Duration {
        let mut until = self.now + POLL_INTERVAL;
        for at in [self.timers.next(), self.accept_retry]
            .into_iter()
            .flatten()
        {
            until = until.min(at);
        }
        until.saturating_duration_since(Instant::now())
    }

    fn complete(&mut self, user_data: u64, result: i32, flags: u32) -> Result<(), UringError> {
        let key = (user_data >> 8) as u32;
        let more = cqueue::more(flags);
        match Op::of(user_data) {
            Some(Op::Accept) => self.on_accept(key as usize, result, more),
            Some(Op::Recv) => self.on_recv(key, result, flags),
            Some(Op::Send) => self.on_send(key, result),
            Some(Op::Shutdown) => self.on_shutdown(key),
            Some(Op::Wake) => self.on_wake(),
            Some(Op::Close | Op::Cancel) | None => Ok(()),
        }
    }

    /// Fire every due timer (see `timers` for stale entries).
    fn fire_timers(&mut self) -> Result<(), UringError> {
        while let Some((at, owner)) = self.timers.pop_due(self.now) {
            let Some(conn) = slot(&mut self.conns, owner.key) else {
                continue;
            };
            if conn.id != owner.id || conn.alarm.armed() != Some(at) {
                continue;
            }
            conn.alarm.fired();
            self.on_deadline(owner.key)?;
        }
        Ok(())
    }

    /// Publish the buffers given back this iteration, then re-arm the receives that starved.
    fn refill(&mut self) -> Result<(), UringError> {
        let Some(bufs) = self.bufs.as_mut() else {
            return Ok(());
        };
        bufs.publish();
        for key in std::mem::take(&mut self.starved) {
            if let Some(conn) = slot(&mut self.conns, key) {
                conn.starved = false;
            }
            self.ensure_recv(key)?;
        }
        Ok(())
    }

    /// Shutdown: stop accepting, close every connection with 1001 (RFC 6455 §7.4.1) and give
    /// them the drain time to finish.
    fn begin_drain(&mut self) -> Result<(), UringError> {
        self.draining = Some(self.now + drain_time(&self.shared.config));
        for listener in &self.listeners {
            // Completes the accept in flight (EINVAL) and stops listening.
            let _ = socket2::SockRef::from(&listener.socket).shutdown(std::net::Shutdown::Read);
        }
        let keys: Vec<u32> = (0..self.conns.len() as u32)
            .filter(|&key| slot(&mut self.conns, key).is_some())
            .collect();
        for key in keys {
            let now = self.now;
            let Some(conn) = slot(&mut self.conns, key) else {
                continue;
            };
            if conn.raw {
                // No WebSocket to close: the raw floor just ends.
                self.drop_conn(key)?;
                continue;
            }
            let control = conn.session.begin_shutdown(now);
            self.send_control(key, control)?;
        }
        Ok(())
    }

    /// Leave: if the kernel still holds operations, leak what they point at rather than free
    /// it under them.
    fn exit(mut self) {
        // The closes queued by the last iteration.
        let _ = self.ring.uring.submit();
        let in_flight = self.open > 0 || self.listeners.iter().any(|l| l.armed);
        if in_flight {
            std::mem::forget(std::mem::take(&mut self.conns));
            std::mem::forget(self.bufs.take());
        }
    }

    /// Re-arm `key`'s timer for its next deadline, if it must move.
    pub fn rearm(&mut self, key: u32) {
        let Some(conn) = slot(&mut self.conns, key) else {
            return;
        };
        let owner = Owner { key, id: conn.id };
        let at = conn.wake_at();
        self.timers.arm(&mut conn.alarm, at, owner, &self.counters);
    }

    /// Queue `entry`.
    ///
    /// # Safety
    ///
    /// As [`Ring::push`]: what `entry` points at stays put until its completion.
    pub unsafe fn push(&mut self, entry: squeue::Entry) -> Result<(), UringError> {
        // SAFETY: the caller's promise.
        unsafe { self.ring.push(&entry) }
    }

    /// Queue `shutdown(2)` of `key`'s socket (SHUT_WR or SHUT_RDWR).
    pub fn push_shutdown(&mut self, key: u32, how: i32) -> Result<(), UringError> {
        let fixed = self.features.registered_files;
        let entry = on_socket!(fixed, key, |fd| opcode::Shutdown::new(fd, how).build());
        // SAFETY: a shutdown points at no memory.
        unsafe { self.push(entry.user_data(Op::Shutdown.user_data(key))) }
    }

    /// Queue the close of `key`'s socket.
    pub fn push_close(&mut self, key: u32) -> Result<(), UringError> {
        let fixed = self.features.registered_files;
        let entry = on_socket!(fixed, key, |fd| opcode::Close::new(fd).build());
        // SAFETY: a close points at no memory.
        unsafe { self.push(entry.user_data(Op::Close.user_data(key))) }
    }
}

/// The connection under `key`, if any: a free function, so that the rest of the worker stays
/// borrowable beside it.
pub fn slot(conns: &mut [Option<Conn>], key: u32) -> Option<&mut Conn> {
    conns.get_mut(key as usize).and_then(Option::as_mut)
}

/// Registered file slots for `max_connections`, within RLIMIT_NOFILE.
fn file_slots(max_connections: usize) -> u32 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    #[allow(unsafe_code)]
    // SAFETY: getrlimit writes one struct rlimit to the pointer, which points to one.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    let nofile = if ok { limit.rlim_cur } else { 1024 };
    let wanted = max_connections as u64 + 16;
    wanted.min(nofile).min(u64::from(u32::MAX)) as u32
}
