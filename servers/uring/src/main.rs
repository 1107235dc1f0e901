//! wsport-uring: the WebSocket echo server directly on io_uring (the `io-uring` crate), with
//! the features the io_uring runtimes do not expose: multishot accept, multishot receive into
//! a provided-buffer ring per thread, registered (direct) descriptors,
//! `SINGLE_ISSUER | DEFER_TASKRUN`, and every operation of a loop iteration submitted in one
//! `io_uring_enter`. Each feature has a `--no-*` flag, to measure what it is worth.
//!
//! Thread-per-core: `--threads N` threads, each pinned when asked, each with its own ring and
//! its own SO_REUSEPORT listeners. No async runtime: each thread is one loop over completions
//! (`worker`), driving the same `Session` (TLS and WebSocket, no IO) as every other server, so
//! wss needs no glue of its own: the session takes ciphertext and gives ciphertext back.
//!
//! Modules, one job each: `features` (the flags, the kernel check, the start line), `ring`
//! (setup and the one enter per iteration), `bufring` (the provided buffers), `worker` (the
//! loop, timers firing, shutdown), `accept`, `io` (a connection's receives, replies and
//! ending), `conn` (a connection's state and buffers), `timers` (the per-thread timer queue).

#[allow(unsafe_code)]
mod accept;
#[allow(unsafe_code)]
mod bufring;
mod conn;
#[allow(unsafe_code)]
mod deliver;
mod error;
#[allow(unsafe_code)]
mod fanout;
mod features;
#[allow(unsafe_code)]
mod io;
#[allow(unsafe_code)]
mod ring;
mod spills;
mod timers;
#[allow(unsafe_code)]
mod worker;

use std::process::ExitCode;
use std::sync::{mpsc, Arc};

use anyhow::{anyhow, Context};
use clap::Parser;
use wsport_server_common::cli::ServerArgs;
use wsport_server_common::faults::{Faults, NoFaults};
use wsport_server_common::process::{self, Process, RuntimeThread};
use wsport_server_common::{socket, uring};

use crate::features::{FeatureArgs, Features};
use crate::worker::Worker;

#[derive(Parser, Debug)]
#[command(
    name = "wsport-uring",
    version,
    about = "WebSocket echo server directly on io_uring (multishot, buffer rings, registered files)"
)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    features: FeatureArgs,
}

/// What each thread reports once it started: its ring's DEFER_TASKRUN, or why it could not.
type Ready = anyhow::Result<bool>;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wsport-uring: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    // Before binding anything: io_uring refused (seccomp, sysctl), or a kernel without a
    // feature asked for, is one line saying why and what to do.
    uring::probe()?;
    let features = Features::from(args.features);
    features.check_kernel(&features::kernel_release())?;
    let config = Arc::new(args.server.into_config()?);
    let listeners = socket::bind_listeners(&config)?;
    let process = Process::new(config).context("installing signal handlers")?;
    let specs = process::specs(&listeners);
    let (ready_tx, ready_rx) = mpsc::channel();
    let threads = process
        .spawn("wsport-uring", listeners, move |thread| {
            run_thread(thread, features, ready_tx.clone())
        })
        .context("spawning runtime threads")?;
    let defer_taskrun = match wait_ready(&ready_rx, threads.len()) {
        Ok(defer_taskrun) => defer_taskrun,
        Err(error) => {
            process.shared().shutdown.request();
            for thread in threads {
                let _ = thread.join();
            }
            return Err(error);
        }
    };
    eprintln!(
        "wsport-uring: io_uring ({})",
        features.describe(defer_taskrun)
    );
    process.serve(&specs, || {
        threads.into_iter().try_for_each(|thread| {
            thread
                .join()
                .map_err(|_| anyhow!("a runtime thread panicked"))?
        })
    })?
}

/// Every thread's report: whether their rings have DEFER_TASKRUN, or the first failure.
fn wait_ready(ready: &mpsc::Receiver<Ready>, threads: usize) -> anyhow::Result<bool> {
    let mut defer_taskrun = true;
    for _ in 0..threads {
        match ready.recv() {
            Ok(report) => defer_taskrun &= report?,
            Err(_) => return Err(anyhow!("a runtime thread panicked while starting")),
        }
    }
    Ok(defer_taskrun)
}

/// One runtime thread (already pinned), with the `--debug-*` faults chosen once here rather
/// than tested on every message (see `wsport_server_common::faults`).
fn run_thread(
    thread: RuntimeThread,
    features: Features,
    ready: mpsc::Sender<Ready>,
) -> anyhow::Result<()> {
    match thread.shared.config.debug.active() {
        None => serve(thread, features, NoFaults, ready),
        Some(faults) => serve(thread, features, faults, ready),
    }
}

fn serve<F: Faults>(
    thread: RuntimeThread,
    features: Features,
    faults: F,
    ready: mpsc::Sender<Ready>,
) -> anyhow::Result<()> {
    let index = thread.index;
    match Worker::new(thread, features, faults) {
        Ok(worker) => {
            let _ = ready.send(Ok(worker.defer_taskrun()));
            worker
                .run()
                .with_context(|| format!("runtime thread {index}"))
        }
        Err(error) => {
            let error =
                anyhow::Error::new(error).context(format!("starting runtime thread {index}"));
            let _ = ready.send(Err(error));
            Ok(())
        }
    }
}
