//! The command line: clap options as typed, and their validation into a [`Plan`].
//!
//! Options are what a person typed (and what the JSON records under `flags`); the plan is what
//! the engine runs: URLs resolved, CPUs chosen, sizes checked. Everything that can be refused
//! is refused here, before a socket is opened.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;
use wsport_server_common::units::{parse_cpu_list, parse_duration, parse_size};

use crate::error::BenchError;
use crate::report::PacingRecord;
use crate::source::SourceIps;

/// `wsport-bench`: a load generator for WebSocket servers.
#[derive(Debug, Clone, Parser)]
#[command(name = "wsport-bench", version, about, long_about = None)]
pub struct Opts {
    /// The workload.
    #[command(subcommand)]
    pub command: Command,
    /// The command line as typed, recorded in the JSON. `main` fills it in; tests may leave it
    /// empty.
    #[arg(skip)]
    pub argv: Vec<String>,
}

/// Workloads.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Closed loop: each connection keeps --depth messages in flight, sending the next one as
    /// soon as an echo comes back; measures round-trip latency and verifies every echo.
    Echo(EchoArgs),
    /// Open loop: --rate messages per second in total, spread evenly over the connections and
    /// sent on schedule whatever the server does; latency is measured from each message's
    /// intended send time (coordinated-omission corrected) and, beside it, from its actual one.
    Rate(RateArgs),
    /// Idle connections: open -c connections, keep them open with a ping every
    /// --ping-interval each (staggered), and report pong latency and, with --server-pid, the
    /// server's memory per connection.
    Hold(HoldArgs),
    /// Connection storm: each of -c slots opens a connection (TCP, TLS for wss, upgrade),
    /// closes it with the close handshake, and starts over, as fast as the server allows (or
    /// at --rate attempts per second in total); TCP connect, TLS handshake, upgrade and the
    /// total are timed separately.
    Connect(ConnectArgs),
    /// Fan-out through a server's --broadcast mode: --subscribers connections only receive,
    /// --publishers connections publish --rate messages per second in total (spread evenly);
    /// measures publish-to-delivery latency, deliveries per second and server CPU per
    /// delivery, and checks that every subscriber got every message, in order, once.
    Broadcast(BroadcastArgs),
}

impl Command {
    /// The options every workload has.
    pub fn common(&self) -> &CommonArgs {
        match self {
            Self::Echo(a) => &a.common,
            Self::Rate(a) => &a.common,
            Self::Hold(a) => &a.common,
            Self::Connect(a) => &a.common,
            Self::Broadcast(a) => &a.common,
        }
    }
}

/// `echo` options.
#[derive(Debug, Clone, Args, Serialize)]
pub struct EchoArgs {
    /// Targets, connections and output: shared by every workload.
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
    /// What to send and for how long.
    #[command(flatten)]
    #[serde(flatten)]
    pub messages: MessageArgs,
    /// Messages in flight per connection (pipelining).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub depth: u32,
    /// Plain TCP against a server's --raw-tcp mode (the runtime's floor): no upgrade and no
    /// frames; each message is its payload's bytes as they are, echoed once as many bytes came
    /// back (checked like any echo). ws:// URLs only; the scenario is named `raw-...-tcp-PORT`.
    #[arg(long, conflicts_with = "text")]
    pub raw: bool,
}

/// `rate` options.
#[derive(Debug, Clone, Args, Serialize)]
pub struct RateArgs {
    /// Targets, connections and output: shared by every workload.
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
    /// What to send and for how long.
    #[command(flatten)]
    #[serde(flatten)]
    pub messages: MessageArgs,
    /// Messages per second, all connections together.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: u64,
    /// Messages a connection may have in flight; when reached it sends nothing until an echo
    /// returns, and the wait shows in the corrected latency. 1 behaves like one request at a
    /// time over HTTP/1.1 (as wrk2 measures).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_in_flight: u32,
    /// Search for the highest rate that meets these latency objectives, e.g. "p99<5ms" or
    /// "p99<5ms,p99.9<20ms" (percentiles of the corrected latency): trials of --warmup and
    /// --duration from --rate up, doubling until one fails, then bisecting (at most 12).
    #[arg(long, value_name = "OBJECTIVES", value_parser = crate::objectives::parse_slo)]
    pub slo: Option<crate::objectives::Slo>,
    /// How messages arrive. 0 (the default): each message leaves at its own turn, one at a
    /// time, as from many independent clients behind a NIC. A tick such as 1ms: the messages
    /// whose turn falls within a tick leave together at its end, in one wake-up (io_uring: one
    /// submission), as from one proxy multiplexing many users; latency counts from the tick.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    #[serde(serialize_with = "crate::cli::ser_duration")]
    pub tick: Duration,
    /// Debugging the send-lag check: the worker takes up each message this long after its
    /// turn, as a client with a coarse timer or too little CPU would.
    #[arg(long, default_value = "0", value_parser = parse_duration, hide = true)]
    #[serde(serialize_with = "crate::cli::ser_duration")]
    pub debug_wake_late: Duration,
    /// Open the connections at this many per second in total before the warmup (default: all
    /// at once; with --max, 2000 per second).
    #[arg(long, value_name = "PER_SEC", value_parser = clap::value_parser!(u64).range(1..))]
    pub ramp: Option<u64>,
    /// Instead of -c: the most connections the host's limits allow, as `hold --max`.
    #[arg(long)]
    pub max: bool,
}

/// `hold` options.
#[derive(Debug, Clone, Args, Serialize)]
pub struct HoldArgs {
    /// Targets, connections and output: shared by every workload.
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
    /// Time between two pings of one connection (heartbeats); `off`: no pings at all, the
    /// connections stay silent (what a proxy's idle timeout cuts).
    #[arg(long, default_value = "1s", value_parser = parse_ping_interval)]
    #[serde(serialize_with = "crate::cli::ser_ping_interval")]
    pub ping_interval: Duration,
    /// Length of the measured window, after the warmup.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    #[serde(serialize_with = "crate::cli::ser_duration")]
    pub duration: Duration,
    /// Time between the last connection opening and the window.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    #[serde(serialize_with = "crate::cli::ser_duration")]
    pub warmup: Duration,
    /// Open the connections at this many per second in total (default: all at once; with
    /// --max, 2000 per second).
    #[arg(long, value_name = "PER_SEC", value_parser = clap::value_parser!(u64).range(1..))]
    pub ramp: Option<u64>,
    /// Instead of -c: the most connections this host's limits allow for this process and the
    /// --server-pid process (descriptors, the server's --max-connections, the host's files,
    /// ephemeral ports × loopback source addresses); the run says which limit set the number
    /// and spreads over 127.0.0.x source addresses when one address's ports are not enough.
    #[arg(long)]
    pub max: bool,
}

/// `--max`: the common options with -c (and, where one address's ports are not enough,
/// --source-ip) replaced by the most connections the host allows ([`crate::maxconn`]).
fn with_max(common: &CommonArgs, max: bool) -> (CommonArgs, Option<crate::maxconn::MaxPlan>) {
    let mut common = common.clone();
    if !max {
        return (common, None);
    }
    let max = crate::maxconn::plan(&crate::maxconn::gather(
        common.server_pid,
        common.urls.len(),
    ));
    common.connections = max.connections;
    if common.source_ip.is_none() && !max.source_ips.is_empty() {
        common.source_ip = Some(SourceIps(max.source_ips.clone()));
    }
    (common, Some(max))
}

/// `hold --max` without --ramp: connections opened per second.
pub const MAX_RAMP_PER_SEC: u64 = 2000;

/// `connect` options.
#[derive(Debug, Clone, Args, Serialize)]
pub struct ConnectArgs {
    /// Targets and output; -c is the number of connections opening at once.
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
    /// Length of the measured window, after the warmup.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    #[serde(serialize_with = "crate::cli::ser_duration")]
    pub duration: Duration,
    /// Connection churn before the window; not measured.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    #[serde(serialize_with = "crate::cli::ser_duration")]
    pub warmup: Duration,
    /// Open loop: start this many connection attempts per second in total, on schedule
    /// (-c still caps how many are in progress at once; an attempt that finds every slot busy
    /// is late, and its wait counts in the total). Default: each slot starts over at once.
    #[arg(long, value_name = "PER_SEC", value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: Option<u64>,
}

/// `broadcast` options.
#[derive(Debug, Clone, Args, Serialize)]
pub struct BroadcastArgs {
    /// Targets and output; -c is ignored: the connections are --publishers + --subscribers.
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
    /// What to send and for how long (--size at least 40: the header every published message
    /// carries, publisher, sequence number and publish time).
    #[command(flatten)]
    #[serde(flatten)]
    pub messages: MessageArgs,
    /// Connections that publish.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub publishers: u32,
    /// Connections that only receive; all are open before the first message is published.
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// Messages published per second, all publishers together; each is delivered to every
    /// subscriber (and to the other publishers), so deliveries/s = rate × subscribers.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: u64,
    /// After the window: how long subscribers may take to receive everything published
    /// before they close; what has not arrived by then is lost.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    #[serde(serialize_with = "crate::cli::ser_duration")]
    pub drain: Duration,
    /// Open the connections at this many per second in total before the warmup (default: all
    /// at once), so that 10,000 subscribers do not overflow the server's accept queue.
    #[arg(long, value_name = "PER_SEC", value_parser = clap::value_parser!(u64).range(1..))]
    pub ramp: Option<u64>,
}

/// What every message workload sends, and for how long.
#[derive(Debug, Clone, Args, Serialize)]
pub struct MessageArgs {
    /// Payload size in bytes (64, 1KiB, 16KiB), or a comma-separated list the messages of each
    /// connection cycle through (64,1KiB).
    #[arg(long, default_value = "64", value_parser = parse_size_list)]
    #[serde(serialize_with = "crate::cli::ser_sizes")]
    pub size: SizeList,
    /// Send text messages (ASCII payloads; the server validates UTF-8).
    #[arg(long, conflicts_with = "binary")]
    pub text: bool,
    /// Send binary messages (the default).
    #[arg(long)]
    pub binary: bool,
    /// Length of the measured window, after the warmup (e.g. 10s, 500ms, 2m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    #[serde(serialize_with = "crate::cli::ser_duration")]
    pub duration: Duration,
    /// Load before the measured window; its messages are not in the results.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    #[serde(serialize_with = "crate::cli::ser_duration")]
    pub warmup: Duration,
}

/// Options every workload takes.
#[derive(Debug, Clone, Args, Serialize)]
pub struct CommonArgs {
    /// Target, ws://HOST:PORT/PATH or wss://HOST:PORT/PATH. Repeatable: connections are spread
    /// round-robin over the URLs.
    #[arg(long = "url", value_name = "URL", required = true)]
    pub urls: Vec<String>,
    /// Connections in total.
    #[arg(short = 'c', long, default_value_t = 100)]
    pub connections: usize,
    /// Local (loopback) addresses to connect from, round-robin: a range
    /// 127.0.0.1-127.0.0.250 or a list 127.0.0.1,127.0.0.2. Each address has its own
    /// ephemeral ports, for more connections to one target than one address allows (~28k).
    #[arg(long, value_name = "LIST", value_parser = crate::source::parse_source_ips)]
    pub source_ip: Option<SourceIps>,
    /// Worker threads, each an event loop owning an equal share of the connections. Default:
    /// one per CPU of --cpus, else 1.
    #[arg(long)]
    pub threads: Option<usize>,
    /// CPUs to pin worker i to (cpus[i % len]), e.g. 1 or 2-3. Default: no pinning.
    #[arg(long, value_name = "LIST", value_parser = parse_cpus)]
    pub cpus: Option<CpuList>,
    /// IO engine: io_uring with batched submission, or epoll. `auto` takes io_uring when the
    /// kernel allows it and says so when it falls back.
    #[arg(long, value_enum, default_value_t = EngineChoice::Auto)]
    pub engine: EngineChoice,
    /// wss: accept any server certificate (wsport servers self-sign by default).
    #[arg(long)]
    pub insecure: bool,
    /// wss: trust the certificates in this PEM file (instead of the system store).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Time allowed to open every connection (TCP, TLS and upgrade) before the run starts.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    #[serde(serialize_with = "crate::cli::ser_duration")]
    pub connect_timeout: Duration,
    /// Server process to measure: CPU time (utime+stime) and RSS from /proc over the measured
    /// window, reported as CPU% and CPU µs per message.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// A proxy in front of the server (e.g. an nginx worker terminating TLS): its CPU and RSS
    /// are measured over the window like the server's, so the whole path's cost per message
    /// is proxy + server.
    #[arg(long, value_name = "PID")]
    pub proxy_pid: Option<u32>,
    /// Do not count system calls. By default the server's (with --server-pid) and this
    /// client's are counted over the window from outside the process (perf_event_open on the
    /// syscall tracepoints; root or CAP_PERFMON), reported per message and as messages per
    /// wait.
    #[arg(long)]
    pub no_syscalls: bool,
    /// A name for the server under test, put into the scenario name (e.g. monoio).
    #[arg(long)]
    pub label: Option<String>,
    /// Write the results as JSON (schema wsport-bench/1, see the crate README).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write HdrHistogram interval logs (log format 1.3), one interval per second, values in ns.
    #[arg(long, value_name = "FILE")]
    pub hlog: Option<PathBuf>,
    /// No progress line on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `--engine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineChoice {
    /// io_uring if available, else epoll.
    Auto,
    /// io_uring or fail.
    IoUring,
    /// epoll.
    Epoll,
}

/// `--cpus`: CPUs in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CpuList(pub Vec<usize>);

fn parse_cpus(text: &str) -> Result<CpuList, String> {
    parse_cpu_list(text).map(CpuList).map_err(|e| e.to_string())
}

/// Payload sizes, at least one, each at most [`MAX_PAYLOAD`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeList(pub Vec<usize>);

/// The largest payload `--size` accepts: large enough for any benchmark of interest, small
/// enough that per-connection buffers stay sane.
pub const MAX_PAYLOAD: usize = 16 << 20;

fn parse_size_list(text: &str) -> Result<SizeList, String> {
    let mut sizes = Vec::new();
    for part in text.split(',') {
        let n = parse_size(part).map_err(|e| e.to_string())?;
        if n > MAX_PAYLOAD as u64 {
            return Err(format!(
                "{part:?} is over the largest payload, {} MiB",
                MAX_PAYLOAD >> 20
            ));
        }
        sizes.push(n as usize);
    }
    Ok(SizeList(sizes))
}

/// `--ping-interval` in the JSON: seconds, or `"off"`.
fn ser_ping_interval<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    if *d == PINGS_OFF {
        s.serialize_str("off")
    } else {
        ser_duration(d, s)
    }
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn ser_sizes<S: serde::Serializer>(sizes: &SizeList, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(sizes.0.iter())
}

// ---------------------------------------------------------------------------------------------
// The validated plan
// ---------------------------------------------------------------------------------------------

/// One `--url`, parsed and resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// wss.
    pub tls: bool,
    /// Host as written (the `Host` header and the TLS server name).
    pub host: String,
    /// The port (explicit or the scheme's default).
    pub port: u16,
    /// Where to connect.
    pub addr: SocketAddr,
    /// Request target, `/` at least.
    pub path: String,
}

impl Target {
    /// Parse `ws://HOST[:PORT][/PATH]` or `wss://...`, and resolve HOST.
    pub fn parse(url: &str) -> Result<Self, BenchError> {
        let bad = |why: &str| BenchError::Url {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let (tls, rest) = if let Some(rest) = url.strip_prefix("ws://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("wss://") {
            (true, rest)
        } else {
            return Err(bad("the scheme must be ws:// or wss://"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        if authority.contains('@') {
            return Err(bad("user info (user@host) is not supported"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| bad("expected HOST:PORT"))?;
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| bad("the port must be a number 1-65535"))?,
            None if tls => 443,
            None => 80,
        };
        if port == 0 {
            return Err(bad("port 0 cannot be connected to"));
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addr = (bare, port)
            .to_socket_addrs()
            .map_err(|e| bad(&format!("cannot resolve {bare}: {e}")))?
            .next()
            .ok_or_else(|| bad(&format!("{bare} resolves to no address")))?;
        Ok(Self {
            url: url.to_owned(),
            tls,
            host: host.to_owned(),
            port,
            addr,
            path,
        })
    }

    /// `Host` header value: host and port as written, port omitted when it is the default.
    pub fn host_header(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Host without IPv6 brackets, for the TLS server name.
    pub fn server_name(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    /// `ws` or `wss`.
    pub fn scheme(&self) -> &'static str {
        if self.tls {
            "wss"
        } else {
            "ws"
        }
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.is_empty() {
        return None;
    }
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Some((host, Some(port))),
            None if rest.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') => Some((host, Some(port))),
        Some(_) => None,
        None => Some((authority, None)),
    }
}

/// How messages are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// Closed loop: `depth` messages in flight per connection, the next sent on each echo.
    Closed {
        /// Messages in flight per connection.
        depth: usize,
    },
    /// Connection storm: each slot opens, upgrades and closes connections one after another.
    Storm {
        /// Attempts per second in total, started on schedule; `None`: each slot starts its
        /// next attempt as soon as the last one closed.
        rate: Option<u64>,
    },
    /// Open loop: each connection sends every `interval_ns` (staggered so that the total is
    /// even), with at most `max_in_flight` unanswered.
    Open {
        /// Total messages per second.
        rate: u64,
        /// Time between two messages of one connection, ns.
        interval_ns: u64,
        /// Cap on unanswered messages per connection.
        max_in_flight: usize,
        /// `rate --tick`: messages due within a tick leave together at its end, ns; 0: each
        /// at its own turn.
        tick_ns: u64,
    },
}

/// What a workload sends, whatever its options are called.
struct Messages {
    sizes: Vec<usize>,
    text: bool,
    ping: bool,
    duration: Duration,
    warmup: Duration,
}

impl Pacing {
    /// Whether messages (or connection attempts) have intended start times of their own, so
    /// that latency is measured from them and, beside it, from the actual ones.
    pub fn scheduled(self) -> bool {
        matches!(self, Self::Open { .. } | Self::Storm { rate: Some(_) })
    }

    /// `connect`.
    pub fn is_storm(self) -> bool {
        matches!(self, Self::Storm { .. })
    }
}

impl Messages {
    fn of(m: &MessageArgs) -> Self {
        Self {
            sizes: m.size.0.clone(),
            text: m.text,
            ping: false,
            duration: m.duration,
            warmup: m.warmup,
        }
    }
}

/// The validated run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `echo` or `rate`.
    pub workload: &'static str,
    /// The targets, in --url order.
    pub targets: Vec<Target>,
    /// Connections in total; connection i goes to `targets[i % len]` and worker `i % threads`.
    pub connections: usize,
    /// Worker threads.
    pub threads: usize,
    /// CPU of each worker, when pinned.
    pub pinning: Option<Vec<usize>>,
    /// `--engine`.
    pub engine: EngineChoice,
    /// Closed or open loop.
    pub pacing: Pacing,
    /// Payload sizes the messages cycle through.
    pub sizes: Vec<usize>,
    /// Text frames (else binary).
    pub text: bool,
    /// Send pings and measure pongs instead of messages and echoes (`hold`).
    pub ping: bool,
    /// Warmup before the window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Time allowed to open all connections.
    pub connect_timeout: Duration,
    /// `--server-pid`.
    pub server_pid: Option<u32>,
    /// `--proxy-pid`.
    pub proxy_pid: Option<u32>,
    /// `--source-ip`: addresses connection `id` binds to (see [`crate::source::source_of`]);
    /// empty: the kernel chooses.
    pub source_ips: Vec<std::net::IpAddr>,
    /// `hold --ramp`: connections opened per second while opening; `None`: all at once.
    pub ramp: Option<u64>,
    /// `hold --max`: the limits read and the one that set the number of connections.
    pub max: Option<crate::maxconn::MaxPlan>,
    /// Hidden `rate --debug-wake-late`: how late the workers wake for each message.
    pub debug_wake_late: Duration,
    /// `broadcast`: who publishes and who subscribes.
    pub broadcast: Option<BroadcastPlan>,
    /// The scenario name, e.g. `echo-64B-100c-1t-ws-8080`.
    pub scenario: String,
}

/// `broadcast`: connections `0..publishers` publish, the others subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BroadcastPlan {
    /// Publishing connections (the first ids).
    pub publishers: usize,
    /// Receiving connections.
    pub subscribers: usize,
    /// Published messages per second, all publishers.
    pub rate: u64,
    /// Time subscribers have after the window to receive what was published.
    pub drain: Duration,
}

impl Plan {
    /// Validate the options of any workload.
    pub fn new(command: &Command) -> Result<Self, BenchError> {
        match command {
            Command::Echo(a) => {
                let workload = if a.raw { "raw" } else { "echo" };
                let pacing = Pacing::Closed {
                    depth: a.depth as usize,
                };
                let plan = Self::build(workload, &a.common, Messages::of(&a.messages), pacing)?;
                if a.raw {
                    plan.check_raw()?;
                }
                Ok(plan)
            }
            Command::Connect(a) => {
                let messages = Messages {
                    sizes: vec![16],
                    text: false,
                    ping: false,
                    duration: a.duration,
                    warmup: a.warmup,
                };
                Self::build(
                    "connect",
                    &a.common,
                    messages,
                    Pacing::Storm { rate: a.rate },
                )
            }
            Command::Hold(a) => Self::hold(a),
            Command::Rate(a) => Self::rate(a),
            Command::Broadcast(a) => Self::broadcast(a),
        }
    }

    /// `broadcast`: the publishers are paced like `rate` connections at --rate over
    /// --publishers; subscribers never send. Every message is published once and delivered
    /// to every other connection, so nothing is ever "in flight" on a publisher.
    fn broadcast(a: &BroadcastArgs) -> Result<Self, BenchError> {
        let publishers = a.publishers as usize;
        if a.subscribers == 0 {
            return Err(BenchError::Usage("--subscribers must be at least 1".into()));
        }
        if let Some(&small) = a
            .messages
            .size
            .0
            .iter()
            .find(|&&s| s < crate::broadcast::HEADER_LEN)
        {
            return Err(BenchError::Usage(format!(
                "--size {small} is too small for broadcast: each message carries a {}-byte header \
                 (publisher, sequence number, publish time)",
                crate::broadcast::HEADER_LEN
            )));
        }
        let interval_ns = send_interval_ns(a.rate, publishers as u64, "publishers")?;
        let pacing = Pacing::Open {
            rate: a.rate,
            interval_ns,
            // Publishers expect no answer, so nothing holds them back; the cap only sizes
            // their send buffers (as for a `rate` connection with many messages queued).
            max_in_flight: BROADCAST_QUEUE,
            tick_ns: 0,
        };
        let mut common = a.common.clone();
        common.connections = publishers + a.subscribers;
        let mut plan = Self::build("broadcast", &common, Messages::of(&a.messages), pacing)?;
        plan.ramp = a.ramp;
        plan.broadcast = Some(BroadcastPlan {
            publishers,
            subscribers: a.subscribers,
            rate: a.rate,
            drain: a.drain,
        });
        // Worker 0 holds the publishers alone (`connections_of`); more workers than
        // subscribers would leave some with nothing to do.
        if plan.threads > a.subscribers + 1 {
            plan.threads = a.subscribers + 1;
            if let Some(p) = &mut plan.pinning {
                p.truncate(plan.threads);
            }
        }
        plan.scenario =
            broadcast_scenario(&plan, publishers, a.subscribers, a.common.label.as_deref());
        Ok(plan)
    }

    /// Whether latency is also measured from the actual send time. Not for `broadcast`: the
    /// payload carries the intended publish time (see [`crate::broadcast::Stamp`]).
    pub fn as_sent_latency(&self) -> bool {
        self.pacing.scheduled() && self.broadcast.is_none()
    }

    /// `rate`: --rate messages per second over the connections (with --max, as many as the
    /// host allows, opened on a ramp as `hold --max` does).
    fn rate(a: &RateArgs) -> Result<Self, BenchError> {
        let (common, max) = with_max(&a.common, a.max);
        let c = common.connections.max(1) as u64;
        let interval_ns = send_interval_ns(a.rate, c, "connections")?;
        let pacing = Pacing::Open {
            rate: a.rate,
            interval_ns,
            max_in_flight: a.max_in_flight as usize,
            tick_ns: a.tick.as_nanos().min(u128::from(u64::MAX)) as u64,
        };
        let mut plan = Self::build("rate", &common, Messages::of(&a.messages), pacing)?;
        plan.debug_wake_late = a.debug_wake_late;
        plan.ramp = a.ramp.or(max.as_ref().map(|_| MAX_RAMP_PER_SEC));
        plan.max = max;
        Ok(plan)
    }

    /// `hold`: a ping per connection every --ping-interval; with --max, as many connections as
    /// the host's limits allow ([`crate::maxconn`]), on a ramp.
    fn hold(a: &HoldArgs) -> Result<Self, BenchError> {
        if a.ping_interval.is_zero() {
            return Err(BenchError::Usage(
                "--ping-interval must be longer than 0".into(),
            ));
        }
        let (common, max) = with_max(&a.common, a.max);
        let interval_ns = if a.ping_interval == PINGS_OFF {
            NO_PINGS_NS
        } else {
            a.ping_interval.as_nanos().min(u128::from(u64::MAX)) as u64
        };
        let rate = (common.connections as u128 * 1_000_000_000 / u128::from(interval_ns)) as u64;
        let pacing = Pacing::Open {
            rate,
            interval_ns,
            max_in_flight: 1,
            tick_ns: 0,
        };
        // Pings carry the 16-byte sequence stamp, as messages do.
        let messages = Messages {
            sizes: vec![16],
            text: false,
            ping: true,
            duration: a.duration,
            warmup: a.warmup,
        };
        let mut plan = Self::build("hold", &common, messages, pacing)?;
        // Opening thousands at once would measure the accept queue, not the server.
        plan.ramp = a.ramp.or(max.as_ref().map(|_| MAX_RAMP_PER_SEC));
        plan.max = max;
        Ok(plan)
    }

    fn build(
        workload: &'static str,
        c: &CommonArgs,
        m: Messages,
        pacing: Pacing,
    ) -> Result<Self, BenchError> {
        let usage = |s: String| BenchError::Usage(s);
        if c.connections == 0 {
            return Err(usage("-c/--connections must be at least 1".into()));
        }
        if m.sizes.is_empty() {
            return Err(usage("--size needs at least one size".into()));
        }
        if m.duration.is_zero() {
            return Err(usage("--duration must be longer than 0".into()));
        }
        let targets = c
            .urls
            .iter()
            .map(|u| Target::parse(u))
            .collect::<Result<Vec<_>, _>>()?;
        if targets.iter().any(|t| t.tls) && c.ca.is_some() && c.insecure {
            return Err(usage(
                "--ca and --insecure contradict each other; pick one".into(),
            ));
        }
        let cpus = c.cpus.as_ref().map(|l| &l.0);
        let threads = match (c.threads, cpus) {
            (Some(0), _) => return Err(usage("--threads must be at least 1".into())),
            (Some(n), _) => n,
            (None, Some(cpus)) => cpus.len().max(1),
            (None, None) => 1,
        };
        if let Some(cpus) = cpus {
            if cpus.is_empty() {
                return Err(usage("--cpus needs at least one CPU".into()));
            }
            let allowed = wsport_server_common::allowed_cpus();
            if let Some(cpu) = cpus.iter().find(|c| !allowed.contains(c)) {
                let allowed = wsport_server_common::cli::format_cpu_list(&allowed);
                return Err(usage(format!(
                    "--cpus names CPU {cpu}, which this process may not use (allowed: {allowed})"
                )));
            }
        }
        let source_ips = c.source_ip.as_ref().map_or_else(Vec::new, |s| s.0.clone());
        if let Some(ip) = source_ips
            .iter()
            .find(|ip| targets.iter().any(|t| t.addr.is_ipv4() != ip.is_ipv4()))
        {
            return Err(usage(format!(
                "--source-ip {ip} cannot connect to a target of the other IP version"
            )));
        }
        let addrs: Vec<SocketAddr> = targets.iter().map(|t| t.addr).collect();
        crate::source::check_ports(
            c.connections,
            &addrs,
            &source_ips,
            crate::source::local_port_range(),
        )?;
        let threads = threads.min(c.connections);
        let pinning = cpus.map(|cpus| (0..threads).map(|i| cpus[i % cpus.len()]).collect());
        let scenario = scenario_name(
            workload,
            pacing,
            &m.sizes,
            c.connections,
            threads,
            c.label.as_deref(),
            &targets,
        );
        Ok(Self {
            workload,
            targets,
            connections: c.connections,
            threads,
            pinning,
            engine: c.engine,
            pacing,
            sizes: m.sizes,
            text: m.text,
            ping: m.ping,
            warmup: m.warmup,
            duration: m.duration,
            connect_timeout: c.connect_timeout,
            server_pid: c.server_pid,
            proxy_pid: c.proxy_pid,
            source_ips,
            ramp: None,
            max: None,
            debug_wake_late: Duration::ZERO,
            broadcast: None,
            scenario,
        })
    }

    /// `echo --raw`: bytes with no frames need plain TCP targets, and a message of no bytes
    /// could never be told echoed.
    fn check_raw(&self) -> Result<(), BenchError> {
        if let Some(t) = self.targets.iter().find(|t| t.tls) {
            return Err(BenchError::Usage(format!(
                "--raw is plain TCP: {} is wss:// (give the ws:// URL of a --raw-tcp server)",
                t.url
            )));
        }
        if self.sizes.contains(&0) {
            return Err(BenchError::Usage(
                "--raw needs payloads of at least 1 byte: an empty message cannot be echoed".into(),
            ));
        }
        Ok(())
    }

    /// `echo --raw`: plain TCP, no WebSocket.
    pub fn raw(&self) -> bool {
        self.workload == "raw"
    }

    /// The connections (ids) worker `index` owns: round-robin, `id % threads`. `broadcast`
    /// with two workers or more puts the publishers on worker 0 alone and spreads the
    /// subscribers over the others: a worker handles a burst of deliveries (one message to a
    /// thousand subscribers) in one go, and a publish due meanwhile would wait behind it.
    pub fn connections_of(&self, index: usize) -> Vec<usize> {
        match self.broadcast {
            Some(b) if self.threads >= 2 && index == 0 => (0..b.publishers).collect(),
            Some(b) if self.threads >= 2 => (b.publishers + index - 1..self.connections)
                .step_by(self.threads - 1)
                .collect(),
            _ => (index..self.connections).step_by(self.threads).collect(),
        }
    }

    /// Largest payload.
    pub fn max_size(&self) -> usize {
        self.sizes.iter().copied().max().unwrap_or(0)
    }
}

/// `echo-64B-100c-1t-monoio-wss-8443`, `rate-50000ps-64B-100c-1t-ws-8080`: every parameter
/// that changes the result, in the order DESIGN.md uses; `-d4` only for pipelined echo runs.
fn scenario_name(
    kind: &str,
    pacing: Pacing,
    sizes: &[usize],
    conns: usize,
    threads: usize,
    label: Option<&str>,
    targets: &[Target],
) -> String {
    let sizes = sizes
        .iter()
        .map(|&s| format_size(s))
        .collect::<Vec<_>>()
        .join("+");
    let mut name = kind.to_owned();
    match pacing {
        Pacing::Open { interval_ns, .. } if kind == "hold" && interval_ns == NO_PINGS_NS => {
            name.push_str(&format!("-{conns}c-pingoff"));
        }
        Pacing::Open { interval_ns, .. } if kind == "hold" => {
            name.push_str(&format!("-{conns}c-ping{}", format_interval(interval_ns)));
        }
        Pacing::Open { rate, tick_ns, .. } => {
            name.push_str(&format!("-{rate}ps-{sizes}-{conns}c"));
            if tick_ns > 0 {
                name.push_str(&format!("-tick{}", format_interval(tick_ns)));
            }
        }
        Pacing::Closed { .. } => name.push_str(&format!("-{sizes}-{conns}c")),
        Pacing::Storm { rate: None } => name.push_str(&format!("-{conns}c")),
        Pacing::Storm { rate: Some(rate) } => name.push_str(&format!("-{rate}ps-{conns}c")),
    }
    if let Pacing::Closed { depth } = pacing {
        if depth > 1 {
            name.push_str(&format!("-d{depth}"));
        }
    }
    name.push_str(&format!("-{threads}t"));
    if let Some(label) = label {
        name.push('-');
        name.push_str(label);
    }
    let mut seen = Vec::new();
    for t in targets {
        // `raw` speaks plain TCP whatever the URL's scheme.
        let scheme = if kind == "raw" { "tcp" } else { t.scheme() };
        let part = format!("{scheme}-{}", t.port);
        if !seen.contains(&part) {
            seen.push(part);
        }
    }
    name.push('-');
    name.push_str(&seen.join("+"));
    name
}

/// `broadcast`: messages a publisher may have queued but not yet handed to the kernel before
/// it waits for its socket (they leave as soon as it is writable again).
const BROADCAST_QUEUE: usize = 1024;

/// `broadcast-1p-1000s-100ps-64B-1t-tokio-ws-8080`: publishers, subscribers, publish rate,
/// sizes, threads, label, targets.
fn broadcast_scenario(
    plan: &Plan,
    publishers: usize,
    subscribers: usize,
    label: Option<&str>,
) -> String {
    let sizes = plan
        .sizes
        .iter()
        .map(|&s| format_size(s))
        .collect::<Vec<_>>()
        .join("+");
    let rate = match plan.pacing {
        Pacing::Open { rate, .. } => rate,
        _ => 0,
    };
    let mut name = format!(
        "broadcast-{publishers}p-{subscribers}s-{rate}ps-{sizes}-{}t",
        plan.threads
    );
    if let Some(label) = label {
        name.push('-');
        name.push_str(label);
    }
    let mut seen: Vec<String> = Vec::new();
    for t in &plan.targets {
        let part = format!("{}-{}", t.scheme(), t.port);
        if !seen.contains(&part) {
            seen.push(part);
        }
    }
    name.push('-');
    name.push_str(&seen.join("+"));
    name
}

/// 1_000_000_000 -> `1s`, 250_000_000 -> `250ms`.
/// `hold --ping-interval off`, as parsed: a duration no one would ask for.
const PINGS_OFF: Duration = Duration::MAX;

pub use crate::report::NO_PINGS_NS;

/// `--ping-interval`: a duration, or `off`.
fn parse_ping_interval(s: &str) -> Result<Duration, String> {
    if s == "off" {
        Ok(PINGS_OFF)
    } else {
        parse_duration(s).map_err(|e| e.to_string())
    }
}

fn format_interval(ns: u64) -> String {
    if ns % 1_000_000_000 == 0 {
        format!("{}s", ns / 1_000_000_000)
    } else if ns % 1_000_000 == 0 {
        format!("{}ms", ns / 1_000_000)
    } else {
        format!("{}us", ns / 1_000)
    }
}

impl PacingRecord {
    /// From the plan.
    pub fn of(p: Pacing) -> Self {
        match p {
            Pacing::Closed { depth } => Self::Closed { depth },
            Pacing::Storm { rate } => Self::Storm { rate },
            Pacing::Open {
                rate,
                interval_ns,
                max_in_flight,
                tick_ns,
            } => Self::Open {
                rate,
                interval_ns,
                max_in_flight,
                tick_ns,
            },
        }
    }
}

pub use wsport_bench_record::format_size;

/// The interval at which each of `senders` sends so that together they send `rate` messages
/// per second; refused when that is under a nanosecond (`what` names the senders).
fn send_interval_ns(rate: u64, senders: u64, what: &str) -> Result<u64, BenchError> {
    let interval_ns =
        (u128::from(senders) * 1_000_000_000 / u128::from(rate)).min(u128::from(u64::MAX)) as u64;
    if interval_ns == 0 {
        return Err(BenchError::Usage(format!(
            "--rate {rate} over {senders} {what} is more than one message per nanosecond each"
        )));
    }
    Ok(interval_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(workload: &str, args: &[&str]) -> Result<Plan, BenchError> {
        let mut argv = vec!["wsport-bench", workload];
        argv.extend_from_slice(args);
        let opts = Opts::try_parse_from(argv).map_err(|e| BenchError::Usage(e.to_string()))?;
        Plan::new(&opts.command)
    }

    fn echo(args: &[&str]) -> Result<Plan, BenchError> {
        plan("echo", args)
    }

    #[test]
    fn broadcast_plans_publishers_first_and_on_a_worker_of_their_own() {
        let url = "ws://127.0.0.1:9/";
        let one = plan(
            "broadcast",
            &["--url", url, "--subscribers", "5", "--rate", "100"],
        )
        .unwrap();
        assert_eq!((one.connections, one.threads), (6, 1));
        assert_eq!(one.connections_of(0), (0..6).collect::<Vec<_>>());
        assert!(
            !one.as_sent_latency(),
            "the payload has only the intended time"
        );
        assert_eq!(one.scenario, "broadcast-1p-5s-100ps-64B-1t-ws-9");
        let b = one.broadcast.unwrap();
        assert_eq!((b.publishers, b.subscribers, b.rate), (1, 5, 100));
        assert!(matches!(
            one.pacing,
            Pacing::Open {
                interval_ns: 10_000_000,
                ..
            }
        ));
        let args = [
            "--url",
            url,
            "--publishers",
            "2",
            "--subscribers",
            "5",
            "--rate",
            "100",
            "--threads",
            "3",
        ];
        let three = plan("broadcast", &args).unwrap();
        // Two publishers share the rate: each publishes every 20 ms.
        assert!(matches!(
            three.pacing,
            Pacing::Open {
                interval_ns: 20_000_000,
                ..
            }
        ));
        assert_eq!(three.connections_of(0), vec![0, 1]);
        assert_eq!(three.connections_of(1), vec![2, 4, 6]);
        assert_eq!(three.connections_of(2), vec![3, 5]);
        let many = plan(
            "broadcast",
            &[
                "--url",
                url,
                "--subscribers",
                "2",
                "--rate",
                "1",
                "--threads",
                "8",
            ],
        );
        assert_eq!(
            many.unwrap().threads,
            3,
            "one for the publisher, one per subscriber at most"
        );
        assert!(echo(&["--url", url, "-c", "3"]).unwrap().connections_of(0) == vec![0, 1, 2]);
    }

    #[test]
    fn urls_parse_with_defaults() {
        let t = Target::parse("ws://127.0.0.1:8080/chat?x=1").unwrap();
        assert_eq!(
            (t.tls, t.port, t.path.as_str(), t.host_header().as_str()),
            (false, 8080, "/chat?x=1", "127.0.0.1:8080")
        );
        let t = Target::parse("wss://127.0.0.1").unwrap();
        assert_eq!(
            (t.tls, t.port, t.path.as_str(), t.host_header().as_str()),
            (true, 443, "/", "127.0.0.1")
        );
        let t = Target::parse("ws://[::1]:9000").unwrap();
        assert_eq!((t.server_name(), t.port), ("::1", 9000));
        let t = Target::parse("ws://localhost:1?q").unwrap();
        assert_eq!(t.path, "/?q");
        for bad in [
            "http://x:1/",
            "ws://:80/",
            "ws://h:0/",
            "ws://h:99999/",
            "ws://a@b:1/",
            "ws://::1:80/",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plan_spreads_and_names() {
        let p = echo(&[
            "--url",
            "ws://127.0.0.1:8080/",
            "--url",
            "wss://127.0.0.1:8443/",
            "-c",
            "10",
            "--size",
            "64,1KiB",
            "--cpus",
            "0",
            "--label",
            "tokio",
        ])
        .unwrap();
        assert_eq!(p.threads, 1);
        assert_eq!(p.pinning, Some(vec![0]));
        assert_eq!(p.sizes, vec![64, 1024]);
        assert_eq!(p.scenario, "echo-64B+1KiB-10c-1t-tokio-ws-8080+wss-8443");
        let p = echo(&[
            "--url",
            "ws://127.0.0.1:8080/",
            "-c",
            "3",
            "--threads",
            "8",
            "--depth",
            "4",
        ])
        .unwrap();
        assert_eq!(
            (p.threads, p.pacing),
            (3, Pacing::Closed { depth: 4 }),
            "no more threads than connections"
        );
        assert_eq!(p.scenario, "echo-64B-3c-d4-3t-ws-8080");
    }

    #[test]
    fn rate_spreads_the_total_over_the_connections() {
        let p = plan(
            "rate",
            &[
                "--url",
                "ws://127.0.0.1:8080/",
                "-c",
                "100",
                "--rate",
                "50000",
            ],
        )
        .unwrap();
        assert_eq!(
            p.pacing,
            Pacing::Open {
                rate: 50_000,
                interval_ns: 2_000_000,
                max_in_flight: 1000,
                tick_ns: 0
            }
        );
        assert_eq!(p.scenario, "rate-50000ps-64B-100c-1t-ws-8080");
        let ticked = plan(
            "rate",
            &[
                "--url",
                "ws://127.0.0.1:8080/",
                "--rate",
                "1000",
                "--tick",
                "1ms",
            ],
        )
        .unwrap();
        assert!(matches!(
            ticked.pacing,
            Pacing::Open {
                tick_ns: 1_000_000,
                ..
            }
        ));
        assert_eq!(ticked.scenario, "rate-1000ps-64B-100c-tick1ms-1t-ws-8080");
        assert!(plan(
            "rate",
            &["--url", "ws://127.0.0.1:8080/", "-c", "1", "--rate", "0"]
        )
        .is_err());
        assert!(
            plan("rate", &["--url", "ws://127.0.0.1:8080/"]).is_err(),
            "--rate is required"
        );
    }

    #[test]
    fn max_asks_for_the_least_limit_on_a_ramp() {
        let pid = std::process::id().to_string();
        let url = ["--url", "ws://127.0.0.1:8080/", "--server-pid", &pid];
        let p = plan("hold", &[&url[..], &["--max"]].concat()).unwrap();
        let max = p.max.as_ref().expect("--max records its limits");
        assert_eq!(p.connections, max.connections);
        let least = max.limits.iter().map(|l| l.connections).min().unwrap();
        assert_eq!(p.connections as u64, least);
        assert_eq!(p.ramp, Some(MAX_RAMP_PER_SEC));
        // One ping a second per connection.
        assert!(matches!(p.pacing, Pacing::Open { rate, .. } if rate == p.connections as u64));

        let p = plan(
            "rate",
            &[&url[..], &["--max", "--rate", "1000", "--ramp", "50"]].concat(),
        )
        .unwrap();
        assert_eq!(p.connections, max.connections);
        assert_eq!(p.ramp, Some(50));
        assert!(plan("hold", &url).unwrap().max.is_none());
    }

    #[test]
    fn hold_pings_each_connection_at_its_interval() {
        let p = plan(
            "hold",
            &[
                "--url",
                "ws://127.0.0.1:8080/",
                "-c",
                "1000",
                "--ping-interval",
                "500ms",
            ],
        )
        .unwrap();
        assert_eq!(
            p.pacing,
            Pacing::Open {
                rate: 2000,
                interval_ns: 500_000_000,
                max_in_flight: 1,
                tick_ns: 0
            }
        );
        assert!(p.ping);
        assert_eq!(p.scenario, "hold-1000c-ping500ms-1t-ws-8080");
        let p = plan("connect", &["--url", "wss://127.0.0.1:8443/", "-c", "10"]).unwrap();
        assert_eq!(
            (p.pacing, p.scenario.as_str()),
            (Pacing::Storm { rate: None }, "connect-10c-1t-wss-8443")
        );
        let p = plan(
            "connect",
            &["--url", "ws://127.0.0.1:8443/", "-c", "10", "--rate", "500"],
        )
        .unwrap();
        assert_eq!(
            (p.pacing, p.scenario.as_str()),
            (
                Pacing::Storm { rate: Some(500) },
                "connect-500ps-10c-1t-ws-8443"
            )
        );
        let p = plan(
            "hold",
            &["--url", "ws://127.0.0.1:8080/", "-c", "10", "--ramp", "100"],
        )
        .unwrap();
        assert_eq!(p.ramp, Some(100));
    }

    #[test]
    fn refusals() {
        assert!(echo(&["--url", "ws://127.0.0.1:1/", "-c", "0"]).is_err());
        assert!(echo(&["--url", "ws://127.0.0.1:1/", "--text", "--binary"]).is_err());
        assert!(echo(&["--url", "ws://127.0.0.1:1/", "--size", "17MiB"]).is_err());
        assert!(echo(&["--url", "ws://127.0.0.1:1/", "--depth", "0"]).is_err());
        assert!(echo(&["--url", "ws://127.0.0.1:1/", "--cpus", "1023"]).is_err());
        assert!(echo(&[]).is_err(), "--url is required");
        assert!(echo(&["--url", "ws://127.0.0.1:1/", "--source-ip", "10.0.0.1"]).is_err());
        assert!(
            echo(&["--url", "ws://[::1]:1/", "--source-ip", "127.0.0.1"]).is_err(),
            "IPv4 source, IPv6 target"
        );
        let p = echo(&[
            "--url",
            "ws://127.0.0.1:1/",
            "--source-ip",
            "127.0.0.2-127.0.0.3",
        ])
        .unwrap();
        assert_eq!(p.source_ips.len(), 2);
    }
}
