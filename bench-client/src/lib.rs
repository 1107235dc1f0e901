//! wsport-bench: a WebSocket load generator built to cost less per message than the servers it
//! measures, so that what it reports is the server's limit, not its own.
//!
//! Workloads ([`Command`]): `echo` (closed loop), `rate` (open loop, coordinated-omission
//! corrected; with `--slo`, a search for the highest rate meeting latency objectives, in
//! [`slo`]), `hold` (idle connections with heartbeats, server memory per connection) and
//! `connect` (connection storm, phases timed separately). All four are one worker loop with a
//! different pacing ([`cli::Pacing`]); see the crate README for the options and the JSON.
//!
//! Layout, top down (no module imports one above it; `scripts/check-module-cycles.sh`):
//! - [`run`] / [`run_with_stop`] (this file): one run, or the `--slo` search ([`slo`]);
//! - [`run`](mod@run): validate the options into a [`cli::Plan`], raise the descriptor limit,
//!   choose the engine, start one worker thread per `--threads`, start every worker's window
//!   at the same instant, collect the per-second intervals (progress, `--hlog`), sample server
//!   and client CPU at the window's edges, and build the [`Report`];
//! - [`uring`] and [`epoll`]: the two engines, each a loop that moves bytes for the worker;
//! - [`worker`]: a worker's phases, clock and interval histograms, whatever the engine;
//! - [`conn`]: one connection's state machine (TLS, upgrade, frames, verification) over
//!   buffers it owns, driven identically by both engines, seeing its worker as a [`ctx::Ctx`];
//! - [`report`], [`hlog`], [`meta`]: the outputs; [`sys`]: /proc, rlimits, sockets;
//!   [`syscalls`]: a process's system calls by call, from perf tracepoints;
//!   [`source`]: `--source-ip` and the ephemeral-port arithmetic.
//!
//! The reports of a directory of runs (summary.md, plots, compare) are the separate crate
//! `wsport-bench-report`, which the binary calls; nothing here imports it.
//!
//! Handshakes, framing and masking come from the sans-IO `wsport-core`, as in the servers.
#![warn(missing_docs)]

pub mod broadcast;
pub mod cli;
pub mod conn;
pub mod core_rtt;
pub mod ctx;
pub mod endings;
#[allow(unsafe_code)]
pub mod epoll;
pub mod error;
pub mod hists;
pub mod hlog;
#[allow(unsafe_code)]
pub mod kernel_mem;
pub mod maxconn;
pub mod meta;
pub mod objectives;
pub mod report;
pub mod run;
pub mod slo;
pub mod slo_record;
pub mod source;
pub mod stop;
#[allow(unsafe_code)]
pub mod sys;
#[allow(unsafe_code)]
pub mod syscalls;
pub mod tls;
#[allow(unsafe_code)]
pub mod uring;
pub mod wake;
mod window_calls;
pub mod worker;

pub use cli::{Command, Opts};
pub use error::{BenchError, Cause, ConnError, OutputError};
pub use report::Report;
pub use stop::Stop;
pub use wsport_bench_record::SEND_LAG_LIMIT_NS;

/// Run the workload of `opts` to its end.
pub fn run(opts: &Opts) -> Result<Report, BenchError> {
    run_with_stop(opts, &Stop::new())
}

/// Run the workload of `opts`; raising `stop` ends it early with results.
///
/// `Err` only when nothing could be measured (bad options, a connection that could not be
/// opened, Ctrl-C before the start). Output files that fail to be written are in
/// [`Report::output_errors`], beside intact results. `rate --slo` runs one trial after another
/// ([`slo`]) and reports them all in [`Report::slo`].
pub fn run_with_stop(opts: &Opts, stop: &Stop) -> Result<Report, BenchError> {
    match &opts.command {
        Command::Rate(args) if args.slo.is_some() => {
            let slo = args.slo.as_ref().expect("matched");
            slo::search(opts, args, slo, stop)
        }
        _ => run::run_once(opts, stop),
    }
}
