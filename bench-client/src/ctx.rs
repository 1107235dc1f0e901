//! What a connection sees of its worker ([`Ctx`]): the clock, the window, the pacing, the
//! load, the queues the engine drains and the counters; and the small types they are made of.
//! The worker owns one `Ctx` and lends it to each connection call; the connection never sees
//! the worker itself.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;
use rustls::pki_types::ServerName;

use crate::cli::Target;
use crate::error::{BenchError, Cause, ConnError};
use crate::hists::{new_histogram, Hists};

/// wyrand: one multiply per 64 bits. Masking keys (RFC 6455 §5.3) must be unpredictable to
/// the page scripts a browser runs, which a load generator has none of; what matters here is
/// that they vary and cost nothing.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A seed that differs between runs and workers.
    pub fn seeded(worker: usize) -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(worker);
        h.write_u128(Instant::now().elapsed().as_nanos());
        Self(h.finish())
    }

    /// 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    }

    /// A masking key.
    pub fn mask_key(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_ne_bytes()
    }

    /// A `Sec-WebSocket-Key` nonce.
    pub fn bytes16(&mut self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next_u64().to_ne_bytes());
        b[8..].copy_from_slice(&self.next_u64().to_ne_bytes());
        b
    }
}

/// A target as the connections use it.
pub struct TargetRt {
    /// The `Host` header.
    pub host_header: String,
    /// The request target.
    pub path: String,
    /// Where to connect.
    pub addr: std::net::SocketAddr,
    /// wss: the TLS server name.
    pub tls: Option<ServerName<'static>>,
    /// The URL, for messages.
    pub url: String,
}

impl TargetRt {
    /// From a parsed `--url`.
    pub fn new(t: &Target) -> Result<Self, BenchError> {
        Ok(Self {
            host_header: t.host_header(),
            path: t.path.clone(),
            addr: t.addr,
            tls: if t.tls {
                Some(crate::tls::server_name(t.server_name())?)
            } else {
                None
            },
            url: t.url.clone(),
        })
    }
}

/// Counts for a whole run, per worker, summed by the main thread.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// Messages sent, warmup and drain included.
    pub sent: u64,
    /// Echoes received, warmup and drain included.
    pub received: u64,
    /// Echoes received inside the measured window (the histogram's sample count).
    pub measured_messages: u64,
    /// Messages (`connect`: attempts) sent inside the measured window.
    pub measured_sent: u64,
    /// Their payload bytes.
    pub measured_bytes: u64,
    /// Echoes whose payload, length or type differed from the message sent (whole run).
    pub mismatches: u64,
    /// Messages in flight on connections that failed.
    pub lost: u64,
    /// Messages still in flight when the run ended (the drain timed out).
    pub in_flight: u64,
    /// Failures by cause: count and the first one's text.
    pub errors: BTreeMap<Cause, (u64, String)>,
    /// `connect`: the phases of the connections completed in the window.
    pub phases: Option<Box<Phases>>,
    /// How the connections ended (whole run).
    pub endings: crate::endings::Endings,
    /// `broadcast`: what was published and what the subscribers received.
    pub broadcast: crate::broadcast::Totals,
}

/// `connect`: how long each phase of opening a connection took, ns.
#[derive(Debug, Clone)]
pub struct Phases {
    /// From the intended start to TCP connected.
    pub tcp: Histogram<u64>,
    /// From TCP connected to the TLS handshake done (wss).
    pub tls: Histogram<u64>,
    /// From TCP (ws) or TLS (wss) done to the 101 answer.
    pub upgrade: Histogram<u64>,
    /// `--rate`: attempts due in the window that found every slot busy.
    pub late: u64,
    /// Of those, attempts that had not started when the window ended.
    pub not_started: u64,
}

impl Default for Phases {
    fn default() -> Self {
        Self {
            tcp: new_histogram(),
            tls: new_histogram(),
            upgrade: new_histogram(),
            late: 0,
            not_started: 0,
        }
    }
}

impl Totals {
    /// Add another worker's counts.
    pub fn add(&mut self, other: &Totals) {
        self.sent += other.sent;
        self.received += other.received;
        self.measured_messages += other.measured_messages;
        self.measured_sent += other.measured_sent;
        self.measured_bytes += other.measured_bytes;
        self.mismatches += other.mismatches;
        self.lost += other.lost;
        self.in_flight += other.in_flight;
        for (cause, (n, first)) in &other.errors {
            let entry = self
                .errors
                .entry(*cause)
                .or_insert_with(|| (0, first.clone()));
            entry.0 += n;
        }
        self.endings.add(&other.endings);
        self.broadcast.add(&other.broadcast);
        if let Some(theirs) = &other.phases {
            let mine = self.phases.get_or_insert_with(Box::default);
            let _ = mine.tcp.add(&theirs.tcp);
            let _ = mine.tls.add(&theirs.tls);
            let _ = mine.upgrade.add(&theirs.upgrade);
            mine.late += theirs.late;
            mine.not_started += theirs.not_started;
        }
    }

    /// Count a failure under its cause; the first one's text is kept.
    pub fn error(&mut self, e: &ConnError) {
        self.errors
            .entry(e.cause)
            .or_insert_with(|| (0, e.detail.clone()))
            .0 += 1;
    }
}

/// Everything a connection needs from its worker, by concern. Grouping is free: each field
/// is still a fixed offset from the one `&mut Ctx` a connection is handed.
pub struct Ctx {
    /// The time of this batch, ns since the epoch.
    pub now: u64,
    /// The measured window and whether messages may be sent.
    pub window: Window,
    /// How many messages a connection keeps in flight, and when the open loop's are due.
    pub pace: Pace,
    /// What a connection sends and expects back.
    pub load: Load,
    /// Connections the engine must act on at its next turn.
    pub queues: Queues,
    /// What the worker counts and measures.
    pub stats: Stats,
    /// Masking keys, nonces, payloads.
    pub rng: Rng,
    /// The targets.
    pub targets: Arc<[TargetRt]>,
    /// wss configuration, if any target is wss.
    pub tls_config: Option<Arc<rustls::ClientConfig>>,
}

/// The measured window, ns since the epoch.
pub struct Window {
    /// Start of the measured window.
    pub record_from: u64,
    /// End of the measured window.
    pub record_until: u64,
    /// Whether new messages may be sent (false before Go and after the window).
    pub sending: bool,
}

/// The plan's pacing, as a connection applies it.
pub struct Pace {
    /// Cap on messages in flight per connection (the closed loop's depth).
    pub max_in_flight: usize,
    /// Open loop: when messages are due; `None` for the closed loop and the storm.
    pub open_loop: Option<OpenLoop>,
}

/// What the workload exchanges.
pub struct Load {
    /// Payload sizes to cycle through.
    pub sizes: Vec<usize>,
    /// Text frames.
    pub text: bool,
    /// Pings instead of messages (`hold`): the pongs are the answers measured.
    pub ping: bool,
    /// `connect`: connections are the unit; each is closed after its upgrade and reopened.
    pub storm: bool,
    /// `echo --raw`: plain TCP, no upgrade and no frames (a server's `--raw-tcp` floor).
    pub raw: bool,
    /// `broadcast`: the number of publishers (connections `0..n`); the others subscribe.
    pub publishers: Option<usize>,
}

/// Connections by what the worker or the engine must do with them next.
#[derive(Default)]
pub struct Queues {
    /// Open-loop connections that an echo unblocked; the worker puts them back on schedule.
    pub unblocked: Vec<usize>,
    /// Slots whose (next) connection the engine should open now.
    pub reconnect: Vec<usize>,
    /// Connections with bytes to send; the engine drains it every batch.
    pub dirty: Vec<usize>,
    /// Connections that became `Done` since the engine last looked; it closes their sockets.
    pub finished: Vec<usize>,
}

/// The worker's counts: the run's totals and the interval being filled.
pub struct Stats {
    /// Connections that completed the upgrade.
    pub open: usize,
    /// Run totals.
    pub totals: Totals,
    /// The interval being filled.
    pub hists: Hists,
    /// Echoes received in the interval.
    pub iv_messages: u64,
    /// Their payload bytes.
    pub iv_bytes: u64,
    /// Connections that failed in the interval.
    pub iv_errors: u64,
}

impl Ctx {
    /// An echo arrived: account it, and measure it if it arrived inside the window. Latency
    /// counts from the intended send time (the same as the actual one in the closed loop); the
    /// open loop also records it from the actual one, the figure coordinated omission skews.
    pub fn on_echo(&mut self, intended: u64, sent: u64, bytes: usize, ok: bool) {
        self.record(intended, sent, bytes, ok);
    }

    /// `connect`: a connection was upgraded. Its total time is measured like an echo, from
    /// the intended start (and, with `--rate`, from the actual one too); its phases go to their
    /// own histograms, TCP from the actual start.
    pub fn on_connection(&mut self, intended: u64, actual: u64, tcp: u64, tls: Option<u64>) {
        let measured = self.now >= self.window.record_from && self.now < self.window.record_until;
        self.record(intended, actual, 0, true);
        if let (true, Some(p)) = (measured, &mut self.stats.totals.phases) {
            p.tcp.saturating_record(tcp.saturating_sub(actual).max(1));
            let secure = tls.map_or(tcp, |t| {
                p.tls.saturating_record(t.saturating_sub(tcp).max(1));
                t
            });
            p.upgrade
                .saturating_record(self.now.saturating_sub(secure).max(1));
        }
    }

    /// A scheduled message (`connect --rate`: an attempt) due at `intended` was handed to the
    /// kernel at `sent`: the client's own lateness, counted apart from the server's.
    pub fn on_send(&mut self, intended: u64, sent: u64) {
        if sent < self.window.record_until {
            self.stats.hists.record_send(intended, sent);
        }
    }

    /// A message (`connect`: an attempt) goes out now.
    pub fn count_sent(&mut self) {
        self.stats.totals.sent += 1;
        if self.now >= self.window.record_from && self.now < self.window.record_until {
            self.stats.totals.measured_sent += 1;
        }
    }

    fn record(&mut self, intended: u64, sent: u64, bytes: usize, ok: bool) {
        self.stats.totals.received += 1;
        if !ok {
            self.stats.totals.mismatches += 1;
        }
        if self.now >= self.window.record_until {
            return;
        }
        // Warmup echoes go into the (warmup) interval too, for the progress line.
        self.stats.hists.record_answer(self.now, intended, sent);
        self.stats.iv_messages += 1;
        self.stats.iv_bytes += bytes as u64;
        if self.now >= self.window.record_from {
            self.stats.totals.measured_messages += 1;
            self.stats.totals.measured_bytes += bytes as u64;
        }
    }
}

/// Open loop: when each connection's messages are due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenLoop {
    /// Time between two messages of one connection, ns.
    pub interval_ns: u64,
    /// `rate --tick`: messages leave together at the first multiple of this at or after their
    /// turn (ns since the run's epoch, shared by every worker); 0: each at its own turn.
    pub tick_ns: u64,
}

impl OpenLoop {
    /// When a message whose turn is `due` is intended to leave.
    pub fn intended(self, due: u64) -> u64 {
        if self.tick_ns <= 1 {
            due
        } else {
            due.div_ceil(self.tick_ns).saturating_mul(self.tick_ns)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_varies() {
        let mut r = Rng::new(0);
        let a = r.next_u64();
        let b = r.next_u64();
        assert_ne!(a, b);
        assert_ne!(r.mask_key(), r.mask_key());
        assert_ne!(Rng::seeded(0).next_u64(), Rng::seeded(0).next_u64());
    }

    #[test]
    fn a_tick_holds_messages_until_its_end() {
        let spread = OpenLoop {
            interval_ns: 100,
            tick_ns: 0,
        };
        assert_eq!(spread.intended(1_234), 1_234);
        let ticked = OpenLoop {
            interval_ns: 100,
            tick_ns: 1_000,
        };
        assert_eq!(ticked.intended(1), 1_000);
        assert_eq!(ticked.intended(999), 1_000);
        assert_eq!(ticked.intended(1_000), 1_000);
        assert_eq!(ticked.intended(1_001), 2_000);
        assert_eq!(ticked.intended(u64::MAX - 5), u64::MAX);
    }

    #[test]
    fn totals_add_keeps_the_first_error_text() {
        let mut a = Totals::default();
        a.error(&ConnError::new(Cause::Reset, "first"));
        let mut b = Totals::default();
        b.error(&ConnError::new(Cause::Reset, "second"));
        b.error(&ConnError::new(Cause::Eof, "eof"));
        b.sent = 3;
        a.add(&b);
        assert_eq!(a.errors[&Cause::Reset], (2, "first".to_owned()));
        assert_eq!(a.errors[&Cause::Eof].0, 1);
        assert_eq!(a.sent, 3);
    }
}
