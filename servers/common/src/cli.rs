//! The flags every server takes, identical for all of them.
//!
//! A server flattens [`ServerArgs`] into its own clap parser (adding its own flags such as
//! `--flavor` or `--driver`) and calls [`ServerArgs::into_config`]. clap checks each value's
//! syntax as it parses; `into_config` checks how the values fit together, applies defaults
//! that depend on the host (CPU list, `WSPORT_LISTEN`) and loads or generates the TLS
//! certificate.
//!
//! ```
//! use clap::Parser;
//! use wsport_server_common::ServerArgs;
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     server: ServerArgs,
//! }
//!
//! let cli = Cli::parse_from(["server", "--listen", "ws://127.0.0.1:0", "--no-pin"]);
//! let config = cli.server.into_config().unwrap();
//! assert_eq!(config.listeners[0].to_string(), "ws://127.0.0.1:0");
//! ```

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::affinity::allowed_cpus;
use crate::config::{ConfigError, DebugFaults, ServerConfig};
use crate::listen::{resolve_listeners, ListenSpec, Scheme, LISTEN_ENV};
use crate::tls;
use crate::units::{parse_cpu_list, parse_duration, parse_size};

/// `--max-connections` when not given: over it a server answers 503.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;

/// The shared server flags; [`into_config`](Self::into_config) validates them.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Where to listen: ws://HOST:PORT or wss://HOST:PORT (HOST: an IPv4 address, an IPv6 one
    /// in brackets, or localhost; port 0 picks a free port). Repeatable. Without it, the comma-separated URLs in $WSPORT_LISTEN,
    /// else ws://0.0.0.0:8080.
    #[arg(long = "listen", value_name = "URL")]
    pub listen: Vec<ListenSpec>,

    /// Number of runtimes, one thread each, each with its own SO_REUSEPORT listener.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,

    /// CPUs to pin thread i to (cpus[i % len]), e.g. 0,2-3. Default: the CPUs this process
    /// may run on, in order.
    #[arg(long, value_name = "LIST", value_parser = parse_cpu_list, conflicts_with = "no_pin")]
    // The full path keeps clap from reading `Option<Vec<_>>` as a repeatable flag: one
    // occurrence carries the whole list.
    pub cpus: Option<::std::vec::Vec<usize>>,

    /// Do not pin threads to CPUs.
    #[arg(long)]
    pub no_pin: bool,

    /// PEM certificate chain for wss:// listeners (leaf first). Without --cert/--key, a
    /// self-signed certificate for localhost, 127.0.0.1 and ::1 is generated at start.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Time from accept to a complete upgrade request (TLS included), e.g. 10s, 500ms.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "10s")]
    pub handshake_timeout: Duration,

    /// Close connections silent for this long; 0 = never.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "300s")]
    pub idle_timeout: Duration,

    /// Largest upgrade request (request line + headers); larger gets HTTP 431.
    #[arg(long, value_name = "N", value_parser = parse_size, default_value = "8192")]
    pub max_header_bytes: u64,

    /// Largest frame payload; larger gets close 1009. Accepts 16KiB, 16MiB, ...
    #[arg(long, value_name = "N", value_parser = parse_size, default_value = "16MiB")]
    pub max_frame_bytes: u64,

    /// Largest reassembled message; larger gets close 1009.
    #[arg(long, value_name = "N", value_parser = parse_size, default_value = "64MiB")]
    pub max_message_bytes: u64,

    /// Most connections open at once in this process; more are refused.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Accept only this Origin (repeatable); others, or none, get HTTP 403.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origins: Vec<String>,

    /// Require `Authorization: Bearer TOKEN`, else HTTP 401.
    #[arg(long, value_name = "TOKEN")]
    pub auth_token: Option<String>,

    /// Subprotocol the server speaks (repeatable): the first one the client offers that is listed is chosen.
    #[arg(long = "subprotocol", value_name = "NAME")]
    pub subprotocols: Vec<String>,

    /// Ping clients silent for this long; 0 = no heartbeats.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "0")]
    pub ping_interval: Duration,

    /// Close if the pong does not come within this long. Default: the ping interval.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub ping_timeout: Option<Duration>,

    /// Print a JSON stats line to stdout this often; 0 = never.
    #[arg(long = "stats", value_name = "DUR", value_parser = parse_duration)]
    pub stats: Option<Duration>,

    /// How long graceful shutdown waits for clients to answer the close frame.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "2s")]
    pub shutdown_timeout: Duration,

    /// listen(2) backlog of each listener.
    #[arg(long, value_name = "N", default_value_t = crate::socket::DEFAULT_BACKLOG.into())]
    pub backlog: i64,

    /// Raw TCP echo, for measuring the runtime's floor: the same accept and read/write loop
    /// with no WebSocket session — every byte read is written back as it came (no handshake,
    /// no frames, no timeouts). ws:// listeners only.
    #[arg(long, conflicts_with = "broadcast")]
    pub raw_tcp: bool,

    /// Broadcast instead of echo: every data message a connection sends is sent to every
    /// other open connection, on all threads, in the order the server received them; the
    /// sender gets no echo. A receiver more than 4 MiB of messages behind is closed with 1008.
    #[arg(long)]
    pub broadcast: bool,

    /// DEBUG ONLY, to prove the benchmark: every DUR, block the runtime thread that serves the
    /// next read for --debug-stall-for (a GC pause or a blocking call). Off by default.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, hide = true, requires = "debug_stall_for")]
    pub debug_stall_every: Option<Duration>,

    /// DEBUG ONLY: how long each --debug-stall-every stall lasts.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, hide = true, requires = "debug_stall_every")]
    pub debug_stall_for: Option<Duration>,

    /// DEBUG ONLY, to prove a regression gate: burn this much CPU per message echoed (an
    /// injected slowdown). Off by default.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, hide = true)]
    pub debug_spin_per_message: Option<Duration>,

    /// DEBUG ONLY, to prove the instruction-count gate: N rounds of integer arithmetic per
    /// message echoed (an injected cost in user-space instructions, independent of time).
    #[arg(long, value_name = "N", hide = true)]
    pub debug_work_per_message: Option<u32>,
}

impl ServerArgs {
    /// Validates the flags and resolves them into a [`ServerConfig`]: reads `WSPORT_LISTEN`
    /// when no `--listen` was given, resolves the CPU of each thread against this process's
    /// affinity mask, and loads `--cert/--key` or generates a self-signed certificate (saying
    /// so on stderr) when a `wss://` listener needs one.
    pub fn into_config(self) -> Result<ServerConfig, ConfigError> {
        let env = match std::env::var(LISTEN_ENV) {
            Ok(value) => Some(value),
            Err(std::env::VarError::NotPresent) => None,
            // Not UTF-8: pass it on lossily so the parse error quotes it rather than ignoring it.
            Err(std::env::VarError::NotUnicode(raw)) => Some(raw.to_string_lossy().into_owned()),
        };
        self.into_config_with_env(env.as_deref())
    }

    /// [`into_config`](Self::into_config) with the value of `WSPORT_LISTEN` passed in rather
    /// than read from the environment (for tests, and for callers that took it elsewhere).
    pub fn into_config_with_env(
        self,
        listen_env: Option<&str>,
    ) -> Result<ServerConfig, ConfigError> {
        let listeners =
            resolve_listeners(self.listen, listen_env).map_err(ConfigError::ListenEnv)?;
        check_unique(&listeners)?;

        let threads = at_least_one("--threads", self.threads as u64)? as usize;
        let pin = if self.no_pin {
            None
        } else {
            Some(resolve_pinning(
                threads,
                self.cpus.as_deref(),
                &allowed_cpus(),
            )?)
        };

        if self.handshake_timeout.is_zero() {
            return Err(out_of_range("--handshake-timeout", "greater than 0", "0"));
        }
        let max_header_bytes = at_least_one("--max-header-bytes", self.max_header_bytes)?;
        let max_header_bytes = usize::try_from(max_header_bytes)
            .map_err(|_| out_of_range("--max-header-bytes", "addressable", max_header_bytes))?;
        let max_frame_bytes = at_least_one("--max-frame-bytes", self.max_frame_bytes)?;
        let max_message_bytes = at_least_one("--max-message-bytes", self.max_message_bytes)?;
        let max_connections =
            at_least_one("--max-connections", self.max_connections as u64)? as usize;
        let backlog = i32::try_from(self.backlog)
            .ok()
            .filter(|b| *b > 0)
            .ok_or_else(|| out_of_range("--backlog", "from 1 to 2147483647", self.backlog))?;

        for origin in &self.allow_origins {
            if !is_header_value(origin) {
                return Err(ConfigError::BadOrigin {
                    origin: origin.clone(),
                });
            }
        }
        if let Some(token) = &self.auth_token {
            if !is_header_value(token) {
                return Err(ConfigError::BadAuthToken);
            }
        }
        for name in &self.subprotocols {
            if !is_token(name) {
                return Err(ConfigError::BadSubprotocol { name: name.clone() });
            }
        }

        let ping_interval = non_zero(self.ping_interval);
        let ping_timeout = match (ping_interval, self.ping_timeout) {
            (None, Some(t)) if !t.is_zero() => return Err(ConfigError::PingTimeoutWithoutInterval),
            (None, _) => Duration::ZERO,
            (Some(interval), None) => interval,
            (Some(_), Some(t)) if t.is_zero() => {
                return Err(out_of_range("--ping-timeout", "greater than 0", "0"))
            }
            (Some(_), Some(t)) => t,
        };

        if let Some(spec) = listeners
            .iter()
            .find(|l| self.raw_tcp && l.scheme == Scheme::Wss)
        {
            return Err(ConfigError::RawTcpWithWss { spec: *spec });
        }

        // Last, so a certificate is not generated (and announced) for a config refused anyway.
        let any_wss = listeners.iter().any(|l| l.scheme == Scheme::Wss);
        let tls = match (self.cert, self.key) {
            (Some(cert), Some(_)) if !any_wss => return Err(ConfigError::CertWithoutWss { cert }),
            (Some(cert), Some(key)) => Some(tls::from_pem_files(&cert, &key)?),
            (Some(_), None) => {
                return Err(ConfigError::CertKeyPair {
                    given: "--cert",
                    missing: "--key",
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError::CertKeyPair {
                    given: "--key",
                    missing: "--cert",
                })
            }
            (None, None) if any_wss => {
                let config = tls::from_self_signed()?;
                let _ = writeln!(
                    std::io::stderr(),
                    "wsport: no --cert/--key given: serving wss:// with a self-signed certificate \
                     generated for {}",
                    tls::SELF_SIGNED_NAMES.join(", ")
                );
                Some(config)
            }
            (None, None) => None,
        };

        Ok(ServerConfig {
            listeners,
            threads,
            pin,
            tls,
            handshake_timeout: self.handshake_timeout,
            idle_timeout: non_zero(self.idle_timeout),
            max_header_bytes,
            max_frame_bytes,
            max_message_bytes,
            max_connections,
            allow_origins: self.allow_origins,
            auth_token: self.auth_token,
            subprotocols: self.subprotocols,
            ping_interval,
            ping_timeout,
            stats_interval: self.stats.and_then(non_zero),
            shutdown_timeout: self.shutdown_timeout,
            backlog,
            debug: DebugFaults {
                stall: self.debug_stall_every.zip(self.debug_stall_for),
                spin_per_message: self.debug_spin_per_message.filter(|d| !d.is_zero()),
                work_per_message: self.debug_work_per_message.filter(|n| *n > 0),
            },
            raw_tcp: self.raw_tcp,
            broadcast: self.broadcast,
        })
    }
}

/// Chooses the CPU of each thread: `cpus[i % len]` when `--cpus` was given (each must be in
/// `allowed`), else `allowed[i % len]`. With more threads than CPUs, threads share CPUs
/// round-robin rather than fail: an oversubscribed run is still a valid (if unusual) run.
pub fn resolve_pinning(
    threads: usize,
    cpus: Option<&[usize]>,
    allowed: &[usize],
) -> Result<Vec<usize>, ConfigError> {
    let chosen: &[usize] = match cpus {
        Some(list) => {
            if list.is_empty() {
                return Err(out_of_range("--cpus", "a non-empty list", "an empty list"));
            }
            if let Some(&cpu) = list.iter().find(|c| !allowed.contains(c)) {
                return Err(ConfigError::CpuNotAllowed {
                    cpu,
                    allowed: format_cpu_list(allowed),
                });
            }
            list
        }
        None if allowed.is_empty() => {
            return Err(out_of_range(
                "the CPU affinity mask",
                "non-empty (check taskset/cgroups) or pass --no-pin",
                "empty",
            ))
        }
        None => allowed,
    };
    Ok((0..threads).map(|i| chosen[i % chosen.len()]).collect())
}

/// Formats CPUs as a compact list (`0-3,6`), as `taskset -c` prints them.
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(",")
    }
}

fn check_unique(listeners: &[ListenSpec]) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for spec in listeners {
        // Port 0 asks for a fresh port each time, so repeating it is fine.
        if spec.addr.port() != 0 && !seen.insert(spec.addr) {
            return Err(ConfigError::DuplicateListen { addr: spec.addr });
        }
    }
    Ok(())
}

fn non_zero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

fn at_least_one(flag: &'static str, n: u64) -> Result<u64, ConfigError> {
    if n == 0 {
        return Err(out_of_range(flag, "at least 1", 0));
    }
    Ok(n)
}

fn out_of_range(flag: &'static str, expect: &'static str, got: impl ToString) -> ConfigError {
    ConfigError::OutOfRange {
        flag,
        expect,
        got: got.to_string(),
    }
}

/// Visible ASCII, no spaces: what survives as one header value and compares byte for byte.
fn is_header_value(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

/// An HTTP token (RFC 7230 §3.2.6), which RFC 6455 §4.1 requires of subprotocol names.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
