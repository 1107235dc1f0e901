//! wsport-server-common: the runtime-free parts every wsport server binary shares.
//!
//! The servers (tokio on epoll, tokio-uring and monoio on io_uring) differ only in how they
//! drive IO; everything a user can see from outside — flags, listeners, TLS, limits, counters,
//! the stats lines and shutdown — lives here, so that the servers are interchangeable and the
//! benchmark compares runtimes, not feature sets. No runtime crate is a dependency: each
//! server calls these functions from its own idiom. The one `async` part,
//! [`deadline::Timer`], is std-only and generic over the runtime's sleep.
//!
//! A server's `main`, top down:
//! 1. flatten [`ServerArgs`] into its own clap parser, call [`ServerArgs::into_config`];
//! 2. [`bind_listeners`] (one SO_REUSEPORT listener per listen spec per thread), then
//!    [`announce`] each spec — tests wait for those `listening ...` lines;
//! 3. [`Shutdown::install`], one [`Counters`] per runtime thread, optionally
//!    [`spawn_stats_printer`];
//! 4. per thread: [`pin_current_thread`] (if [`ServerConfig::pin`] says so), start the
//!    runtime, accept, [`configure_stream`] each connection, drive it with [`session`];
//! 5. on shutdown: [`print_final`].
//!
//! Modules, one job each:
//! - [`cli`]: the shared flags ([`ServerArgs`]) and their validation into a [`ServerConfig`],
//! - [`config`]: [`ServerConfig`], the validated plain-data result, and [`ConfigError`],
//! - [`units`]: parsers for durations, byte sizes and CPU lists used by the flags,
//! - [`listen`]: `ws://` / `wss://` listen URLs ([`ListenSpec`]) and the readiness line,
//! - [`tls`]: the rustls server configuration, from PEM files or self-signed,
//! - [`socket`]: binding listeners (probe for a stale holder, SO_REUSEPORT, backlog),
//! - [`affinity`]: pinning threads to cores,
//! - [`limits`]: raising RLIMIT_NOFILE to the hard limit,
//! - [`counters`]: per-thread counters and the JSON stats lines,
//! - [`deadline`]: one lazily armed timer per connection for all its deadlines,
//! - [`faults`]: the hidden `--debug-*` faults, chosen once per connection,
//! - [`shutdown`]: SIGINT/SIGTERM as a flag the runtimes poll,
//! - [`ending`]: how a connection ends (linger, forced close) and how a thread drains,
//! - [`session`]: driving one connection (TLS + WebSocket) over caller-owned buffers,
//! - [`tls_layer`]: wss's byte layer, rustls' unbuffered API over the connection buffer,
//! - [`hub`], [`publish`]: `--broadcast`, one process-wide fan-out for every runtime.
#![warn(missing_docs)]

#[allow(unsafe_code)]
pub mod affinity;
pub mod budget;
pub mod cli;
pub mod closing;
pub mod config;
pub mod counters;
pub mod deadline;
pub mod ending;
pub mod faults;
pub mod fired;
pub mod hub;
#[allow(unsafe_code)]
pub mod limits;
pub mod listen;
pub mod process;
pub mod publish;
pub mod session;
pub mod shutdown;
pub mod socket;
#[cfg(test)]
mod test_config;
#[cfg(test)]
mod test_wakers;
pub mod tls;
pub mod tls_layer;
pub mod units;
#[allow(unsafe_code)]
pub mod uring;

pub use affinity::{allowed_cpus, pin_current_thread};
pub use cli::ServerArgs;
pub use config::{ConfigError, ServerConfig};
pub use counters::{
    print_final, snapshot, spawn_stats_printer, ConnectionLimit, ConnectionPermit, Counters,
    ErrorKind, ErrorStats, Stats, StatsKind,
};
pub use listen::{announce, ListenSpec, ListenSpecError, Scheme};
pub use shutdown::Shutdown;
pub use socket::{bind_listeners, configure_stream, BindError, PortHolder};
pub use tls::TlsSetupError;
pub use units::ValueError;
