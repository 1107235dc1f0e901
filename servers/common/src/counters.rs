//! What a server counts, and the JSON lines it prints.
//!
//! Each runtime thread owns one [`Counters`] (behind an `Arc`, so the stats printer can read
//! it), and only that thread writes to it: every update is a `Relaxed` add on a cache line no
//! other core writes, so counting costs nothing measurable. [`snapshot`] sums all threads'
//! counters; the sums are not one atomic instant, which is fine for rates and totals.
//!
//! Output (one line each, on stdout; see [`Stats`] for the fields):
//! ```text
//! {"type":"stats","uptime_s":1.234,"connections_open":10,...,"errors":{"handshake_rejected":0,...}}
//! {"type":"final","uptime_s":9.876,...}
//! ```
//!
//! [`ConnectionLimit`] is the one process-wide count (`--max-connections`), touched once per
//! accept and once per close.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Why a connection failed or was refused; each kind has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The upgrade request was refused with an HTTP error (400/401/403/426/431).
    HandshakeRejected,
    /// The peer broke the framing rules; closed with 1002.
    Protocol,
    /// A text message was not UTF-8; closed with 1007.
    InvalidUtf8,
    /// A frame or message exceeded the limits; closed with 1009.
    TooBig,
    /// No complete upgrade request within `--handshake-timeout`.
    HandshakeTimeout,
    /// No traffic within `--idle-timeout`.
    IdleTimeout,
    /// No pong within `--ping-timeout`.
    PingTimeout,
    /// The TLS handshake or record layer failed.
    Tls,
    /// A socket error (reset, broken pipe, ...).
    Io,
    /// Refused at accept because `--max-connections` were open.
    OverCapacity,
    /// `--broadcast`: fell too far behind the publishes; closed with 1008.
    TooSlow,
}

impl ErrorKind {
    /// Every kind, in the order the JSON line lists them.
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::HandshakeRejected,
        ErrorKind::Protocol,
        ErrorKind::InvalidUtf8,
        ErrorKind::TooBig,
        ErrorKind::HandshakeTimeout,
        ErrorKind::IdleTimeout,
        ErrorKind::PingTimeout,
        ErrorKind::Tls,
        ErrorKind::Io,
        ErrorKind::OverCapacity,
        ErrorKind::TooSlow,
    ];

    /// The counter's name, as it appears in the JSON `errors` object.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::HandshakeRejected => "handshake_rejected",
            ErrorKind::Protocol => "protocol",
            ErrorKind::InvalidUtf8 => "invalid_utf8",
            ErrorKind::TooBig => "too_big",
            ErrorKind::HandshakeTimeout => "handshake_timeout",
            ErrorKind::IdleTimeout => "idle_timeout",
            ErrorKind::PingTimeout => "ping_timeout",
            ErrorKind::Tls => "tls",
            ErrorKind::Io => "io",
            ErrorKind::OverCapacity => "over_capacity",
            ErrorKind::TooSlow => "too_slow",
        }
    }
}

/// One runtime thread's counters. All updates are `Relaxed`; only the owning thread writes.
/// The fields are public so a driving loop can also add to them directly.
///
/// Aligned to 128 bytes so two threads' counters, typically allocated back to back by the
/// main thread, never share a cache line (or an adjacent-line prefetch pair).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Counters {
    /// Connections open now (a gauge: +1 on accept, -1 on close).
    pub connections_open: AtomicU64,
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Complete data messages received.
    pub messages_in: AtomicU64,
    /// Complete data messages sent.
    pub messages_out: AtomicU64,
    /// Bytes read from sockets (TLS records and frame headers included).
    pub bytes_in: AtomicU64,
    /// Bytes written to sockets (TLS records and frame headers included).
    pub bytes_out: AtomicU64,
    /// Runtime timers armed or moved for connections (see [`Counters::timer_armed`]).
    pub timer_arms: AtomicU64,
    /// See [`ErrorKind::HandshakeRejected`].
    pub handshake_rejected: AtomicU64,
    /// See [`ErrorKind::Protocol`].
    pub protocol: AtomicU64,
    /// See [`ErrorKind::InvalidUtf8`].
    pub invalid_utf8: AtomicU64,
    /// See [`ErrorKind::TooBig`].
    pub too_big: AtomicU64,
    /// See [`ErrorKind::HandshakeTimeout`].
    pub handshake_timeout: AtomicU64,
    /// See [`ErrorKind::IdleTimeout`].
    pub idle_timeout: AtomicU64,
    /// See [`ErrorKind::PingTimeout`].
    pub ping_timeout: AtomicU64,
    /// See [`ErrorKind::Tls`].
    pub tls: AtomicU64,
    /// See [`ErrorKind::Io`].
    pub io: AtomicU64,
    /// See [`ErrorKind::OverCapacity`].
    pub over_capacity: AtomicU64,
    /// See [`ErrorKind::TooSlow`].
    pub too_slow: AtomicU64,
}

impl Counters {
    /// Fresh counters, all zero, ready to share with the stats printer.
    pub fn new() -> Arc<Counters> {
        Arc::new(Counters::default())
    }

    /// A connection was accepted.
    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Relaxed);
        self.connections_total.fetch_add(1, Relaxed);
    }

    /// A connection this thread accepted has closed.
    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Relaxed);
    }

    /// A complete message was received.
    pub fn message_in(&self) {
        self.messages_in.fetch_add(1, Relaxed);
    }

    /// A complete message was sent.
    pub fn message_out(&self) {
        self.messages_out.fetch_add(1, Relaxed);
    }

    /// `n` messages were received and echoed back: counts each both in and out.
    pub fn add_messages(&self, n: u64) {
        self.messages_in.fetch_add(n, Relaxed);
        self.messages_out.fetch_add(n, Relaxed);
    }

    /// `n` bytes were read from a socket.
    pub fn add_bytes_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Relaxed);
    }

    /// `n` bytes were written to a socket.
    pub fn add_bytes_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Relaxed);
    }

    /// A connection armed a runtime timer, or moved one: a deadline (handshake, idle,
    /// heartbeat, close), a write timeout, or a linger. Each one is a timer-wheel insert the
    /// runtime pays for, so the count shows whether a server pays it per message (it must
    /// not: see `deadline`). The runtime's own 50 ms shutdown poll is not a connection's and
    /// is not counted.
    pub fn timer_armed(&self) {
        self.timer_arms.fetch_add(1, Relaxed);
    }

    /// Counts one error of `kind`.
    pub fn error(&self, kind: ErrorKind) {
        self.error_counter(kind).fetch_add(1, Relaxed);
    }

    fn error_counter(&self, kind: ErrorKind) -> &AtomicU64 {
        match kind {
            ErrorKind::HandshakeRejected => &self.handshake_rejected,
            ErrorKind::Protocol => &self.protocol,
            ErrorKind::InvalidUtf8 => &self.invalid_utf8,
            ErrorKind::TooBig => &self.too_big,
            ErrorKind::HandshakeTimeout => &self.handshake_timeout,
            ErrorKind::IdleTimeout => &self.idle_timeout,
            ErrorKind::PingTimeout => &self.ping_timeout,
            ErrorKind::Tls => &self.tls,
            ErrorKind::Io => &self.io,
            ErrorKind::OverCapacity => &self.over_capacity,
            ErrorKind::TooSlow => &self.too_slow,
        }
    }
}

/// `"stats"` for the periodic lines, `"final"` for the line printed at exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatsKind {
    /// A periodic line (`--stats DUR`).
    Stats,
    /// The line printed once at exit.
    Final,
}

/// The sum of all threads' counters, as printed (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// `"stats"` or `"final"`.
    #[serde(rename = "type")]
    pub kind: StatsKind,
    /// Seconds since the server started counting, to the millisecond.
    pub uptime_s: f64,
    /// Connections open now.
    pub connections_open: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent.
    pub messages_out: u64,
    /// Bytes read from sockets.
    pub bytes_in: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Runtime timers armed for connections ([`Counters::timer_armed`]).
    pub timer_arms: u64,
    /// Errors by kind.
    pub errors: ErrorStats,
}

/// Error counts by kind; the names are [`ErrorKind::as_str`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorStats {
    /// See [`ErrorKind::HandshakeRejected`].
    pub handshake_rejected: u64,
    /// See [`ErrorKind::Protocol`].
    pub protocol: u64,
    /// See [`ErrorKind::InvalidUtf8`].
    pub invalid_utf8: u64,
    /// See [`ErrorKind::TooBig`].
    pub too_big: u64,
    /// See [`ErrorKind::HandshakeTimeout`].
    pub handshake_timeout: u64,
    /// See [`ErrorKind::IdleTimeout`].
    pub idle_timeout: u64,
    /// See [`ErrorKind::PingTimeout`].
    pub ping_timeout: u64,
    /// See [`ErrorKind::Tls`].
    pub tls: u64,
    /// See [`ErrorKind::Io`].
    pub io: u64,
    /// See [`ErrorKind::OverCapacity`].
    pub over_capacity: u64,
    /// See [`ErrorKind::TooSlow`]; absent from lines of servers that predate it.
    #[serde(default)]
    pub too_slow: u64,
}

impl ErrorStats {
    /// The count for one kind.
    pub fn get(&self, kind: ErrorKind) -> u64 {
        match kind {
            ErrorKind::HandshakeRejected => self.handshake_rejected,
            ErrorKind::Protocol => self.protocol,
            ErrorKind::InvalidUtf8 => self.invalid_utf8,
            ErrorKind::TooBig => self.too_big,
            ErrorKind::HandshakeTimeout => self.handshake_timeout,
            ErrorKind::IdleTimeout => self.idle_timeout,
            ErrorKind::PingTimeout => self.ping_timeout,
            ErrorKind::Tls => self.tls,
            ErrorKind::Io => self.io,
            ErrorKind::OverCapacity => self.over_capacity,
            ErrorKind::TooSlow => self.too_slow,
        }
    }

    /// All errors together.
    pub fn total(&self) -> u64 {
        ErrorKind::ALL.iter().map(|&k| self.get(k)).sum()
    }
}

impl Stats {
    /// Sets the line type and the uptime (rounded to the millisecond) measured from `started`.
    pub fn at(mut self, kind: StatsKind, started: Instant) -> Stats {
        self.kind = kind;
        self.uptime_s = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        self
    }

    /// The JSON line, without the newline.
    pub fn to_json_line(&self) -> String {
        // Serializing plain numbers and fixed enum names cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Sums all threads' counters into a `"stats"` line with `uptime_s` 0; set the type and the
/// uptime with [`Stats::at`].
pub fn snapshot(all: &[Arc<Counters>]) -> Stats {
    // Wrapping sums: a gauge may be transiently "negative" on one thread in wrapping
    // arithmetic (never in practice, since a connection closes on the thread that opened it),
    // and the total over threads is still right.
    let sum = |field: fn(&Counters) -> &AtomicU64| {
        all.iter()
            .fold(0u64, |acc, c| acc.wrapping_add(field(c).load(Relaxed)))
    };
    Stats {
        kind: StatsKind::Stats,
        uptime_s: 0.0,
        connections_open: sum(|c| &c.connections_open),
        connections_total: sum(|c| &c.connections_total),
        messages_in: sum(|c| &c.messages_in),
        messages_out: sum(|c| &c.messages_out),
        bytes_in: sum(|c| &c.bytes_in),
        bytes_out: sum(|c| &c.bytes_out),
        timer_arms: sum(|c| &c.timer_arms),
        errors: ErrorStats {
            handshake_rejected: sum(|c| &c.handshake_rejected),
            protocol: sum(|c| &c.protocol),
            invalid_utf8: sum(|c| &c.invalid_utf8),
            too_big: sum(|c| &c.too_big),
            handshake_timeout: sum(|c| &c.handshake_timeout),
            idle_timeout: sum(|c| &c.idle_timeout),
            ping_timeout: sum(|c| &c.ping_timeout),
            tls: sum(|c| &c.tls),
            io: sum(|c| &c.io),
            over_capacity: sum(|c| &c.over_capacity),
            too_slow: sum(|c| &c.too_slow),
        },
    }
}

/// Starts a thread that prints a `"stats"` line to stdout every `interval` (uptime counted
/// from this call) until `stop` is set; it notices `stop` within 50 ms. Join the handle
/// before [`print_final`] so the last lines do not interleave.
pub fn spawn_stats_printer(
    all: Vec<Arc<Counters>>,
    interval: Duration,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    let started = Instant::now();
    let tick = interval
        .min(Duration::from_millis(50))
        .max(Duration::from_millis(1));
    std::thread::Builder::new()
        .name("wsport-stats".to_owned())
        .spawn(move || {
            let mut next = started + interval;
            loop {
                if stop.load(Relaxed) {
                    return;
                }
                let now = Instant::now();
                if now < next {
                    std::thread::sleep(tick.min(next - now));
                    continue;
                }
                print_line(&snapshot(&all).at(StatsKind::Stats, started));
                // Schedule from the plan, not from now, so lines do not drift; skip missed
                // ticks rather than print a burst after a stall.
                while next <= now {
                    next += interval;
                }
            }
        })
}

/// Prints the `"final"` line (uptime measured from `started`) to stdout.
pub fn print_final(all: &[Arc<Counters>], started: Instant) {
    print_line(&snapshot(all).at(StatsKind::Final, started));
}

fn print_line(stats: &Stats) {
    let mut out = io::stdout().lock();
    // A closed stdout must not take the server down (println! would panic on EPIPE).
    let _ = writeln!(out, "{}", stats.to_json_line());
    let _ = out.flush();
}

/// The process-wide cap on open connections (`--max-connections`), shared by all runtime
/// threads. Take a [`ConnectionPermit`] at accept; dropping it frees the slot.
#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    open: Arc<AtomicUsize>,
    max: usize,
}

impl ConnectionLimit {
    /// A limit of `max` connections open at once.
    pub fn new(max: usize) -> ConnectionLimit {
        ConnectionLimit {
            open: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// A permit for one more connection, or `None` when `max` are open (count it as
    /// [`ErrorKind::OverCapacity`] and close the socket).
    #[must_use]
    pub fn try_acquire(&self) -> Option<ConnectionPermit> {
        self.open
            .fetch_update(Relaxed, Relaxed, |n| (n < self.max).then_some(n + 1))
            .ok()
            .map(|_| ConnectionPermit {
                open: Arc::clone(&self.open),
            })
    }

    /// Connections holding a permit now.
    pub fn open(&self) -> usize {
        self.open.load(Relaxed)
    }
}

/// One slot of a [`ConnectionLimit`]; freed on drop.
#[derive(Debug)]
pub struct ConnectionPermit {
    open: Arc<AtomicUsize>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_refuses_past_max_and_frees_on_drop() {
        let limit = ConnectionLimit::new(2);
        let a = limit.try_acquire().expect("first");
        let _b = limit.try_acquire().expect("second");
        assert!(limit.try_acquire().is_none());
        drop(a);
        assert_eq!(limit.open(), 1);
        assert!(limit.try_acquire().is_some());
    }

    #[test]
    fn printer_stops_promptly() {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = spawn_stats_printer(
            vec![Counters::new()],
            Duration::from_secs(3600),
            stop.clone(),
        )
        .expect("spawn");
        stop.store(true, Relaxed);
        let t = Instant::now();
        handle.join().expect("join");
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
