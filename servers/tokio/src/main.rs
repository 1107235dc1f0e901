//! wsport-tokio: the WebSocket echo server on tokio (epoll).
//!
//! Thread-per-core by default: `--threads N` current_thread runtimes, each pinned to a core and
//! accepting on its own SO_REUSEPORT listener, so the kernel spreads connections and no task
//! ever crosses cores. `--flavor multi` runs one work-stealing multi-thread runtime instead,
//! for comparison. The protocol lives in `wsport_server_common::session`; this file is only the
//! readiness-based IO loop around it.

mod raw;

use std::io;
use std::net::TcpListener as StdListener;
use std::pin::pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsport_server_common::cli::ServerArgs;
use wsport_server_common::closing::Closing;
use wsport_server_common::counters::Counters;
use wsport_server_common::faults::{Faults, NoFaults};
use wsport_server_common::hub::{deliveries, Taken};
use wsport_server_common::process::{self, Process, RuntimeThread, Serve, Shared};
use wsport_server_common::session::{End, Session, WRITE_TIMEOUT};
use wsport_server_common::{affinity, socket, ListenSpec, Scheme};
use wsport_server_common::{deadline, ending};

#[derive(Parser, Debug)]
#[command(
    name = "wsport-tokio",
    version,
    about = "WebSocket echo server on tokio (epoll)"
)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Runtime layout: one current_thread runtime per thread (thread-per-core), or one
    /// multi-thread runtime with --threads workers.
    #[arg(long, value_enum, default_value_t = Flavor::CurrentThread)]
    flavor: Flavor,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Flavor {
    CurrentThread,
    Multi,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wsport-tokio: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let config = Arc::new(args.server.into_config()?);
    let mut listeners = socket::bind_listeners(&config)?;
    let process = Process::new(config).context("installing signal handlers")?;
    let specs = process::specs(&listeners);
    match args.flavor {
        Flavor::CurrentThread if listeners.len() == 1 => {
            // One runtime: on this thread, so that the process has no other (see
            // `Process::this_thread`).
            let thread = process.this_thread(listeners.swap_remove(0));
            process.serve(&specs, || run_current_thread(thread))??;
        }
        Flavor::CurrentThread => {
            let threads = process
                .spawn("wsport-tokio", listeners, run_current_thread)
                .context("spawning runtime threads")?;
            process.serve(&specs, || {
                threads.into_iter().try_for_each(|thread| {
                    thread
                        .join()
                        .map_err(|_| anyhow::anyhow!("a runtime thread panicked"))?
                })
            })??;
        }
        Flavor::Multi => {
            // One runtime: the first thread's listeners serve all workers. The others are
            // closed now: SO_REUSEPORT would hand them connections no one accepts.
            let first = listeners.swap_remove(0);
            drop(listeners);
            let thread = RuntimeThread {
                index: 0,
                listeners: first,
                counters: Arc::clone(process.counters(0)),
                shared: Arc::clone(process.shared()),
            };
            process.serve(&specs, || run_multi_thread(thread))??;
        }
    }
    Ok(())
}

fn run_current_thread(thread: RuntimeThread) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(thread.listeners, thread.counters, thread.shared))
}

fn run_multi_thread(thread: RuntimeThread) -> anyhow::Result<()> {
    let pin = thread.shared.config.pin.clone();
    let next_worker = AtomicUsize::new(0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(thread.shared.config.threads)
        .on_thread_start(move || {
            // Workers are pinned round-robin; blocking-pool threads would be too, harmlessly.
            if let Some(cpus) = &pin {
                let index = next_worker.fetch_add(1, Ordering::Relaxed);
                let _ = affinity::pin_current_thread(cpus[index % cpus.len()]);
            }
        })
        .enable_all()
        .build()?;
    runtime.block_on(serve(thread.listeners, thread.counters, thread.shared))
}

/// Accept on this runtime's listeners until shutdown, then close every connection with 1001
/// and wait for them to finish.
async fn serve(
    listeners: Vec<(ListenSpec, StdListener)>,
    counters: Arc<Counters>,
    shared: Arc<Shared>,
) -> anyhow::Result<()> {
    let closing = Closing::new();
    let active = Arc::new(AtomicUsize::new(0));
    let mut accept_tasks = Vec::new();
    for (spec, listener) in listeners {
        let listener =
            TcpListener::from_std(listener).with_context(|| format!("registering {spec}"))?;
        let context = Arc::new(Accept {
            scheme: spec.scheme,
            counters: Arc::clone(&counters),
            shared: Arc::clone(&shared),
            closing: Arc::clone(&closing),
            active: Arc::clone(&active),
        });
        accept_tasks.push(tokio::spawn(accept_loop(listener, context)));
    }
    let close_all = || {
        for task in &accept_tasks {
            task.abort();
        }
        closing.close();
    };
    ending::drain(
        &shared.shutdown,
        &shared.config,
        tokio::time::sleep,
        close_all,
        || active.load(Ordering::Acquire),
    )
    .await;
    Ok(())
}

/// What an accept loop hands each connection task.
struct Accept {
    scheme: Scheme,
    counters: Arc<Counters>,
    shared: Arc<Shared>,
    closing: Arc<Closing>,
    active: Arc<AtomicUsize>,
}

async fn accept_loop(listener: TcpListener, context: Arc<Accept>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // EMFILE and friends: back off instead of spinning; the listener survives.
                eprintln!("wsport-tokio: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(serve) =
            process::admit_connection(&stream, &context.shared, &context.counters, context.scheme)
        else {
            continue;
        };
        context.active.fetch_add(1, Ordering::AcqRel);
        let context = Arc::clone(&context);
        tokio::spawn(async move {
            match serve {
                Serve::WebSocket(session) => connection(stream, session, &context).await,
                Serve::Raw => {
                    raw::connection(stream, &context.counters, context.closing.subscribe()).await
                }
            }
            context.active.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

enum Event {
    Read(std::io::Result<usize>),
    Deadline,
    Shutdown,
    /// `--broadcast`: other connections' messages are waiting in `inbox`.
    Delivery(Taken),
}

/// A connection's one timer, for all its deadlines (see `wsport_server_common::deadline`).
type Timer = deadline::Timer<tokio::time::Sleep>;

fn timer() -> Timer {
    Timer::new(
        |at| tokio::time::sleep_until(at.into()),
        |sleep, at| sleep.reset(at.into()),
    )
}

/// One connection, with the `--debug-*` faults chosen here, once, rather than tested on every
/// message (see `wsport_server_common::faults`).
async fn connection(stream: TcpStream, session: Session, context: &Accept) {
    match context.shared.config.debug.active() {
        None => serve_connection(stream, session, context, NoFaults).await,
        Some(faults) => serve_connection(stream, session, context, faults).await,
    }
}

/// One connection: read, let the session answer, write, until it ends.
async fn serve_connection(
    mut stream: TcpStream,
    mut session: Session,
    context: &Accept,
    faults: impl Faults,
) {
    let counters = &context.counters;
    let mut closing = context.closing.subscribe();
    let mut shutting_down = closing.is_closed();
    if shutting_down {
        return;
    }
    let mut buf = Session::new_buffer();
    let mut timer = timer();
    let mut subscription = context.shared.hub.as_ref().map(|hub| hub.subscribe());
    let mut inbox = Vec::new();
    let mut last_turn = Instant::now();
    loop {
        let deadline = session.next_deadline();
        // Biased, the read first: under traffic it is ready at its first poll, and the other
        // branches are not polled at all. A peer that keeps the socket readable would then
        // starve them (tokio's coop budget does not help: the timer draws on it too), so a
        // deadline passed at the last turn and a shutdown already signalled are taken
        // without a poll: a comparison and an atomic load. Every branch is
        // cancel-safe: `read_buf` only appends what it read, the timer stays armed, and the
        // inbox is taken only when the branch completes.
        let event = if deadline::is_due(deadline, last_turn) {
            Event::Deadline
        } else if !shutting_down && closing.is_closed() {
            Event::Shutdown
        } else {
            tokio::select! {
                biased;
                taken = deliveries(subscription.as_ref(), &mut inbox), if subscription.is_some() => Event::Delivery(taken),
                read = stream.read_buf(&mut buf) => Event::Read(read),
                () = timer.until(deadline, counters) => Event::Deadline,
                () = closing.closed(), if !shutting_down => Event::Shutdown,
            }
        };
        let now = Instant::now();
        last_turn = now;
        let (output, end) = match event {
            Event::Read(Ok(0)) | Event::Read(Err(_)) => {
                session.handle_eof();
                return;
            }
            Event::Read(Ok(n)) => {
                counters.add_bytes_in(n as u64);
                let step = session.handle_read(&mut buf, now);
                faults.after_read(now, step.messages);
                if let Some(subscription) = &subscription {
                    if let Some(frames) = session.take_published() {
                        subscription.publish(&frames);
                    }
                }
                let output = &buf[step.output.clone()];
                if !write(&mut stream, output, &mut timer, now, counters).await {
                    session.handle_eof();
                    return;
                }
                session.after_write(&mut buf, &step);
                (Vec::new(), step.end)
            }
            Event::Deadline => {
                let control = session.handle_deadline(now);
                (control.output, control.end)
            }
            Event::Shutdown => {
                shutting_down = true;
                let control = session.begin_shutdown(now);
                (control.output, control.end)
            }
            Event::Delivery(Taken::Frames) => {
                let mut output = Vec::new();
                session.deliver(&inbox, &mut output);
                inbox.clear();
                (output, None)
            }
            Event::Delivery(Taken::TooSlow) => {
                subscription = None;
                let control = session.close_too_slow(now);
                (control.output, control.end)
            }
        };
        if !write(&mut stream, &output, &mut timer, now, counters).await {
            session.handle_eof();
            return;
        }
        if let Some(end) = end {
            finish(stream, end, &mut timer, counters).await;
            return;
        }
    }
}

/// Send `bytes`, started at `now`; false when the peer is gone or does not read for
/// [`WRITE_TIMEOUT`].
async fn write(
    stream: &mut TcpStream,
    bytes: &[u8],
    timer: &mut Timer,
    now: Instant,
    counters: &Counters,
) -> bool {
    if bytes.is_empty() {
        return true;
    }
    // The common case, a reply the socket takes whole, is one `send` with no future to poll.
    let sent = match stream.try_write(bytes) {
        Ok(sent) => sent,
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
        Err(_) => return false,
    };
    if sent < bytes.len() {
        // A peer that stops reading must not pin the task forever; the timer is consulted
        // only when the write does not complete at once, as in the io_uring servers.
        let send = pin!(stream.write_all(&bytes[sent..]));
        match timer.bound(send, now + WRITE_TIMEOUT, counters).await {
            Some(Ok(())) => {}
            // A readiness write can simply be dropped.
            Some(Err(_)) | None => return false,
        }
    }
    counters.add_bytes_out(bytes.len() as u64);
    true
}

/// End the connection as the session asked (see [`End`]); its output is already sent.
async fn finish(mut stream: TcpStream, end: End, timer: &mut Timer, counters: &Counters) {
    if end != End::Linger {
        // Dropping the stream closes it.
        return;
    }
    let _ = stream.shutdown().await;
    let linger_until = ending::linger_until(Instant::now());
    let mut sink = [0u8; 4096];
    let drain = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
    tokio::select! {
        () = drain => {}
        () = timer.until(Some(linger_until), counters) => {}
    }
}
