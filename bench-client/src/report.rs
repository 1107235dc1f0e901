//! The result of a run: the JSON document (schema `wsport-bench/1`, documented in the crate
//! README) and the human summary, which is the `Display` of the same [`Report`].

use std::collections::BTreeMap;
use std::fmt;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::error::OutputError;
use crate::meta::Meta;

pub use crate::hists::Latency;
pub use wsport_bench_record::format_ns;
use wsport_bench_record::thousands;

/// The schema name and version; bumped on any incompatible change to the JSON.
pub const SCHEMA: &str = "wsport-bench/1";

/// `hold --ping-interval off` in the plan and its record: the first ping is due so far ahead
/// (~146 years) that none is ever sent, while the open-loop schedule stays the same code.
pub const NO_PINGS_NS: u64 = u64::MAX / 4;

/// Everything a run produced.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// e.g. `echo-64B-100c-1t-ws-9001`.
    pub scenario: String,
    /// The workload: `echo`.
    pub workload: &'static str,
    /// Wall-clock start of the measured window, seconds since the Unix epoch.
    pub started_unix_s: f64,
    /// Why the run ended.
    pub ended_by: EndedBy,
    /// Host and software.
    pub meta: Meta,
    /// The command line as typed (empty for in-process runs).
    pub argv: Vec<String>,
    /// Every option, defaults included.
    pub flags: serde_json::Value,
    /// What ran: engine, threads, pinning, targets.
    pub setup: Setup,
    /// The numbers.
    pub results: Results,
    /// Per-second figures of the measured window.
    pub intervals: Vec<IntervalSummary>,
    /// Things the reader must know (the client was the bottleneck, mismatches, ...).
    pub warnings: Vec<String>,
    /// The full latency histogram of the measured window (from intended send times).
    pub histogram: HistogramRecord,
    /// `rate`: the same from actual send times; `null` for `echo`.
    pub histogram_uncorrected: Option<HistogramRecord>,
    /// Scheduled workloads: the histogram of `send_lag_ns`, same encoding.
    pub histogram_send_lag: Option<HistogramRecord>,
    /// `rate --slo`: the search, its trials and its answer; `null` otherwise.
    pub slo: Option<crate::slo_record::SloRecord>,
    /// The histograms themselves, for callers in-process.
    #[serde(skip)]
    pub hists: crate::hists::Hists,
    /// Output files that could not be written; the report itself is intact.
    #[serde(skip)]
    pub output_errors: Vec<OutputError>,
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndedBy {
    /// The window ran its --duration.
    Duration,
    /// Ctrl-C (or SIGTERM): the window was cut short.
    Interrupted,
    /// Every connection failed before the window ended.
    ConnectionsFailed,
}

/// What ran.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    /// e.g. `io_uring (batched, defer_taskrun)` or `epoll`.
    pub engine: String,
    /// Why io_uring was not used under `--engine auto`, if it was not.
    pub engine_fallback: Option<String>,
    /// Worker threads.
    pub threads: usize,
    /// CPU of each worker; `null` when not pinned.
    pub pinning: Option<Vec<usize>>,
    /// The soft RLIMIT_NOFILE after raising it.
    pub nofile_limit: u64,
    /// Connections in total.
    pub connections: usize,
    /// Each target and its number of connections.
    pub targets: Vec<TargetRecord>,
    /// Closed or open loop and its parameters.
    pub pacing: PacingRecord,
    /// Payload sizes, bytes.
    pub sizes: Vec<usize>,
    /// `text` or `binary`.
    pub message_type: &'static str,
    /// Warmup, seconds.
    pub warmup_s: f64,
    /// Asked-for window, seconds.
    pub duration_s: f64,
    /// `--source-ip`: the local addresses connections bind to, round-robin; empty when the
    /// kernel chooses.
    pub source_ips: Vec<std::net::IpAddr>,
    /// `hold --ramp`: connections opened per second; `null`: all at once.
    pub ramp_per_sec: Option<u64>,
    /// `hold --max`: every limit read and the one that set `connections`; `null` otherwise.
    pub max: Option<crate::maxconn::MaxPlan>,
}

/// How messages were paced.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "loop", rename_all = "snake_case")]
pub enum PacingRecord {
    /// `echo`.
    Closed {
        /// Messages in flight per connection.
        depth: usize,
    },
    /// `connect`: each slot opens, upgrades and closes connections one after another.
    Storm {
        /// `--rate`: attempts started per second on schedule; `null`: as fast as slots free.
        rate: Option<u64>,
    },
    /// `rate`, `hold`.
    Open {
        /// Target messages per second, all connections.
        rate: u64,
        /// Time between two messages of one connection, ns.
        interval_ns: u64,
        /// Cap on unanswered messages per connection.
        max_in_flight: usize,
        /// `rate --tick`, ns: messages due within a tick leave together; 0: each at its turn.
        tick_ns: u64,
    },
}

/// A target.
#[derive(Debug, Clone, Serialize)]
pub struct TargetRecord {
    /// As given.
    pub url: String,
    /// Its connections.
    pub connections: usize,
}

/// The numbers of the measured window (and the whole-run counts).
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// Length of the measured window actually run, seconds.
    pub window_s: f64,
    /// Echoes received in the window (= the histogram's count).
    pub messages: u64,
    /// `messages / window_s`.
    pub msgs_per_sec: f64,
    /// Payload bytes echoed per second, each direction.
    pub payload_bytes_per_sec: f64,
    /// Messages (`connect`: connection attempts) actually sent in the window, per second.
    pub sent_per_sec: f64,
    /// Seconds from the start until every connection was open (`hold --ramp`: the ramp);
    /// `connect`: 0.
    pub opening_s: f64,
    /// `broadcast`: what was published, what arrived, and whether all of it did in order.
    pub broadcast: Option<crate::broadcast::Record>,
    /// Round-trip latency of the window's echoes (`rate`: from the intended send times).
    pub latency_ns: Latency,
    /// `rate`: latency from the actual send times, which hides the time messages waited to be
    /// sent; `null` for `echo`.
    pub latency_uncorrected_ns: Option<Latency>,
    /// Scheduled workloads (`rate`, `hold`, `connect --rate`): how late the client handed each
    /// message (attempt) to the kernel, actual − intended send time; `null` otherwise.
    pub send_lag_ns: Option<Latency>,
    /// The send lag's p99 exceeded [`crate::SEND_LAG_LIMIT_NS`]: the corrected latency is
    /// partly the client's (see warnings).
    pub send_lag_exceeded: bool,
    /// Whole run (warmup and close included): messages sent.
    pub sent: u64,
    /// Whole run: echoes received. `sent = received + in_flight + lost`.
    pub received: u64,
    /// Messages whose echo had not come back when the run ended.
    pub in_flight: u64,
    /// Messages in flight on connections that failed.
    pub lost: u64,
    /// Echoes that differed from what was sent (payload, length or type).
    pub mismatches: u64,
    /// Connection failures by cause.
    pub errors: BTreeMap<String, ErrorRecord>,
    /// The server's CPU and memory over the window (`--server-pid`).
    pub server: Option<ProcessRecord>,
    /// The server's VmRSS before the first connection was opened (`--server-pid`).
    pub server_rss_before_connecting_bytes: Option<u64>,
    /// (RSS at the window's start - RSS before connecting) / connections: what each open
    /// connection costs the server in memory (`--server-pid`).
    pub server_memory_per_connection_bytes: Option<f64>,
    /// What the open connections cost the kernel (socket buffers and socket objects), from
    /// before the first one opened to the window's start ([`crate::kernel_mem`]); `null` for
    /// `connect`.
    pub kernel_memory: Option<crate::kernel_mem::KernelMemory>,
    /// wsport-bench's own CPU and memory over the window.
    pub client: Option<ProcessRecord>,
    /// Whether the client looks like the limit (see warnings).
    pub client_bottleneck: bool,
    /// `connect`: the phases of opening a connection; `latency_ns` is their total (from the
    /// intended start of the connect to the 101 answer).
    pub connect: Option<ConnectRecord>,
    /// How the connections ended, by ending, with their life after the upgrade.
    pub endings: crate::endings::EndingsRecord,
    /// `--proxy-pid`: a proxy in front of the server (nginx), measured like the server.
    pub proxy: Option<ProcessRecord>,
    /// How far apart the server's core and the client's were, before and after
    /// ([`crate::core_rtt`]); `null` unless both are pinned, each to its own CPU.
    pub core_rtt: Option<crate::core_rtt::CoreRtt>,
}

/// `connect`: time to open a connection, phase by phase, ns.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectRecord {
    /// TCP connect.
    pub tcp_ns: Latency,
    /// TLS handshake (wss targets only; `null` when there are none).
    pub tls_ns: Option<Latency>,
    /// Upgrade request to 101 answer.
    pub upgrade_ns: Latency,
    /// `--rate`: attempts due in the window that found all -c slots busy, so started late
    /// (or never).
    pub late: u64,
    /// Of those, attempts due in the window that had not started when it ended.
    pub not_started: u64,
}

/// Failures of one cause.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorRecord {
    /// How many connections.
    pub count: u64,
    /// What the first one said.
    pub first: String,
}

/// CPU and memory of a process over the measured window.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessRecord {
    /// The process.
    pub pid: u32,
    /// CPU time (user + system) in the window, seconds.
    pub cpu_s: f64,
    /// `cpu_s / window`, in percent of one core (200 = two cores busy).
    pub cpu_percent: f64,
    /// CPU time per echoed message, microseconds.
    pub cpu_us_per_msg: f64,
    /// The user-space part of `cpu_us_per_msg`; the rest is the kernel's, which includes the
    /// network stack's softirq work done in the process's context (on loopback, delivering
    /// its sends into the peer's socket).
    pub user_us_per_msg: f64,
    /// The same from schedstat (ns resolution), when available (server only).
    pub sched_cpu_us_per_msg: Option<f64>,
    /// Resident memory at the window's start, bytes (server: VmRSS; client: peak RSS).
    pub rss_start_bytes: Option<u64>,
    /// Resident memory at the window's end.
    pub rss_end_bytes: Option<u64>,
    /// Cores the process could use (client: its worker threads).
    pub cores: Option<usize>,
    /// System calls per message, counted over the warmup's last second (absent with
    /// `--no-syscalls`, or for the server without `--server-pid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<SyscallsRecord>,
}

/// A process's system calls over the window, or why they could not be counted.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum SyscallsRecord {
    /// Counted from outside the process (perf_event_open on the syscall tracepoints).
    Counted(CallFigures),
    /// Not counted on this host: `{"unavailable": "why, and what to change"}`.
    Unavailable {
        /// One line: why, and how to allow it.
        unavailable: String,
    },
}

/// System calls of one process over the window.
#[derive(Debug, Clone, Serialize)]
pub struct CallFigures {
    /// Calls by kind: `io_uring_enter`, `epoll_wait` (+ `epoll_pwait`, `epoll_pwait2`), `recv`
    /// (`recvfrom`, `recvmsg`, `read`, `readv`), `send` (`sendto`, `sendmsg`, `write`,
    /// `writev`), `other`.
    pub calls: BTreeMap<String, u64>,
    /// Every call.
    pub total: u64,
    /// `total` per message.
    pub per_msg: f64,
    /// Each kind of `calls` per message.
    pub per_msg_by_call: BTreeMap<String, f64>,
    /// Messages per wait: messages ÷ (`epoll_wait` + `io_uring_enter`); absent without waits.
    pub msgs_per_wait: Option<f64>,
    /// Messages (echoes, pongs, handshakes) in the counted second.
    pub messages: u64,
    /// How long the counting lasted: the warmup's last second (counting slows every system
    /// call, so it stays out of the measured window).
    pub counted_s: f64,
}

/// One second of the window.
#[derive(Debug, Clone, Serialize)]
pub struct IntervalSummary {
    /// Seconds from the window's start.
    pub t: f64,
    /// Length, seconds.
    pub length_s: f64,
    /// Echoes.
    pub messages: u64,
    /// Echoes per second.
    pub msgs_per_sec: f64,
    /// Median latency, ns.
    pub p50_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
    /// Max, ns.
    pub max_ns: u64,
    /// Connections that failed.
    pub errors: u64,
}

/// The histogram in the JSON.
#[derive(Debug, Clone, Serialize)]
pub struct HistogramRecord {
    /// `ns`.
    pub unit: &'static str,
    /// How `data` is encoded.
    pub encoding: &'static str,
    /// Lowest discernible value.
    pub lowest: u64,
    /// Highest trackable value.
    pub highest: u64,
    /// Significant digits.
    pub significant_digits: u8,
    /// The histogram.
    pub data: String,
}

impl HistogramRecord {
    /// Encode `h`.
    pub fn of(h: &Histogram<u64>) -> Self {
        Self {
            unit: "ns",
            encoding: "HdrHistogram V2 compressed (deflate), base64: the format of an .hlog line",
            lowest: h.low(),
            highest: h.high(),
            significant_digits: h.sigfig(),
            data: crate::hlog::encode_histogram(h),
        }
    }
}

fn format_bytes(b: u64) -> String {
    let f = b as f64;
    if b >= 1 << 30 {
        format!("{:.1} GiB", f / (1u64 << 30) as f64)
    } else if b >= 1 << 20 {
        format!("{:.1} MiB", f / (1u64 << 20) as f64)
    } else {
        format!("{:.0} KiB", f / 1024.0)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_setup(f)?;
        self.write_volume(f)?;
        self.write_latency(f)?;
        self.write_checks(f)?;
        self.write_costs(f)?;
        let r = &self.results;
        match &r.broadcast {
            Some(b) => write_broadcast_counts(f, b)?,
            None => writeln!(
                f,
                "  counts     sent {} = received {} + in flight {} + lost {}",
                thousands(r.sent),
                thousands(r.received),
                thousands(r.in_flight),
                thousands(r.lost)
            )?,
        }
        for w in &self.warnings {
            writeln!(f, "WARNING: {w}")?;
        }
        if let Some(slo) = &self.slo {
            write!(f, "{slo}")?;
        }
        Ok(())
    }
}

/// `broadcast`: the whole run's counts, which add up as published × subscribers = delivered +
/// lost.
fn write_broadcast_counts(f: &mut fmt::Formatter<'_>, b: &crate::broadcast::Record) -> fmt::Result {
    writeln!(
        f,
        "  counts     published {} x {} subscribers = {} expected = delivered {} + lost {}; duplicated {}, reordered {}, malformed {}",
        thousands(b.published),
        thousands(b.subscribers as u64),
        thousands(b.expected_deliveries),
        thousands(b.delivered),
        thousands(b.lost),
        thousands(b.duplicates),
        thousands(b.reordered),
        thousands(b.malformed)
    )
}

/// The summary's sections, in the order printed.
impl Report {
    /// What ran: scenario, engine, targets, window.
    fn write_setup(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.results;
        let s = &self.setup;
        let pin = match &s.pinning {
            Some(cpus) => format!(
                ", pinned to CPU {}",
                wsport_server_common::cli::format_cpu_list(cpus)
            ),
            None => String::new(),
        };
        let threads = if s.threads == 1 {
            "1 thread".to_owned()
        } else {
            format!("{} threads", s.threads)
        };
        writeln!(f, "wsport-bench {}", self.scenario)?;
        writeln!(f, "  engine     {}, {threads}{pin}", s.engine)?;
        if let Some(why) = &s.engine_fallback {
            writeln!(f, "             (io_uring unavailable: {why})")?;
        }
        for t in &s.targets {
            writeln!(f, "  target     {} x {}", t.url, t.connections)?;
        }
        let ended = match self.ended_by {
            EndedBy::Duration => "",
            EndedBy::Interrupted => ", cut short by Ctrl-C",
            EndedBy::ConnectionsFailed => ", cut short: every connection failed",
        };
        writeln!(
            f,
            "  window     {:.2} s after {:.1} s warmup{ended}",
            r.window_s, s.warmup_s
        )?;
        Ok(())
    }

    /// How much: messages, pacing, ramp, source addresses.
    fn write_volume(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.results;
        let s = &self.setup;
        if self.workload == "hold" {
            writeln!(
                f,
                "  pongs      {} answered pings: {:.0} per second",
                thousands(r.messages),
                r.msgs_per_sec
            )?;
        } else if self.workload == "connect" {
            writeln!(
                f,
                "  opened     {} connections: {:.0} per second",
                thousands(r.messages),
                r.msgs_per_sec
            )?;
        } else if let Some(b) = &r.broadcast {
            writeln!(
                f,
                "  deliveries {} in the window: {} deliveries/s to {} subscribers; {} published/s by {} publisher(s) (target {})",
                thousands(r.messages),
                thousands(r.msgs_per_sec.round() as u64),
                thousands(b.subscribers as u64),
                thousands(r.sent_per_sec.round() as u64),
                b.publishers,
                thousands(b.publish_rate)
            )?;
        } else {
            writeln!(
                f,
                "  messages   {} echoed: {} msgs/s, {:.1} MB/s payload each way",
                thousands(r.messages),
                thousands(r.msgs_per_sec.round() as u64),
                r.payload_bytes_per_sec / 1e6
            )?;
        }
        match s.pacing {
            PacingRecord::Open { interval_ns, .. }
                if self.workload == "hold" && interval_ns == NO_PINGS_NS =>
            {
                writeln!(f, "  pings      none (--ping-interval off)")?;
            }
            PacingRecord::Open { interval_ns, .. } if self.workload == "hold" => {
                writeln!(
                    f,
                    "  pings      one every {} per connection",
                    format_ns(interval_ns)
                )?;
            }
            PacingRecord::Open {
                rate,
                max_in_flight,
                ..
            } => {
                writeln!(f, "  rate       target {} msgs/s, at most {max_in_flight} in flight per connection", thousands(rate))?;
            }
            PacingRecord::Storm { rate: Some(rate) } => {
                let late = r.connect.as_ref().map_or(0, |c| c.late);
                let not_started = r.connect.as_ref().map_or(0, |c| c.not_started);
                writeln!(
                    f,
                    "  rate       target {} attempts/s, started {:.0}/s; {} late (every slot busy), {} of them never started",
                    thousands(rate),
                    r.sent_per_sec,
                    thousands(late),
                    thousands(not_started)
                )?;
            }
            PacingRecord::Closed { .. } | PacingRecord::Storm { rate: None } => {}
        }
        if let Some(max) = &s.max {
            writeln!(f, "  max        {max}")?;
        }
        if let Some(ramp) = s.ramp_per_sec {
            writeln!(
                f,
                "  ramp       {} connections at {} per second: all open after {:.2} s",
                thousands(s.connections as u64),
                thousands(ramp),
                r.opening_s
            )?;
        }
        if !s.source_ips.is_empty() {
            let first = s.source_ips[0];
            let last = s.source_ips[s.source_ips.len() - 1];
            writeln!(
                f,
                "  source     {} addresses ({first} .. {last}), round-robin",
                s.source_ips.len()
            )?;
        }
        Ok(())
    }

    /// Latency, the connect phases and the send lag.
    fn write_latency(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.results;
        if let Some(c) = &r.connect {
            latency_line(f, "tcp", &c.tcp_ns)?;
            if let Some(tls) = &c.tls_ns {
                latency_line(f, "tls", tls)?;
            }
            latency_line(f, "upgrade", &c.upgrade_ns)?;
        }
        latency_line(
            f,
            if r.connect.is_some() {
                "total"
            } else {
                "latency"
            },
            &r.latency_ns,
        )?;
        if let Some(u) = &r.latency_uncorrected_ns {
            if r.connect.is_some() {
                latency_line(f, "as started", u)?;
                writeln!(
                    f,
                    "             (total: from each attempt's intended start, coordinated-omission \
                     corrected; as started: from its actual start, which hides waits for a slot)"
                )?;
            } else {
                latency_line(f, "as sent", u)?;
                writeln!(
                    f,
                    "             (latency: from each message's intended send time, coordinated-omission \
                     corrected; as sent: from its actual send time, which hides waits to send)"
                )?;
            }
        }
        if let Some(lag) = &r.send_lag_ns {
            latency_line(f, "send lag", lag)?;
            let verdict = if r.send_lag_exceeded {
                "OVER the limit: the latency above is partly the client's"
            } else {
                "within the limit"
            };
            writeln!(
                f,
                "             (how late the client itself sent, actual − intended; p99 {verdict} of {})",
                format_ns(crate::SEND_LAG_LIMIT_NS)
            )?;
        }
        Ok(())
    }

    /// Whether the answers matched, and the errors.
    fn write_checks(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.results;
        let answers = if self.workload == "hold" {
            "pong"
        } else {
            "echo"
        };
        if let Some(b) = &r.broadcast {
            if b.ok {
                writeln!(
                    f,
                    "  verified   every subscriber got every message, in order, once"
                )?;
            } else {
                writeln!(
                    f,
                    "  verified   BROADCAST FAILED: {}",
                    b.failures.join("; ")
                )?;
            }
        } else if self.workload == "connect" {
            // Nothing is echoed.
        } else if r.mismatches == 0 {
            writeln!(f, "  verified   every {answers} matched what was sent")?;
        } else {
            writeln!(
                f,
                "  verified   {} {}S DID NOT MATCH what was sent",
                thousands(r.mismatches),
                answers.to_uppercase()
            )?;
        }
        if r.errors.is_empty() {
            writeln!(f, "  errors     none")?;
        } else {
            for (cause, e) in &r.errors {
                writeln!(
                    f,
                    "  errors     {cause}: {} connection(s); first: {}",
                    e.count, e.first
                )?;
            }
        }
        Ok(())
    }

    /// CPU, system calls and memory of the server and the client.
    fn write_costs(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.results;
        let s = &self.setup;
        let unit = match self.workload {
            "connect" => "connection",
            "hold" => "ping",
            "broadcast" => "delivery",
            _ => "message",
        };
        writeln!(f, "  endings    {}", r.endings.line())?;
        if let Some(p) = &r.server {
            process_line(f, "server", unit, p)?;
        }
        if let Some(p) = &r.proxy {
            process_line(f, "proxy", unit, p)?;
        }
        if let (Some(per), Some(before)) = (
            r.server_memory_per_connection_bytes,
            r.server_rss_before_connecting_bytes,
        ) {
            let open = r
                .server
                .as_ref()
                .and_then(|p| p.rss_start_bytes)
                .unwrap_or(before);
            writeln!(
                f,
                "  memory     server RSS {:.1} KiB per connection ({} before connecting, {} with {} open)",
                per / 1024.0,
                format_bytes(before),
                format_bytes(open),
                thousands(s.connections as u64)
            )?;
        }
        if let Some(k) = &r.kernel_memory {
            writeln!(f, "  kernel     {k}")?;
        }
        if let Some(p) = &r.client {
            process_line(f, "client", unit, p)?;
        }
        if let Some(c) = &r.core_rtt {
            let ns = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.0} ns"));
            writeln!(
                f,
                "  cores      a cache line's round trip, server CPU {} <-> client CPU {}: {} before, {} after",
                c.server_cpu,
                c.client_cpu,
                ns(c.before_ns),
                ns(c.after_ns)
            )?;
        }
        Ok(())
    }
}

/// `  latency    p50 ...  max ...`
fn latency_line(f: &mut fmt::Formatter<'_>, name: &str, l: &Latency) -> fmt::Result {
    writeln!(
        f,
        "  {name:<10} p50 {}  p90 {}  p99 {}  p99.9 {}  p99.99 {}  max {}",
        format_ns(l.p50),
        format_ns(l.p90),
        format_ns(l.p99),
        format_ns(l.p99_9),
        format_ns(l.p99_99),
        format_ns(l.max)
    )
}

/// `  server     pid ...: CPU, CPU per unit, RSS`, and its system calls.
/// `message` -> `messages`, `delivery` -> `deliveries`.
fn plural(unit: &str) -> String {
    match unit.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{unit}s"),
    }
}

fn process_line(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    unit: &str,
    p: &ProcessRecord,
) -> fmt::Result {
    let cores = match p.cores {
        Some(1) => " of 1 core".to_owned(),
        Some(n) => format!(" of {n} cores"),
        None => String::new(),
    };
    let rss = match (p.rss_start_bytes, p.rss_end_bytes) {
        (Some(a), Some(b)) if name == "server" => {
            format!(", RSS {} -> {}", format_bytes(a), format_bytes(b))
        }
        (_, Some(b)) => format!(", max RSS {}", format_bytes(b)),
        _ => String::new(),
    };
    writeln!(
        f,
        "  {name:<10} pid {}: {:.1}% CPU{cores}, {:.2} µs CPU per {unit} ({:.2} user, {:.2} kernel){rss}",
        p.pid,
        p.cpu_percent,
        p.cpu_us_per_msg,
        p.user_us_per_msg,
        (p.cpu_us_per_msg - p.user_us_per_msg).max(0.0)
    )?;
    match &p.syscalls {
        Some(SyscallsRecord::Counted(c)) => writeln!(
            f,
            "  {:<10} {:.2} system calls per {unit} ({}), {} {} per wait (warmup's last second)",
            "",
            c.per_msg,
            c.per_msg_by_call
                .iter()
                .filter(|(_, &v)| v > 0.0)
                .map(|(k, v)| format!("{k} {v:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            c.msgs_per_wait.map_or("–".into(), |m| format!("{m:.1}")),
            plural(unit),
        ),
        Some(SyscallsRecord::Unavailable { unavailable }) => {
            writeln!(f, "  {:<10} system calls not counted: {unavailable}", "")
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(format_ns(850), "850ns");
        assert_eq!(format_ns(41_234), "41.2µs");
        assert_eq!(format_ns(1_234_567), "1.23ms");
        assert_eq!(format_bytes(3 << 20), "3.0 MiB");
    }
}
