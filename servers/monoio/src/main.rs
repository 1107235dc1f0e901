//! wsport-monoio: the WebSocket echo server on monoio, with its io_uring driver or, behind
//! `--driver epoll`, its legacy (epoll) driver.
//!
//! Thread-per-core: `--threads N` monoio runtimes, each on its own thread (with one, on the
//! main thread: see `Process::this_thread`), pinned to a core when asked, accepting on its own
//! SO_REUSEPORT listeners (bound by `wsport_server_common::socket`, which refuses a port a
//! stale server still holds). The two drivers run this same code on the same runtime, so
//! `monoio-uring` against `monoio-epoll` isolates the IO model from the runtime design. The driver is always built explicitly —
//! never monoio's `FusionDriver`, which falls back to epoll without a word — and checked from
//! inside the runtime before anything is announced.
//!
//! The protocol lives in `wsport_server_common::session`; this file is only the
//! completion-based IO loop around it: buffers are owned, a read moves the connection buffer
//! into the kernel (appending to it) and gets it back, a write moves a slice of it.
//!
//! # Cancellation
//!
//! An io_uring operation runs in the kernel on memory it was given; dropping its future does
//! not stop it. monoio keeps the buffer alive until the completion arrives, and (with its
//! `async-cancel` feature, which this workspace does not enable) submits a cancel that races
//! with it: a read that completes just as its future is dropped loses its bytes, and without
//! the cancel a dropped read stays pending — holding its descriptor open — until the peer
//! sends something. So this server never drops an operation in flight:
//!
//! - a connection's read stays pinned across timer and shutdown events (`select!` on
//!   `&mut read`), and pings and close frames are written beside it through the stream's
//!   write half; whatever the read brings is processed;
//! - to end a connection while its read is in flight, the socket is shut down for reading
//!   ([`sys::shutdown`]), which completes the read at once (0 bytes), and the read is awaited;
//! - a write that outlives [`WRITE_TIMEOUT`] is ended the same way, by shutting the socket;
//! - accept loops are ended by shutting their listeners down.
//!
//! Only if the kernel did not complete an operation [`ending::FORCE_GRACE`] after its socket was shut
//! down would it be abandoned (never seen; a last resort against hanging a shutdown). The
//! legacy driver's operations are readiness waits that can be dropped at any time, so the same
//! code is merely careful there.

mod conn;
mod park;
mod raw;
mod sys;

use std::cell::Cell;
use std::net::{Shutdown as SocketShutdown, TcpListener as StdListener};
use std::pin::pin;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use clap::{Parser, ValueEnum};
use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};
use monoio::{IoUringDriver, LegacyDriver, Runtime, RuntimeBuilder};
use wsport_server_common::cli::ServerArgs;
use wsport_server_common::closing::Closing;
use wsport_server_common::counters::Counters;
use wsport_server_common::deadline;
use wsport_server_common::ending::{self, AfterDeadline, AfterRead, Ending};
use wsport_server_common::faults::{Faults, NoFaults};
use wsport_server_common::hub::{deliveries, Taken};
use wsport_server_common::process::{self, Process, RuntimeThread, Serve, Serving, Shared};
use wsport_server_common::session::{Control, End, Session, WRITE_TIMEOUT};
use wsport_server_common::{socket, ListenSpec, Scheme};

use crate::conn::{Conn, Writer};
use crate::park::Park;
use crate::sys::SocketFd;

#[derive(Parser, Debug)]
#[command(
    name = "wsport-monoio",
    version,
    about = "WebSocket echo server on monoio (io_uring, or epoll with --driver epoll)"
)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// IO driver: io_uring, or monoio's legacy epoll driver (same runtime, other IO model).
    #[arg(long, value_enum, default_value_t = DriverKind::Uring)]
    driver: DriverKind,
    /// With the io_uring driver, create each ring with SINGLE_ISSUER | DEFER_TASKRUN (Linux ≥
    /// 6.1): the kernel runs completion work when the thread enters it to wait, instead of
    /// notifying the thread per completion. Off by default, as monoio ships; wsport-uring has
    /// it on.
    #[arg(long)]
    defer_taskrun: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DriverKind {
    Uring,
    Epoll,
}

impl DriverKind {
    fn describe(self) -> &'static str {
        match self {
            DriverKind::Uring => "io_uring",
            DriverKind::Epoll => "epoll (legacy)",
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wsport-monoio: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let driver = args.driver;
    let defer_taskrun = args.defer_taskrun;
    if driver == DriverKind::Uring {
        check_uring()?;
    }
    let config = Arc::new(args.server.into_config()?);
    let mut listeners = socket::bind_listeners(&config)?;
    let process = Process::new(config).context("installing signal handlers")?;
    let specs = process::specs(&listeners);
    let setup = Setup {
        driver,
        defer_taskrun,
    };
    if listeners.len() == 1 {
        // One runtime: on this thread, so that the process has no other (see
        // `Process::this_thread`); the epoll driver's send/recv then skip glibc's
        // multi-thread wrappers.
        let thread = process.this_thread(listeners.swap_remove(0));
        serve_here(&process, thread, &specs, setup)
    } else {
        serve_on_threads(&process, listeners, &specs, setup)
    }
}

/// The runtime every thread builds: the driver asked for and, for io_uring, its ring setup.
#[derive(Clone, Copy, Debug)]
struct Setup {
    driver: DriverKind,
    defer_taskrun: bool,
}

/// The one runtime, on the calling thread: it announces the process itself once it runs.
fn serve_here(
    process: &Process,
    thread: RuntimeThread,
    specs: &[ListenSpec],
    setup: Setup,
) -> anyhow::Result<()> {
    let mut serving = Err(anyhow!("the runtime ended before reporting its start"));
    run_thread(thread, setup, |started| {
        serving = started.and_then(|()| announce(process, setup.driver, specs));
        if serving.is_err() {
            // Started but not announced: drain at once, as `serve_on_threads` stops the
            // threads that did start.
            process.shared().shutdown.request();
        }
    });
    serving.map(Serving::finish)
}

/// One runtime per listener set, each on its own thread; the process is announced once every
/// thread reported its start.
fn serve_on_threads(
    process: &Process,
    listeners: Vec<Vec<(ListenSpec, StdListener)>>,
    specs: &[ListenSpec],
    setup: Setup,
) -> anyhow::Result<()> {
    // Each thread reports once: its runtime runs and accepts, or why not.
    let (ready_tx, ready_rx) = mpsc::channel();
    let threads = process
        .spawn("wsport-monoio", listeners, move |thread| {
            let ready_tx = ready_tx.clone();
            run_thread(thread, setup, move |started| {
                let _ = ready_tx.send(started);
            })
        })
        .context("spawning runtime threads")?;
    if let Some(error) = wait_ready(&ready_rx, threads.len()) {
        // The threads that did start are serving: stop them before reporting.
        process.shared().shutdown.request();
        for thread in threads {
            let _ = thread.join();
        }
        return Err(error);
    }
    let serving = announce(process, setup.driver, specs)?;
    let joined = threads.into_iter().try_for_each(|thread| {
        thread
            .join()
            .map_err(|_| anyhow!("a runtime thread panicked"))
    });
    serving.finish();
    joined
}

/// Say which driver runs, then announce the listeners (the lines scripts wait for).
fn announce<'a>(
    process: &'a Process,
    driver: DriverKind,
    specs: &[ListenSpec],
) -> anyhow::Result<Serving<'a>> {
    eprintln!("wsport-monoio: driver {}", driver.describe());
    Ok(process.announce(specs)?)
}

/// `--driver uring` must measure io_uring or refuse: monoio's own switch to its epoll driver
/// is refused too, rather than half-honoured.
fn check_uring() -> anyhow::Result<()> {
    if let Some(value) = std::env::var_os("MONOIO_FORCE_LEGACY_DRIVER") {
        anyhow::bail!(
            "--driver uring was asked but MONOIO_FORCE_LEGACY_DRIVER is set ({value:?}), which \
             asks monoio for its epoll driver: unset it to measure io_uring, or pass --driver \
             epoll to measure epoll"
        );
    }
    wsport_server_common::uring::probe()?;
    Ok(())
}

/// The first failure among `threads` start reports, if any.
fn wait_ready(ready: &mpsc::Receiver<anyhow::Result<()>>, threads: usize) -> Option<anyhow::Error> {
    let mut failure = None;
    for _ in 0..threads {
        match ready.recv() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                failure.get_or_insert(error);
            }
            // Every sender is gone: a thread died (panicked) before reporting.
            Err(_) => {
                return Some(
                    failure.unwrap_or_else(|| anyhow!("a runtime thread panicked while starting")),
                )
            }
        }
    }
    failure
}

/// The io_uring setup monoio would use (its default builder), plus DEFER_TASKRUN when asked.
fn ring_builder(defer_taskrun: bool) -> io_uring_monoio::Builder {
    let mut ring = io_uring_monoio::IoUring::builder();
    if defer_taskrun {
        ring.setup_single_issuer().setup_defer_taskrun();
    }
    ring
}

/// One runtime thread (already pinned): build the runtime for the asked driver and serve
/// until shutdown. Whether it started (or why not) goes to `report` once, before serving: the
/// caller decides what follows.
fn run_thread(thread: RuntimeThread, setup: Setup, report: impl FnOnce(anyhow::Result<()>)) {
    // Two concrete builders, one generic body: the drivers differ in nothing else.
    match setup.driver {
        DriverKind::Uring => block_on(
            RuntimeBuilder::<IoUringDriver>::new()
                .uring_builder(ring_builder(setup.defer_taskrun))
                .enable_timer()
                .build(),
            thread,
            setup.driver,
            report,
        ),
        DriverKind::Epoll => block_on(
            RuntimeBuilder::<LegacyDriver>::new().enable_timer().build(),
            thread,
            setup.driver,
            report,
        ),
    }
}

fn block_on<D: monoio::Driver>(
    runtime: std::io::Result<Runtime<D>>,
    thread: RuntimeThread,
    driver: DriverKind,
    report: impl FnOnce(anyhow::Result<()>),
) {
    let mut runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            let what = format!(
                "starting the monoio {} runtime of thread {}",
                driver.describe(),
                thread.index
            );
            report(Err(anyhow::Error::new(error).context(what)));
            return;
        }
    };
    runtime.block_on(async move {
        let RuntimeThread {
            listeners,
            counters,
            shared,
            ..
        } = thread;
        match start(driver, listeners, counters, &shared) {
            Ok(accepting) => {
                report(Ok(()));
                serve(accepting, &shared).await;
            }
            Err(error) => report(Err(error)),
        }
    });
}

/// A runtime thread's accept loops, as `serve` stops them.
struct Accepting {
    listeners: Vec<Rc<TcpListener>>,
    closing: Arc<Closing>,
    active: Rc<Cell<usize>>,
}

/// Inside the runtime: check that the asked driver is the one running, register the
/// listeners with it and start accepting.
fn start(
    driver: DriverKind,
    listeners: Vec<(ListenSpec, StdListener)>,
    counters: Arc<Counters>,
    shared: &Arc<Shared>,
) -> anyhow::Result<Accepting> {
    let running = if monoio::utils::is_legacy() {
        DriverKind::Epoll
    } else {
        DriverKind::Uring
    };
    if running != driver {
        anyhow::bail!(
            "asked for the {} driver but monoio runs its {} driver",
            driver.describe(),
            running.describe()
        );
    }
    let closing = Closing::new();
    let active = Rc::new(Cell::new(0));
    let mut registered = Vec::with_capacity(listeners.len());
    for (spec, listener) in listeners {
        let listener =
            TcpListener::from_std(listener).with_context(|| format!("registering {spec}"))?;
        registered.push((spec, Rc::new(listener)));
    }
    let mut accepting = Accepting {
        listeners: Vec::new(),
        closing,
        active,
    };
    for (spec, listener) in registered {
        let context = Rc::new(Accept {
            scheme: spec.scheme,
            counters: Arc::clone(&counters),
            shared: Arc::clone(shared),
            closing: Arc::clone(&accepting.closing),
            active: Rc::clone(&accepting.active),
        });
        monoio::spawn(accept_loop(Rc::clone(&listener), context));
        accepting.listeners.push(listener);
    }
    Ok(accepting)
}

/// Serve until shutdown, then stop accepting, close every connection with 1001 and wait for
/// them to finish.
async fn serve(accepting: Accepting, shared: &Shared) {
    let Accepting {
        listeners,
        closing,
        active,
    } = accepting;
    let close_all = || {
        closing.close();
        // Each accept loop has an accept in flight: shutting the listener down completes it
        // (and resets the connections queued on this thread's listener, as closing it would),
        // and the loop, seeing `closing`, ends and drops the listener.
        for listener in &listeners {
            let _ = sys::shutdown(&**listener, SocketShutdown::Read);
        }
        drop(listeners);
    };
    ending::drain(
        &shared.shutdown,
        &shared.config,
        monoio::time::sleep,
        close_all,
        || active.get(),
    )
    .await;
}

/// What an accept loop hands each connection task.
struct Accept {
    scheme: Scheme,
    counters: Arc<Counters>,
    shared: Arc<Shared>,
    closing: Arc<Closing>,
    /// Connection tasks of this thread still running.
    active: Rc<Cell<usize>>,
}

async fn accept_loop(listener: Rc<TcpListener>, context: Rc<Accept>) {
    loop {
        let accepted = listener.accept().await;
        if context.closing.is_closed() {
            // `serve` shut the listener down to end this accept; a connection accepted in
            // that very instant goes the way of the listener's queue.
            return;
        }
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // EMFILE and friends: back off instead of spinning; the listener survives.
                eprintln!("wsport-monoio: accept failed: {error}");
                monoio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(serve) =
            process::admit_connection(&stream, &context.shared, &context.counters, context.scheme)
        else {
            continue;
        };
        context.active.set(context.active.get() + 1);
        let context = Rc::clone(&context);
        monoio::spawn(async move {
            match serve {
                Serve::WebSocket(session) => connection(stream, session, &context).await,
                Serve::Raw => {
                    raw::connection(stream, &context.counters, context.closing.subscribe()).await
                }
            }
            context.active.set(context.active.get() - 1);
        });
    }
}

/// Shut the socket down for reading so the read in flight completes, and wait for it.
fn force(fd: &SocketFd, now: Instant) -> Ending {
    let _ = fd.shutdown(SocketShutdown::Read);
    Ending::forced(now)
}

enum Event<R> {
    Read(R),
    Deadline,
    Shutdown,
    /// `--broadcast`: other connections' messages are waiting in the inbox.
    Delivery(Taken),
}

/// A connection's one timer, for all its deadlines (see `wsport_server_common::deadline`).
type Timer = deadline::Timer<monoio::time::Sleep>;

fn timer() -> Timer {
    Timer::new(
        |at| monoio::time::sleep_until(monoio::time::Instant::from_std(at)),
        |sleep, at| sleep.reset(monoio::time::Instant::from_std(at)),
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
    stream: TcpStream,
    mut session: Session,
    context: &Accept,
    faults: impl Faults,
) {
    let counters = &*context.counters;
    let mut closing = context.closing.subscribe();
    if closing.is_closed() {
        return;
    }
    let mut conn = Conn::new(stream);
    let (fd, reader, writer) = conn.parts();
    let mut shutting_down = false;
    let mut ending = Ending::No;
    let mut buf = Session::new_buffer();
    let mut timer = timer();
    let mut subscription = context.shared.hub.as_ref().map(|hub| hub.subscribe());
    let mut inbox = Vec::new();
    let mut last_turn = Instant::now();
    let mut park = Park::default();
    loop {
        // A flooding peer must not keep the thread to itself (see `Park`).
        park.before_read().await;
        // The read appends to `buf`: the kernel gets its spare capacity, which
        // `Session::after_write` keeps non-empty (an empty read would look like EOF). The
        // slice matters: monoio 0.2 reads into a bare `Vec` from index 0 (its `IoBufMut` is
        // the whole capacity), which would overwrite the unconsumed input; a `SliceMut` over
        // `len..capacity` writes behind it and sets the length to `len + n`.
        if buf.len() == buf.capacity() {
            buf.reserve(1);
        }
        let spare = buf.len()..buf.capacity();
        let read = pin!(reader.read(buf.slice_mut(spare)));
        let mut read = park.watch(read);
        // Timers, shutdown and endings are served with the read in flight; it is always
        // awaited to completion (see the crate doc).
        let (result, slice) = loop {
            let wake_at = ending.wake_at(&session);
            // Biased: shutdown (a flag test) and deliveries first, then the read; the timer
            // is polled only when the read is pending, which with the epoll driver and
            // traffic waiting it is not. A deadline already passed at the last turn is
            // therefore taken without a poll, or a peer that keeps the socket readable would
            // hold its connection past its deadlines (monoio has no budget that would
            // make the read yield).
            let event = if deadline::is_due(wake_at, last_turn) {
                Event::Deadline
            } else {
                monoio::select! {
                    biased;
                    () = closing.closed(), if ending.is_serving() && !shutting_down => Event::Shutdown,
                    taken = deliveries(subscription.as_ref(), &mut inbox), if subscription.is_some() && ending.is_serving() => Event::Delivery(taken),
                    done = &mut read => Event::Read(done),
                    () = timer.until(wake_at, counters) => Event::Deadline,
                }
            };
            let now = Instant::now();
            last_turn = now;
            let control = match (event, ending) {
                (Event::Read(done), _) => break done,
                (Event::Deadline, Ending::No) => session.handle_deadline(now),
                (Event::Shutdown, _) => {
                    shutting_down = true;
                    session.begin_shutdown(now)
                }
                (Event::Deadline, _) => match ending.after_deadline(now) {
                    AfterDeadline::Force(_) => {
                        ending = force(fd, now);
                        continue;
                    }
                    // Last resort: the kernel did not complete the read on a shut socket.
                    AfterDeadline::GiveUp => return,
                },
                (Event::Delivery(Taken::Frames), _) => {
                    let mut control = Control::default();
                    session.deliver(&inbox, &mut control.output);
                    inbox.clear();
                    control
                }
                (Event::Delivery(Taken::TooSlow), _) => {
                    subscription = None;
                    session.close_too_slow(now)
                }
            };
            let sent = send(writer, fd, control.output, &mut timer, now, counters).await;
            if sent.is_none() {
                session.handle_eof();
                ending = force(fd, now);
                continue;
            }
            match control.end {
                None => {}
                // (`Close` comes from the read path only, where no read is in flight.)
                Some(End::Drop | End::Close) => ending = force(fd, now),
                Some(End::Linger) => {
                    let _ = writer.shutdown().await;
                    ending = Ending::linger(now);
                }
            }
        };
        buf = slice.into_inner();
        let n = match ending.after_read(&result) {
            AfterRead::Serve(n) => n,
            // Lingering: discard, and read again until EOF or the linger deadline.
            AfterRead::Discard => {
                buf.clear();
                continue;
            }
            AfterRead::Over => {
                if ending.is_serving() {
                    session.handle_eof();
                }
                return;
            }
        };
        counters.add_bytes_in(n as u64);
        let now = Instant::now();
        let step = session.handle_read(&mut buf, now);
        faults.after_read(now, step.messages);
        if let Some(subscription) = &subscription {
            if let Some(frames) = session.take_published() {
                subscription.publish(&frames);
            }
        }
        let output = buf.slice(step.output.clone());
        buf = match send(writer, fd, output, &mut timer, now, counters).await {
            Some(output) => output.into_inner(),
            None => {
                session.handle_eof();
                return;
            }
        };
        session.after_write(&mut buf, &step);
        match step.end {
            None => {}
            // No read is in flight: dropping the connection closes its socket.
            Some(End::Drop | End::Close) => return,
            Some(End::Linger) => {
                // FIN, then drain: unread input must not turn our close into a reset that
                // could destroy the answer before the peer reads it.
                let _ = writer.shutdown().await;
                ending = Ending::linger(now);
                buf.clear();
            }
        }
    }
}

/// Send all of `buf`, started at `now`, and give it back; `None` when the peer is gone or
/// does not read for [`WRITE_TIMEOUT`].
async fn send<T: IoBuf + 'static>(
    writer: &mut Writer,
    fd: &SocketFd,
    buf: T,
    timer: &mut Timer,
    now: Instant,
    counters: &Counters,
) -> Option<T> {
    let len = buf.bytes_init();
    if len == 0 {
        return Some(buf);
    }
    let mut write = pin!(writer.write_all(buf));
    // The timer is consulted only if the write does not complete at once, as in every server:
    // the epoll driver's writes mostly do; an io_uring write never does, but mostly finds the
    // timer armed early enough already.
    match timer
        .bound(write.as_mut(), now + WRITE_TIMEOUT, counters)
        .await
    {
        Some((Ok(_), buf)) => {
            counters.add_bytes_out(len as u64);
            Some(buf)
        }
        Some((Err(_), _)) => None,
        None => {
            // A peer that stops reading must not pin the task forever. The write is still in
            // flight: shutting the socket down fails it now (EPIPE), and it is awaited, under
            // a timer of its own (once per connection at most).
            let _ = fd.shutdown(SocketShutdown::Both);
            counters.timer_armed();
            let _ = monoio::time::timeout(ending::FORCE_GRACE, write).await;
            None
        }
    }
}
