//! What every worker does whatever its IO engine: the phases of a run, the clock, the
//! per-second interval histograms, and the messages to and from the main thread.
//!
//! A worker owns its connections and its histogram outright; nothing is shared with other
//! workers while messages flow except one atomic (the end of the window, which Ctrl-C moves).
//! The engine loop is, per batch:
//!
//! ```text
//! loop {
//!     next = worker.poll()?          // phase changes; how long the engine may wait
//!     if next == Exit and nothing in flight { break }
//!     engine: send what Ctx::dirty names, wait for IO (at most `next`)
//!     worker.set_now(clock)          // one clock read per batch; rotates the interval
//!     engine: hand each completion to worker.connected/received/eof/failed
//! }
//! ```
//!
//! Pacing: the closed loop sends on each echo (`Conn::fill` from the echo); the open loop
//! (`rate`, `hold`) keeps a heap of connections by the intended time of their next message and
//! sends what is due in [`Worker::poll`]; the storm (`connect`) reopens a slot when the engine
//! reports its socket closed ([`Worker::closed`]), or, with `--rate`, hands the next attempt
//! due to a free slot.
//!
//! Connections are opened by the engine when the worker names them in `Ctx::reconnect`: all at
//! once, or one by one on the `hold --ramp` schedule.
//!
//! Phases: `Opening` (connect, TLS, upgrade, all within --connect-timeout), then `Ready` is
//! reported and the worker blocks until the main thread says `Go` (so every worker's window
//! starts at the same instant), `Running` (warmup, then the measured window), `Draining` (close
//! handshakes, at most [`DRAIN`]), `Exiting`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::{Pacing, Plan};
use crate::conn::{Conn, Phase, Role};
use crate::ctx::{Ctx, Load, OpenLoop, Pace, Phases, Queues, Rng, Stats, TargetRt, Totals, Window};
use crate::error::{BenchError, ConnError};
use crate::hists::{Hists, Latency};
use crate::report::ConnectRecord;
use crate::wake::WakeMargin;

/// How long the close handshakes may take at the end.
pub const DRAIN: Duration = Duration::from_secs(1);

/// The longest an engine waits without looking at the clock.
const MAX_WAIT: Duration = Duration::from_millis(100);

/// How long an engine waits for the last completions once the worker has exited.
const EXIT_WAIT: Duration = Duration::from_millis(10);

/// `connect --rate` with every slot busy: how soon to look at the schedule again.
const BLOCKED_WAKE_NS: u64 = 1_000_000;

/// `broadcast`: how long after every connection saw its upgrade the first message is
/// published. A server may send the 101 a moment before it counts the connection among the
/// receivers of its broadcasts (another thread's list); a message published in that moment
/// would be missing at a subscriber through no fault of the fan-out itself.
const BROADCAST_SETTLE_NS: u64 = 50_000_000;

/// `broadcast`, draining: how often a worker looks whether its subscribers have everything.
const DRAIN_CHECK_NS: u64 = 10_000_000;

/// Length of one interval of the `.hlog` and of the progress line.
pub const INTERVAL_NS: u64 = 1_000_000_000;

/// One worker's measurements over one interval: `[start_ns, end_ns)` since the run's epoch.
/// Interval `k` starts `k` seconds after the measured window starts; warmup intervals have
/// negative indexes, and the last one of the window is cut at its end.
pub struct Interval {
    /// The worker.
    pub worker: usize,
    /// Seconds from the start of the window.
    pub index: i64,
    /// Start, ns since the epoch.
    pub start_ns: u64,
    /// End, ns since the epoch.
    pub end_ns: u64,
    /// Round-trip latencies of the echoes received in the interval, ns (from the intended and,
    /// scheduled workloads, the actual send time), and the send lag of what was sent in it.
    pub hists: Hists,
    /// Echoes received.
    pub messages: u64,
    /// Their payload bytes.
    pub bytes: u64,
    /// Connections that failed.
    pub errors: u64,
    /// The worker's last interval (the window ended, or all its connections failed).
    pub last: bool,
}

/// Worker to main thread.
pub enum Event {
    /// Every connection of the worker is open; the engine as it runs.
    Ready(usize, String),
    /// The worker could not open its connections (or its engine); the run is off.
    Failed(usize, BenchError),
    /// An interval ended (boxed: its three histograms are large).
    Interval(Box<Interval>),
    /// The worker is done; its totals and which engine ran.
    Finished(usize, Box<Totals>),
}

/// Main thread to a worker that reported `Ready`.
pub enum Go {
    /// Start sending; the window is `[record_from, end)` in ns since the epoch, where the end
    /// is read from [`Control::end_ns`].
    Start {
        /// The instant every worker starts (before the warmup): where schedules shared by
        /// the workers (`connect --rate`) begin.
        start: u64,
        /// Start of the measured window.
        record_from: u64,
    },
    /// Another worker failed, or Ctrl-C: close and exit.
    Abort,
}

/// What the main thread changes while workers run.
pub struct Control {
    /// End of the measured window, ns since the epoch; Ctrl-C brings it forward.
    pub end_ns: AtomicU64,
    /// Stop opening connections (another worker failed, or Ctrl-C during setup).
    pub abort: AtomicBool,
    /// Connections open so far, all workers (progress while opening).
    pub opened: AtomicUsize,
    /// `broadcast`: the publishers' final counts, for the subscribers' drain.
    pub broadcast: crate::broadcast::Shared,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Opening,
    Running,
    Draining,
    Exiting,
    Exited,
}

/// What the engine should do after [`Worker::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait for IO at most until this instant, ns since the run's epoch. A deadline rather than
    /// a length, so that the time the engine spends sending before it waits does not make the
    /// next due message late: the engine turns it into a timeout just before it blocks.
    Until(u64),
    /// Finish what is in flight and return.
    Exit,
}

/// One worker: its connections, context and phase.
pub struct Worker {
    /// Index among the workers.
    pub index: usize,
    /// Shared with the connections.
    pub ctx: Ctx,
    /// The connections, indexed by slot.
    pub conns: Vec<Conn>,
    /// The engine and the features it runs with; set by the engine.
    pub engine: String,
    epoch: Instant,
    state: State,
    events: Sender<Event>,
    go: Receiver<Go>,
    control: Arc<Control>,
    connect_deadline: u64,
    connect_timeout: Duration,
    drain_deadline: u64,
    iv_index: i64,
    iv_start: u64,
    /// Connections `Done`.
    done: usize,
    /// Open loop: connections by the intended time of their next message.
    schedule: BinaryHeap<Reverse<(u64, usize)>>,
    /// Whether a connection is in `schedule` (at most once).
    scheduled: Vec<bool>,
    /// Connections the open loop staggers the first messages over: all of the run's, or
    /// `broadcast`'s publishers (the only ones that send).
    connections: usize,
    /// `broadcast`: how long subscribers may take after the window to receive everything.
    broadcast_drain: Option<Duration>,
    /// `broadcast`, draining: subscribers still receiving, until this instant at the latest.
    subscribers_until: Option<u64>,
    /// `broadcast`, draining: when to look again whether the subscribers have everything.
    next_drain_check: u64,
    /// Worker threads of the run.
    threads: usize,
    /// `hold --ramp`: connections opened per second, all workers together.
    ramp: Option<u64>,
    /// The next slot to open on the ramp.
    to_open: usize,
    /// Connections open already counted in [`Control::opened`].
    opened_reported: usize,
    /// `connect --rate`: attempts per second, all workers together.
    storm_rate: Option<u64>,
    /// `connect --rate`: where the shared schedule starts.
    storm_start: u64,
    /// `connect --rate`: this worker's next attempt (its `j`th is the run's
    /// `index + j * threads`th).
    attempt: u64,
    /// `connect --rate`: slots with no attempt in progress.
    free: Vec<usize>,
    /// `connect --rate`: the next attempt was already counted late.
    late_counted: bool,
    /// Hidden `--debug-wake-late`: wake this long after each message's turn (tests of the
    /// send-lag flag), ns.
    debug_wake_late: u64,
    /// How early to wake before a deadline.
    wake: WakeMargin,
}

impl Worker {
    /// Worker `index` of `plan.threads`, with connections `index, index + threads, ...` (see
    /// [`Plan::connections_of`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        plan: &Plan,
        targets: Arc<[TargetRt]>,
        tls_config: Option<Arc<rustls::ClientConfig>>,
        epoch: Instant,
        events: Sender<Event>,
        go: Receiver<Go>,
        control: Arc<Control>,
    ) -> Result<Self, BenchError> {
        let mut ctx = Ctx {
            now: 0,
            window: Window {
                record_from: u64::MAX,
                record_until: u64::MAX,
                sending: false,
            },
            pace: Pace {
                max_in_flight: match plan.pacing {
                    Pacing::Closed { depth } => depth,
                    Pacing::Open { max_in_flight, .. } => max_in_flight,
                    Pacing::Storm { .. } => 1,
                },
                open_loop: match plan.pacing {
                    Pacing::Closed { .. } | Pacing::Storm { .. } => None,
                    Pacing::Open {
                        interval_ns,
                        tick_ns,
                        ..
                    } => Some(OpenLoop {
                        interval_ns,
                        tick_ns,
                    }),
                },
            },
            load: Load {
                sizes: plan.sizes.clone(),
                text: plan.text,
                ping: plan.ping,
                storm: plan.pacing.is_storm(),
                raw: plan.raw(),
                publishers: plan.broadcast.map(|b| b.publishers),
            },
            queues: Queues::default(),
            stats: Stats {
                open: 0,
                totals: Totals {
                    phases: plan.pacing.is_storm().then(Box::default),
                    ..Totals::default()
                },
                hists: Hists::shaped(plan.as_sent_latency(), plan.pacing.scheduled()),
                iv_messages: 0,
                iv_bytes: 0,
                iv_errors: 0,
            },
            rng: Rng::seeded(index),
            targets,
            tls_config,
        };
        let ids = plan.connections_of(index);
        let mut conns = Vec::with_capacity(ids.len());
        for (slot, id) in ids.into_iter().enumerate() {
            let target = id % plan.targets.len();
            let mut conn = Conn::new(slot, id, target, &mut ctx)
                .map_err(|e| BenchError::Tls(e.to_string()))?;
            conn.source = crate::source::source_of(&plan.source_ips, id, plan.targets.len());
            conns.push(conn);
        }
        let mut worker = Self {
            index,
            ctx,
            conns,
            engine: String::new(),
            epoch,
            state: State::Opening,
            events,
            go,
            control,
            connect_deadline: 0,
            connect_timeout: plan.connect_timeout,
            drain_deadline: 0,
            iv_index: 0,
            iv_start: 0,
            done: 0,
            schedule: BinaryHeap::new(),
            scheduled: Vec::new(),
            connections: plan.broadcast.map_or(plan.connections, |b| b.publishers),
            broadcast_drain: plan.broadcast.map(|b| b.drain),
            subscribers_until: None,
            next_drain_check: 0,
            threads: plan.threads,
            ramp: plan.ramp,
            to_open: 0,
            opened_reported: 0,
            storm_rate: match plan.pacing {
                Pacing::Storm { rate } => rate,
                _ => None,
            },
            storm_start: 0,
            attempt: 0,
            free: Vec::new(),
            late_counted: false,
            debug_wake_late: plan.debug_wake_late.as_nanos() as u64,
            wake: WakeMargin::fixed(Duration::ZERO),
        };
        let now = worker.clock();
        worker.ctx.now = now;
        // On a ramp, each connection has --connect-timeout from its turn.
        let last_turn = match (plan.ramp, worker.conns.last()) {
            (Some(ramp), Some(c)) => ramp_turn(c.id, ramp),
            _ => now,
        };
        worker.connect_deadline = last_turn.max(now) + plan.connect_timeout.as_nanos() as u64;
        // (`connect` opens its connections only once the run starts.)
        if !worker.ctx.load.storm && plan.ramp.is_none() {
            worker.ctx.queues.reconnect.extend(0..worker.conns.len());
            worker.to_open = worker.conns.len();
        }
        Ok(worker)
    }

    /// Nanoseconds since the run's epoch.
    pub fn clock(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// The clock of a new batch. Closes the intervals it passed, so that what the batch
    /// records lands in the interval it happened in.
    pub fn set_now(&mut self, now: u64) {
        self.ctx.now = now;
        if matches!(self.state, State::Running) {
            self.rotate(now);
        }
    }

    // Events for a connection already `Done` (completions still in flight when it ended) are
    // ignored: it has been accounted for.

    /// TCP connect finished for `slot` (`Ok` or an errno).
    pub fn connected(&mut self, slot: usize, result: Result<(), i32>) {
        if self.conns[slot].phase() == Phase::Done {
            return;
        }
        let conn = &mut self.conns[slot];
        let outcome = match result {
            Ok(()) => conn.on_connected(&mut self.ctx),
            Err(errno) => Err(conn.io_error(errno, "connect", &self.ctx)),
        };
        self.settle(slot, outcome);
    }

    /// `n > 0` bytes arrived in `slot`'s receive buffer.
    pub fn received(&mut self, slot: usize, n: usize) {
        if self.conns[slot].phase() == Phase::Done {
            return;
        }
        let outcome = self.conns[slot].on_recv(n, &mut self.ctx);
        self.settle(slot, outcome);
    }

    /// `data` arrived for `slot` in a buffer of the engine's.
    pub fn received_bytes(&mut self, slot: usize, data: &[u8]) {
        if self.conns[slot].phase() == Phase::Done {
            return;
        }
        let outcome = self.conns[slot].on_bytes(data, &mut self.ctx);
        self.settle(slot, outcome);
    }

    /// `slot`'s peer closed TCP.
    pub fn eof(&mut self, slot: usize) {
        if self.conns[slot].phase() == Phase::Done {
            return;
        }
        let outcome = self.conns[slot].on_eof(&mut self.ctx);
        self.settle(slot, outcome);
    }

    /// A socket operation of `slot` failed with `errno`.
    pub fn failed(&mut self, slot: usize, errno: i32, op: &'static str) {
        if self.conns[slot].phase() == Phase::Done {
            return;
        }
        let e = self.conns[slot].io_error(errno, op, &self.ctx);
        self.settle(slot, Err(e));
    }

    /// After any event: count a failure, and hand finished connections to the engine.
    fn settle(&mut self, slot: usize, outcome: Result<(), ConnError>) {
        let slots = self.conns.len() as u64;
        let conn = &mut self.conns[slot];
        if let Err(e) = outcome {
            conn.note_failure(&e);
            conn.fail(&mut self.ctx);
            self.ctx.stats.totals.error(&e);
            self.ctx.stats.iv_errors += 1;
            // Opening, or `connect` before any connection could be opened and once every slot
            // failed: the run is off, with the first failure as the reason.
            let hopeless = self.ctx.load.storm
                && self.ctx.stats.totals.received == 0
                && self.ctx.stats.totals.lost >= slots;
            if self.state == State::Opening || (hopeless && self.state == State::Running) {
                let url = self.ctx.targets[conn.target].url.clone();
                let _ = self.events.send(Event::Failed(
                    self.index,
                    BenchError::Setup {
                        conn: conn.id,
                        url,
                        error: e,
                    },
                ));
                self.ctx.window.sending = false;
                self.close_all();
                self.state = State::Exiting;
            }
        }
        self.hand_over(slot);
    }

    /// A connection that became `Done` goes to the engine's list, once.
    fn hand_over(&mut self, slot: usize) {
        let conn = &mut self.conns[slot];
        if conn.phase() == Phase::Done && conn.take_done() {
            if let Some((ending, life)) = conn.ending(self.ctx.now) {
                self.ctx.stats.totals.endings.record(&ending, life);
            }
            self.ctx.queues.finished.push(slot);
            self.done += 1;
        }
    }

    /// The engine closed `slot`'s socket. `connect` starts the slot's next connection.
    pub fn closed(&mut self, slot: usize) {
        if !(self.ctx.load.storm && self.ctx.window.sending && self.state == State::Running) {
            return;
        }
        // A reset cannot fail for a server name that already worked; if it did, the slot
        // would just stop.
        if self.storm_rate.is_some() {
            // The slot waits for the next attempt due.
            self.free.push(slot);
            self.start_due(self.ctx.now);
            return;
        }
        let now = self.ctx.now;
        if self.conns[slot].reset(now, now, &mut self.ctx).is_ok() {
            self.done -= 1;
            self.ctx.count_sent();
            self.ctx.queues.reconnect.push(slot);
        }
    }

    /// `connect --rate`: start every attempt due by `now` on a free slot; say when the next
    /// one is due (`None`: every slot is busy, and a closing one will start it).
    fn start_due(&mut self, now: u64) -> Option<u64> {
        let rate = self.storm_rate?;
        if !self.ctx.window.sending {
            return None;
        }
        loop {
            let due = self.attempt_due(self.attempt, rate);
            if due > now {
                return Some(due);
            }
            let Some(slot) = self.free.pop() else {
                if !self.late_counted {
                    self.late_counted = true;
                    if self.in_window(due) {
                        if let Some(p) = &mut self.ctx.stats.totals.phases {
                            p.late += 1;
                        }
                    }
                }
                return None;
            };
            let conn = &mut self.conns[slot];
            let started = if conn.phase() == Phase::Connecting {
                // Never used yet.
                conn.start_cycle(due, now);
                true
            } else if conn.reset(due, now, &mut self.ctx).is_ok() {
                self.done -= 1;
                true
            } else {
                false
            };
            if started {
                self.ctx.on_send(due, now);
                self.ctx.count_sent();
                self.ctx.queues.reconnect.push(slot);
            }
            self.attempt += 1;
            self.late_counted = false;
        }
    }

    /// `connect --rate`: when this worker's `j`th attempt is due. Attempt `k` of the run is
    /// due `k / rate` after the start and belongs to worker `k % threads`, so the workers'
    /// schedules interleave into one even one.
    fn attempt_due(&self, j: u64, rate: u64) -> u64 {
        let k = self.index as u128 + u128::from(j) * self.threads as u128;
        self.storm_start
            + (k * 1_000_000_000 / u128::from(rate)).min(u128::from(u64::MAX / 2)) as u64
    }

    fn in_window(&self, t: u64) -> bool {
        t >= self.ctx.window.record_from && t < self.ctx.window.record_until
    }

    /// `hold --ramp`: name every connection whose turn has come; say when the next one's is.
    fn open_due(&mut self, now: u64) -> Option<u64> {
        let ramp = self.ramp?;
        while self.to_open < self.conns.len() {
            let turn = ramp_turn(self.conns[self.to_open].id, ramp);
            if turn > now {
                return Some(turn);
            }
            self.ctx.queues.reconnect.push(self.to_open);
            self.to_open += 1;
        }
        None
    }

    /// Add the connections opened since the last call to the count every worker shares.
    fn report_opened(&mut self) {
        if self.ctx.stats.open > self.opened_reported {
            self.control.opened.fetch_add(
                self.ctx.stats.open - self.opened_reported,
                Ordering::Relaxed,
            );
            self.opened_reported = self.ctx.stats.open;
        }
    }

    /// Phase changes. Blocks while waiting for `Go`.
    pub fn poll(&mut self) -> Next {
        let now = self.ctx.now;
        match self.state {
            State::Opening => {
                self.report_opened();
                if self.control.abort.load(Ordering::Relaxed) {
                    self.close_all();
                    self.state = State::Exiting;
                } else if self.ctx.stats.open == self.conns.len() || self.ctx.load.storm {
                    // (`connect` opens its connections only once the run starts.)
                    self.wait_for_go();
                } else if now >= self.connect_deadline {
                    self.report_timeout();
                    self.close_all();
                    self.state = State::Exiting;
                } else {
                    let mut wake = self.connect_deadline;
                    if let Some(turn) = self.open_due(now) {
                        wake = wake.min(turn);
                    }
                    return self.until(wake);
                }
                self.poll_after_change()
            }
            State::Running => {
                // A fresh clock: handling the last batch took time, and what fell due meanwhile
                // must go out now, not one wait later.
                let now = self.clock();
                self.set_now(now);
                self.ctx.window.record_until = self.control.end_ns.load(Ordering::Relaxed);
                // (`connect` connections are `Done` between two cycles: only time ends it.)
                let all_failed = self.done == self.conns.len() && !self.ctx.load.storm;
                if now >= self.ctx.window.record_until || all_failed {
                    self.end_window(now);
                    return self.poll_after_change();
                }
                let mut wake = self.iv_end();
                match self.pace(now).or_else(|| self.start_due(now)) {
                    Some(due) => wake = wake.min(due),
                    // `connect --rate` with every slot busy: the close that frees one starts
                    // the attempt waiting, but the engine has already chosen its wait by then,
                    // so look again soon for the attempts after it.
                    None if self.storm_rate.is_some() => wake = wake.min(now + BLOCKED_WAKE_NS),
                    None => {}
                }
                self.until(wake)
            }
            State::Draining if self.subscribers_until.is_some() => {
                if self.drain_subscribers(now) {
                    return self.poll_after_change();
                }
                self.until(self.next_drain_check)
            }
            State::Draining => {
                if self.done == self.conns.len() || now >= self.drain_deadline {
                    self.close_all();
                    self.state = State::Exiting;
                    return self.poll_after_change();
                }
                self.until(self.drain_deadline)
            }
            State::Exiting => {
                let totals = self.take_totals();
                let _ = self
                    .events
                    .send(Event::Finished(self.index, Box::new(totals)));
                self.state = State::Exited;
                Next::Exit
            }
            State::Exited => Next::Exit,
        }
    }

    /// Send the totals if [`Self::poll`] has not (the engine stopped early).
    pub fn finish(&mut self) {
        if self.state != State::Exited {
            let totals = self.take_totals();
            let _ = self
                .events
                .send(Event::Finished(self.index, Box::new(totals)));
            self.state = State::Exited;
        }
    }

    /// Open loop: send what is due, and say when to wake for the next message.
    fn pace(&mut self, now: u64) -> Option<u64> {
        self.ctx.pace.open_loop?;
        for slot in std::mem::take(&mut self.ctx.queues.unblocked) {
            self.reschedule(slot);
        }
        while let Some(&Reverse((due, slot))) = self.schedule.peek() {
            // (`--debug-wake-late`: a message is taken up only that long after its turn.)
            if due + self.debug_wake_late > now {
                return Some(due + self.debug_wake_late);
            }
            self.schedule.pop();
            self.scheduled[slot] = false;
            let outcome = self.conns[slot].fill(&mut self.ctx);
            self.settle(slot, outcome);
            // Blocked (max_in_flight) or finished connections leave the schedule; an echo
            // puts a blocked one back through `unblocked`.
            self.reschedule(slot);
        }
        None
    }

    fn reschedule(&mut self, slot: usize) {
        let Some(open) = self.ctx.pace.open_loop else {
            return;
        };
        if let (false, Some(due)) = (self.scheduled[slot], self.conns[slot].next_due()) {
            self.scheduled[slot] = true;
            self.schedule.push(Reverse((open.intended(due), slot)));
        }
    }

    /// Scheduled workloads: measure how late `wait` (the engine's own timed wait, with nothing
    /// to wait for yet) wakes this thread, to wake that much before each send is due. Closed
    /// loops wake on IO and keep a zero margin.
    pub fn calibrate_wake(&mut self, wait: impl FnMut(Duration)) {
        if self.ctx.pace.open_loop.is_some() || self.storm_rate.is_some() {
            self.wake = WakeMargin::calibrate(wait);
        }
    }

    /// Wait until `wake`, but look at the clock at least every [`MAX_WAIT`].
    fn until(&self, wake: u64) -> Next {
        Next::Until(wake.min(self.ctx.now + MAX_WAIT.as_nanos() as u64))
    }

    /// How long an engine may block for `next`, from a clock read now: until the wake-up
    /// margin before the deadline, then zero (poll) until it (see [`WakeMargin`]).
    pub fn timeout(&self, next: Next) -> Duration {
        match next {
            Next::Until(t) => self.wake.timeout(self.clock(), t),
            Next::Exit => EXIT_WAIT,
        }
    }

    fn poll_after_change(&mut self) -> Next {
        match self.state {
            State::Exiting | State::Exited => self.poll(),
            // New work was queued (messages, close frames): look at IO right away.
            _ => Next::Until(0),
        }
    }

    fn wait_for_go(&mut self) {
        let mut engine = self.engine.clone();
        if !self.wake.margin().is_zero() {
            engine.push_str(&format!(
                "; wakes {} before a send is due",
                crate::report::format_ns(self.wake.margin().as_nanos() as u64)
            ));
        }
        let _ = self.events.send(Event::Ready(self.index, engine));
        match self.go.recv() {
            Ok(Go::Start { start, record_from }) => {
                let now = self.clock();
                self.ctx.now = now;
                self.ctx.window.record_from = record_from;
                self.ctx.window.record_until = self.control.end_ns.load(Ordering::Relaxed);
                self.ctx.window.sending = true;
                self.iv_index = self.index_of(now);
                self.iv_start = now;
                self.state = State::Running;
                if self.ctx.load.storm && self.storm_rate.is_some() {
                    self.storm_start = start;
                    self.free = (0..self.conns.len()).rev().collect();
                    self.start_due(now);
                } else if self.ctx.load.storm {
                    for slot in 0..self.conns.len() {
                        self.conns[slot].start_cycle(now, now);
                        self.ctx.count_sent();
                        self.ctx.queues.reconnect.push(slot);
                    }
                }
                if let Some(OpenLoop {
                    interval_ns: interval,
                    ..
                }) = self.ctx.pace.open_loop
                {
                    // Connection `id` of `c` starts `id/c` of an interval late: the total is
                    // evenly spread, not in bursts of `c` messages.
                    self.scheduled = vec![false; self.conns.len()];
                    for slot in 0..self.conns.len() {
                        let id = self.conns[slot].id as u128;
                        let offset = (u128::from(interval) * id / self.connections as u128) as u64;
                        // `hold --ping-interval off`: nothing is ever due, not even a first ping.
                        let first = if interval == crate::cli::NO_PINGS_NS {
                            u64::MAX
                        } else if self.broadcast_drain.is_some() {
                            now + offset + BROADCAST_SETTLE_NS
                        } else {
                            now + offset
                        };
                        self.conns[slot].schedule_from(first);
                        self.reschedule(slot);
                    }
                }
                for slot in 0..self.conns.len() {
                    let outcome = self.conns[slot].fill(&mut self.ctx);
                    self.settle(slot, outcome);
                }
            }
            Ok(Go::Abort) | Err(_) => {
                self.close_all();
                self.state = State::Exiting;
            }
        }
    }

    fn report_timeout(&mut self) {
        let pending: Vec<&Conn> = self
            .conns
            .iter()
            .filter(|c| c.phase() != Phase::Open)
            .collect();
        let Some(first) = pending.first() else { return };
        let error = BenchError::SetupTimeout {
            pending: pending.len(),
            total: self.conns.len(),
            timeout: self.connect_timeout,
            url: self.ctx.targets[first.target].url.clone(),
            phase: first.phase().describe(first.is_tls()),
        };
        let _ = self.events.send(Event::Failed(self.index, error));
    }

    /// Abort every connection (setup failed elsewhere, or Ctrl-C before the start).
    fn close_all(&mut self) {
        for slot in 0..self.conns.len() {
            if self.conns[slot].phase() != Phase::Done {
                self.conns[slot].abandon(&mut self.ctx);
                self.hand_over(slot);
            }
        }
    }

    /// Every connection is `Done` and handed to the engine.
    pub fn all_done(&self) -> bool {
        self.done == self.conns.len()
    }

    /// The window is over (or every connection failed): ship the last interval, stop
    /// sending, start the close handshakes.
    fn end_window(&mut self, now: u64) {
        let end = now.min(self.ctx.window.record_until);
        self.rotate(end);
        self.ship(end, true);
        self.count_not_started(end);
        self.ctx.window.sending = false;
        // Slots that never had an attempt have nothing to close.
        for slot in std::mem::take(&mut self.free) {
            if self.conns[slot].phase() == Phase::Connecting {
                self.conns[slot].retire();
                self.hand_over(slot);
            }
        }
        if let Some(drain) = self.broadcast_drain {
            self.end_publishing(now, drain);
            return;
        }
        for slot in 0..self.conns.len() {
            let outcome = self.conns[slot].start_close(&mut self.ctx);
            self.settle(slot, outcome);
        }
        self.drain_deadline = now + DRAIN.as_nanos() as u64;
        self.state = State::Draining;
    }

    /// `broadcast`, at the window's end: every publisher of this worker says how many it
    /// published in all and closes (its queued messages leave before its close frame); the
    /// subscribers stay open to receive what is still on its way, for `drain` at most.
    fn end_publishing(&mut self, now: u64, drain: Duration) {
        for slot in 0..self.conns.len() {
            let Some((publisher, n)) = self.conns[slot].published() else {
                continue;
            };
            self.control.broadcast.finalize(publisher, n);
            self.ctx.stats.totals.broadcast.set_published(publisher, n);
            let outcome = self.conns[slot].start_close(&mut self.ctx);
            self.settle(slot, outcome);
        }
        let until = now + drain.as_nanos() as u64;
        self.subscribers_until = Some(until);
        self.drain_deadline = until + DRAIN.as_nanos() as u64;
        self.state = State::Draining;
    }

    /// `broadcast`, draining: once every subscriber of this worker has received everything
    /// every publisher published (or the drain is over), close them, and say so; what has not
    /// arrived by then is lost.
    fn drain_subscribers(&mut self, now: u64) -> bool {
        let Some(until) = self.subscribers_until else {
            return false;
        };
        if now < until && now < self.next_drain_check {
            return false;
        }
        // Checking thousands of subscribers after every batch would slow their receiving.
        self.next_drain_check = (now + DRAIN_CHECK_NS).min(until);
        let complete = now >= until
            || self
                .control
                .broadcast
                .final_counts()
                .is_some_and(|published| {
                    self.conns.iter().all(|c| match c.role() {
                        Role::Subscriber(sub) => {
                            c.phase() == Phase::Done || sub.complete(&published)
                        }
                        _ => true,
                    })
                });
        if !complete {
            return false;
        }
        self.subscribers_until = None;
        for slot in 0..self.conns.len() {
            let outcome = self.conns[slot].start_close(&mut self.ctx);
            self.settle(slot, outcome);
        }
        self.drain_deadline = now + DRAIN.as_nanos() as u64;
        true
    }

    /// The worker's totals, with what its subscribers counted (`broadcast`) added.
    fn take_totals(&mut self) -> Totals {
        let mut totals = std::mem::take(&mut self.ctx.stats.totals);
        for conn in &self.conns {
            if let Role::Subscriber(sub) = conn.role() {
                sub.add_to(&mut totals.broadcast);
            }
        }
        totals
    }

    /// `connect --rate`: the attempts due in the window but never started (every slot stayed
    /// busy) are late too.
    fn count_not_started(&mut self, end: u64) {
        let Some(rate) = self.storm_rate else { return };
        let (mut late, mut not_started) = (0, 0);
        let mut j = self.attempt;
        loop {
            let due = self.attempt_due(j, rate);
            if due >= end {
                break;
            }
            if due >= self.ctx.window.record_from {
                not_started += 1;
                late += u64::from(!(j == self.attempt && self.late_counted));
            }
            j += 1;
        }
        if let Some(p) = &mut self.ctx.stats.totals.phases {
            p.late += late;
            p.not_started += not_started;
        }
    }

    fn index_of(&self, t: u64) -> i64 {
        (t as i64 - self.ctx.window.record_from as i64).div_euclid(INTERVAL_NS as i64)
    }

    /// End of the current interval: the next whole second from the window's start, or the
    /// window's end.
    fn iv_end(&self) -> u64 {
        let next = self.ctx.window.record_from as i64 + (self.iv_index + 1) * INTERVAL_NS as i64;
        (next as u64).min(self.ctx.window.record_until)
    }

    /// Ship every interval that ended at or before `now`, except the window's last, which
    /// [`Self::end_window`] ships.
    fn rotate(&mut self, now: u64) {
        loop {
            let end = self.iv_end();
            if now < end || end >= self.ctx.window.record_until {
                return;
            }
            self.ship(end, false);
        }
    }

    fn ship(&mut self, end: u64, last: bool) {
        let hists = self.ctx.stats.hists.take();
        let interval = Interval {
            worker: self.index,
            index: self.iv_index,
            start_ns: self.iv_start,
            end_ns: end,
            hists,
            messages: std::mem::take(&mut self.ctx.stats.iv_messages),
            bytes: std::mem::take(&mut self.ctx.stats.iv_bytes),
            errors: std::mem::take(&mut self.ctx.stats.iv_errors),
            last,
        };
        let _ = self.events.send(Event::Interval(Box::new(interval)));
        self.iv_index += 1;
        self.iv_start = end;
    }
}

/// `hold --ramp`: connection `id` opens `id / ramp` seconds after the run's epoch.
fn ramp_turn(id: usize, ramp: u64) -> u64 {
    (id as u128 * 1_000_000_000 / u128::from(ramp)).min(u128::from(u64::MAX / 2)) as u64
}

impl ConnectRecord {
    /// From the merged phase histograms.
    pub fn of(p: &Phases) -> Self {
        Self {
            tcp_ns: Latency::of(&p.tcp),
            tls_ns: (!p.tls.is_empty()).then(|| Latency::of(&p.tls)),
            upgrade_ns: Latency::of(&p.upgrade),
            late: p.late,
            not_started: p.not_started,
        }
    }
}
