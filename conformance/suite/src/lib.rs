//! wsport-conformance: the behaviour every wsport server must show, written once and run
//! against every server binary.
//!
//! # Running
//!
//! ```text
//! # cargo test does not build other packages' binaries: build the servers first
//! cargo build -p wsport-tokio -p wsport-tokio-uring -p wsport-monoio
//! cargo test -p wsport-conformance         # every config whose binary exists in target/debug
//! WSPORT_SERVERS=tokio,monoio-epoll cargo test -p wsport-conformance
//! WSPORT_CASES=close_code cargo test -p wsport-conformance --test close -- --nocapture
//! scripts/stress.sh                        # the #[ignore]d stress test, tests/stress.rs
//! ```
//!
//! - `WSPORT_SERVERS`: comma list of config names from [`config::KNOWN`]; a listed binary
//!   that is missing fails with "build it first". Without it: every config whose binary
//!   exists; none at all is an error too.
//! - `WSPORT_BIN_DIR`: where binaries are (default: the test's own `target/<profile>/`).
//! - `WSPORT_CASES`: comma list of substrings of case names to run (default: all).
//! - `WSPORT_PARALLEL`: cases run at once per server (default 8).
//!
//! io_uring configs are skipped, with a `SKIP` line on stderr, where `io_uring_setup(2)`
//! fails.
//!
//! # Shape
//!
//! One test function starts one server per config (with whatever flags its cases need) and
//! runs a list of cases, each a plain `fn(&Endpoint) -> Outcome`, on every listener, ws and
//! wss. A case returns `Err("expected ...; got ...; sent: ...")`; the runner prefixes config,
//! endpoint and case name, and the test panics once with all failures.
//!
//! Clients are independent of wsport-core: tungstenite ([`ws`]) and a raw client ([`raw`])
//! over the harnesses' own frame codec ([`frame`], from wsport-harness) that can send
//! anything, including what a server must reject.

pub mod config;
pub mod http;
pub mod raw;
pub mod run;
pub mod server;
pub mod stress;
pub mod tcp;
pub mod tls;
pub mod ws;

/// The client frame codec, shared with wsport-autobahn.
pub use wsport_harness::frame;

use std::fmt::Display;

/// What a case returns: `Err` carries the full explanation.
pub type Outcome = Result<(), String>;

/// Attach what was being done to an error: `.context("connecting")?`.
pub trait Context<T> {
    fn context(self, what: impl Display) -> Result<T, String>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn context(self, what: impl Display) -> Result<T, String> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// Everything a test file needs.
pub mod prelude {
    pub use crate::config::ServerConfig;
    pub use crate::frame::{opcode, Frame, ServerFrame};
    pub use crate::http::{check_switching, Request, Response};
    pub use crate::raw::{Event, RawConn, READ_TIMEOUT};
    pub use crate::run::{
        collect, for_each_server, for_each_server_that, run_cases, run_cases_on, run_server_case,
        within, Case,
    };
    pub use crate::server::{json_line, Endpoint, Launch, Scheme, Server};
    pub use crate::{cases, ensure, ws, Context, Outcome};
    pub use std::time::{Duration, Instant};
    pub use tungstenite::Message;
}

#[cfg(test)]
mod tests;
