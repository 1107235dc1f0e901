//! The two error layers: [`BenchError`] stops a run; [`ConnError`] ends one connection and is
//! counted by its [`Cause`].
//!
//! A connection that fails while the connections are being opened stops the run with
//! [`BenchError::Setup`]: a benchmark with fewer connections than asked for is not the one
//! asked for, and the first failure is the one worth reading. Once the run is going, failures
//! are counted by cause and the run goes on with the connections left.

use std::fmt;
use std::io;
use std::path::PathBuf;

use serde::Serialize;

/// Why a run could not be done (or started).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The options contradict each other or are out of range.
    #[error("{0}")]
    Usage(String),
    /// A `--url` that cannot be used.
    #[error("--url {url}: {why}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// RLIMIT_NOFILE's hard limit is below what the connections need.
    #[error(
        "{connections} connections need about {need} file descriptors, but the hard limit \
         (RLIMIT_NOFILE) is {hard}: raise it (`ulimit -Hn`, `LimitNOFILE=` under systemd, \
         /etc/security/limits.conf) or ask for fewer connections"
    )]
    TooFewFiles {
        /// `-c`.
        connections: usize,
        /// Descriptors needed.
        need: u64,
        /// The hard limit.
        hard: u64,
    },
    /// More connections to one target than its source addresses have ephemeral ports.
    #[error(
        "{connections} connections to {target} need more local ports than {sources} source \
         address(es) have: the ephemeral range (/proc/sys/net/ipv4/ip_local_port_range) is \
         {range}, {ports} ports per source address and target; spread the connections over at \
         least {needed} loopback addresses with --source-ip (e.g. --source-ip {example}), or add \
         targets"
    )]
    TooFewPorts {
        /// Connections to that target.
        connections: usize,
        /// The target address.
        target: std::net::SocketAddr,
        /// Source addresses (1 without --source-ip).
        sources: usize,
        /// Ephemeral ports per source address.
        ports: usize,
        /// The range as configured.
        range: String,
        /// Source addresses that would do.
        needed: usize,
        /// A `--source-ip` value with that many.
        example: String,
    },
    /// `--engine io-uring` where io_uring cannot be used.
    #[error("--engine io-uring: {0}")]
    UringUnavailable(String),
    /// The TLS client configuration cannot be built (`--ca` unreadable, no trust store).
    #[error("wss: {0}")]
    Tls(String),
    /// A connection failed while the connections were being opened.
    #[error("connection {conn} to {url}: {error}")]
    Setup {
        /// Index of the connection (0-based).
        conn: usize,
        /// Its URL.
        url: String,
        /// What happened.
        error: ConnError,
    },
    /// Not every connection was open within `--connect-timeout`.
    #[error("{pending} of {total} connections were still opening after --connect-timeout {timeout:?}; one of them, to {url}, was {phase}")]
    SetupTimeout {
        /// Connections not yet open.
        pending: usize,
        /// Connections asked for.
        total: usize,
        /// `--connect-timeout`.
        timeout: std::time::Duration,
        /// The URL of one pending connection.
        url: String,
        /// Where it was stuck, and the likely reason.
        phase: &'static str,
    },
    /// Interrupted (Ctrl-C) before the connections were open; nothing was measured.
    #[error("interrupted before the run started")]
    Interrupted,
    /// A system call the engine needs at start failed (ring or epoll setup, thread spawn).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: io::Error,
    },
    /// A worker thread panicked (a bug).
    #[error("worker {0} panicked; this is a bug in wsport-bench")]
    WorkerPanic(usize),
}

impl BenchError {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}

/// An output file that could not be written; the run's results are still returned.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct OutputError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: io::Error,
}

/// Why one connection ended before the run did. `detail` is the sentence a person reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ConnError {
    /// The counted cause.
    pub cause: Cause,
    /// What exactly happened, e.g. "nothing listens on 127.0.0.1:8080 (connection refused)".
    pub detail: String,
}

impl ConnError {
    pub(crate) fn new(cause: Cause, detail: impl Into<String>) -> Self {
        Self {
            cause,
            detail: detail.into(),
        }
    }
}

/// What ended a connection; the keys of `errors` in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Cause {
    /// TCP connect refused: nothing listens on the port.
    Refused,
    /// TCP connect failed otherwise (unreachable, timed out, no local ports).
    Connect,
    /// wss:// to a port that does not speak TLS.
    NotTls,
    /// The TLS handshake or a TLS record failed (certificate, alert, bad record).
    Tls,
    /// ws:// to a port that answered with TLS.
    NotWebSocket,
    /// The server answered the upgrade with a status other than 101.
    Rejected,
    /// The 101 answer was invalid (bad accept key, missing headers) or never came.
    Handshake,
    /// The server reset the connection (ECONNRESET, EPIPE).
    Reset,
    /// The server closed TCP without a WebSocket close frame.
    Eof,
    /// The server sent a close frame while messages were flowing.
    ClosedByServer,
    /// The server broke RFC 6455 framing (masked frame, bad opcode, bad UTF-8).
    Protocol,
    /// The server sent something the echo workload never asked for (an extra or fragmented
    /// message, a frame larger than the buffer).
    Unexpected,
    /// Any other socket error.
    Io,
}

impl Cause {
    /// The key used in the report, e.g. `refused`.
    pub fn key(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Connect => "connect",
            Self::NotTls => "not_tls",
            Self::Tls => "tls",
            Self::NotWebSocket => "not_websocket",
            Self::Rejected => "rejected",
            Self::Handshake => "handshake",
            Self::Reset => "reset",
            Self::Eof => "eof",
            Self::ClosedByServer => "closed_by_server",
            Self::Protocol => "protocol",
            Self::Unexpected => "unexpected",
            Self::Io => "io",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}
