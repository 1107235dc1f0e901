//! [`ServerConfig`]: everything a server needs to know, validated, as plain data.
//!
//! Built by [`ServerArgs::into_config`](crate::ServerArgs::into_config); a server never reads
//! a flag itself, so all servers agree on defaults and on what is refused.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::listen::{ListenSpec, ListenSpecError};
use crate::tls::TlsSetupError;

/// The validated server configuration. Every field is already resolved (defaults applied,
/// CPUs chosen, TLS loaded), so a server only reads it.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen, in the order given; at least one.
    pub listeners: Vec<ListenSpec>,
    /// Number of runtimes (threads), each with its own listener per spec; at least 1.
    pub threads: usize,
    /// The CPU to pin each thread to, indexed by thread (`len() == threads`);
    /// `None` when pinning is off (`--no-pin`).
    pub pin: Option<Vec<usize>>,
    /// The rustls configuration (ALPN `http/1.1`); present iff some listener is `wss`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// How long a client has from TCP accept to a complete upgrade request (TLS included).
    pub handshake_timeout: Duration,
    /// Close connections with no traffic for this long; `None` = never.
    pub idle_timeout: Option<Duration>,
    /// Largest upgrade request accepted (request line + headers); larger gets HTTP 431.
    pub max_header_bytes: usize,
    /// Largest frame payload accepted; larger gets close 1009.
    pub max_frame_bytes: u64,
    /// Largest (reassembled) message accepted; larger gets close 1009.
    pub max_message_bytes: u64,
    /// Most connections open at once in this process; more are refused (`over_capacity`).
    pub max_connections: usize,
    /// Accepted `Origin` values; empty = any (or none). When set, others get HTTP 403.
    pub allow_origins: Vec<String>,
    /// When set, clients must send `Authorization: Bearer <token>`, else HTTP 401.
    pub auth_token: Option<String>,
    /// Subprotocols the server offers, in preference order; empty = none negotiated.
    pub subprotocols: Vec<String>,
    /// Send a ping after this long without traffic from the client; `None` = no heartbeats.
    pub ping_interval: Option<Duration>,
    /// How long to wait for the pong before closing; `Duration::ZERO` when heartbeats are off.
    pub ping_timeout: Duration,
    /// Print a JSON stats line to stdout this often; `None` = never.
    pub stats_interval: Option<Duration>,
    /// How long graceful shutdown waits for clients to answer the close frame.
    pub shutdown_timeout: Duration,
    /// `listen(2)` backlog for each listener.
    pub backlog: i32,
    /// Faults injected on purpose (hidden `--debug-*` flags); none by default.
    pub debug: DebugFaults,
    /// `--raw-tcp`: echo the bytes of every connection as they come, with no WebSocket
    /// session (no handshake, no frames, no deadlines): the runtime's floor.
    pub raw_tcp: bool,
    /// `--broadcast`: data messages go to every other connection instead of back (see
    /// [`crate::hub`]).
    pub broadcast: bool,
}

/// Faults a server injects only when asked by its hidden `--debug-*` flags, so that tests can
/// prove what the benchmark reports: a stall must show in coordinated-omission-corrected
/// latency, a slowdown must trip the regression gate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DebugFaults {
    /// Every `.0`, block the runtime thread for `.1`.
    pub stall: Option<(Duration, Duration)>,
    /// CPU burnt per message echoed.
    pub spin_per_message: Option<Duration>,
    /// Fixed user-space work per message echoed: this many rounds of integer arithmetic, the
    /// same instructions on every run (the instruction-count gate's injected regression;
    /// `spin_per_message` burns time, so its instruction count follows the clock).
    pub work_per_message: Option<u32>,
}

impl ServerConfig {
    /// The CPU thread `index` is to be pinned to, or `None` when pinning is off.
    pub fn cpu_for_thread(&self, index: usize) -> Option<usize> {
        self.pin.as_ref().and_then(|cpus| cpus.get(index).copied())
    }

    /// Whether any listener speaks TLS.
    pub fn has_wss(&self) -> bool {
        self.listeners
            .iter()
            .any(|l| l.scheme == crate::listen::Scheme::Wss)
    }
}

/// A configuration that cannot be served. Each message names the flag (or file) at fault and
/// says what would be accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `WSPORT_LISTEN` holds a URL that does not parse (the `--listen` flags are checked by
    /// clap as they are parsed).
    #[error("WSPORT_LISTEN: {0}")]
    ListenEnv(#[source] ListenSpecError),
    /// The same address appears twice (possibly once as ws and once as wss).
    #[error(
        "{addr} is listed twice in --listen/WSPORT_LISTEN: one address can serve only one scheme"
    )]
    DuplicateListen {
        /// The repeated address.
        addr: SocketAddr,
    },
    /// A numeric flag is zero or out of range.
    #[error("{flag} must be {expect}, got {got}")]
    OutOfRange {
        /// The flag, e.g. `--threads`.
        flag: &'static str,
        /// What is accepted, e.g. `at least 1`.
        expect: &'static str,
        /// The value given.
        got: String,
    },
    /// A CPU in `--cpus` is not in this process's affinity mask (offline, absent, or excluded
    /// by taskset/cgroups).
    #[error("--cpus names CPU {cpu}, which this process may not run on (allowed: {allowed}); pick CPUs from that list or pass --no-pin")]
    CpuNotAllowed {
        /// The CPU asked for.
        cpu: usize,
        /// The allowed CPUs, as a list like `0-3,6`.
        allowed: String,
    },
    /// Only one of `--cert` and `--key` was given.
    #[error("--cert and --key go together: {given} was given without {missing}")]
    CertKeyPair {
        /// The flag that was given.
        given: &'static str,
        /// The flag that is missing.
        missing: &'static str,
    },
    /// `--cert/--key` given, but every listener is plain `ws://`.
    #[error("--cert {cert} was given but no listener is wss://: add e.g. --listen wss://0.0.0.0:8443, or drop --cert/--key")]
    CertWithoutWss {
        /// The certificate file given.
        cert: PathBuf,
    },
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// `--subprotocol` is not an HTTP token (RFC 6455 §4.1 / RFC 7230 §3.2.6).
    #[error(
        "--subprotocol {name:?} is not a valid token: use letters, digits and !#$%&'*+-.^_`|~ only"
    )]
    BadSubprotocol {
        /// The name given.
        name: String,
    },
    /// `--auth-token` is empty or holds characters a header value cannot carry.
    #[error("--auth-token must be non-empty visible ASCII without spaces (it is sent as `Authorization: Bearer <token>`)")]
    BadAuthToken,
    /// `--allow-origin` is empty or holds characters a header value cannot carry.
    #[error("--allow-origin {origin:?} is not a valid origin: write it as the browser sends it, e.g. https://example.com")]
    BadOrigin {
        /// The origin given.
        origin: String,
    },
    /// `--raw-tcp` with a `wss://` listener: the raw floor has no TLS to measure.
    #[error(
        "--raw-tcp echoes plain TCP: {spec} is not ws:// (the raw floor is measured without TLS)"
    )]
    RawTcpWithWss {
        /// The wss listener given.
        spec: ListenSpec,
    },
    /// `--ping-timeout` given while heartbeats are off.
    #[error("--ping-timeout needs --ping-interval (heartbeats are off)")]
    PingTimeoutWithoutInterval,
}
