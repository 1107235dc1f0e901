//! wsport-reference: the calibration servers. Echo servers written the way each crate's own
//! examples write them — tokio-tungstenite and fastwebsockets, each on one tokio
//! current_thread runtime with TCP_NODELAY — so a reader can see that wsport's servers are not
//! handicapped against code people already use (see DESIGN.md, "Every figure is explained").
//!
//! They take the few flags `scripts/run-bench.sh` passes (`--listen ws://HOST:PORT`,
//! `--threads 1`, `--cpus LIST`, `--no-pin`), bind through `wsport_server_common::socket`
//! (so a taken or privileged port fails with the same one-line error as every wsport server)
//! and print the same `listening ws://...` lines. Anything else is refused in one line: a
//! reference that silently ignored `--idle-timeout` would measure something else than asked.
#![forbid(unsafe_code)]

use std::future::Future;
use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use wsport_server_common::units::parse_cpu_list;
use wsport_server_common::{affinity, announce, socket, BindError, ListenSpec, Scheme};

/// Why a reference server cannot start. Each displays as one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A flag it does not take, or a value it does not support (the message says which).
    #[error("{0}")]
    Usage(String),
    /// A listener could not be bound (port taken, privileged, not an address of this host).
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The tokio runtime or a listener's registration with it failed.
    #[error("starting the runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// Pinning to the `--cpus` entry failed.
    #[error("cannot pin to CPU {cpu}: {source}")]
    Pin {
        /// The CPU asked for.
        cpu: usize,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The flags a reference server takes: the subset of wsport's that run-bench passes.
#[derive(Parser, Debug)]
struct Args {
    /// Where to listen: ws://HOST:PORT (repeatable; port 0 picks a free port).
    #[arg(long = "listen", value_name = "URL", required = true)]
    listen: Vec<ListenSpec>,
    /// Runtimes: only 1 (a reference is one current_thread runtime, as its examples run).
    #[arg(long, value_name = "N", default_value_t = 1)]
    threads: usize,
    /// CPU to pin the runtime thread to (the first of the list).
    #[arg(long, value_name = "LIST", value_parser = parse_cpu_list, conflicts_with = "no_pin")]
    cpus: Option<::std::vec::Vec<usize>>,
    /// Do not pin.
    #[arg(long)]
    no_pin: bool,
}

/// A reference server's whole life: set up ([`listeners`]), then one tokio current_thread
/// runtime accepting on every listener and running `connection` on each accepted stream (with
/// TCP_NODELAY) in a task of its own, until the process is killed. Errors are one line on
/// stderr, prefixed with `name`.
pub fn run<F, Fut>(name: &str, connection: F) -> ExitCode
where
    F: Fn(tokio::net::TcpStream) -> Fut + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let result = listeners().and_then(|listeners| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, serve(listeners, connection, name.to_owned()))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve<F, Fut>(
    listeners: Vec<TcpListener>,
    connection: F,
    name: String,
) -> Result<(), SetupError>
where
    F: Fn(tokio::net::TcpStream) -> Fut + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    for listener in listeners {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let (connection, name) = (connection.clone(), name.clone());
        tokio::task::spawn_local(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        // Echo replies are small: they must not wait for Nagle.
                        let _ = stream.set_nodelay(true);
                        tokio::task::spawn_local(connection(stream));
                    }
                    Err(error) => {
                        // EMFILE and friends: back off instead of spinning.
                        eprintln!("{name}: accept failed: {error}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
    }
    std::future::pending().await
}

/// Parse the command line, pin this thread, bind every `--listen` and announce it: the
/// listeners, nonblocking, ready for the runtime. `--help` and `--version` exit here.
pub fn listeners() -> Result<Vec<TcpListener>, SetupError> {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => e.exit(),
        // clap's error is several lines (usage, hint); run-bench reports a server's first line.
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            return Err(SetupError::Usage(
                first.trim_start_matches("error: ").to_owned(),
            ));
        }
    };
    check(&args)?;
    if let Some(&cpu) = args.cpus.as_ref().and_then(|c| c.first()) {
        affinity::pin_current_thread(cpu).map_err(|source| SetupError::Pin { cpu, source })?;
    }
    bind(&args.listen)
}

fn check(args: &Args) -> Result<(), SetupError> {
    if args.threads != 1 {
        return Err(SetupError::Usage(format!(
            "a reference runs one current_thread runtime: --threads {} is not supported (use 1)",
            args.threads
        )));
    }
    if let Some(spec) = args.listen.iter().find(|s| s.scheme != Scheme::Ws) {
        return Err(SetupError::Usage(format!(
            "a reference serves ws:// only: {spec} is not supported"
        )));
    }
    Ok(())
}

/// Binds through the same code as the wsport servers, so ports fail alike, and announces the
/// real ports.
fn bind(specs: &[ListenSpec]) -> Result<Vec<TcpListener>, SetupError> {
    let mut bound = Vec::with_capacity(specs.len());
    for spec in specs {
        let (spec, listener) = socket::bind_one_listener(*spec, socket::DEFAULT_BACKLOG)?;
        announce(&spec);
        bound.push(listener);
    }
    Ok(bound)
}
