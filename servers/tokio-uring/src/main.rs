//! wsport-tokio-uring: the WebSocket echo server on tokio-uring (io_uring).
//!
//! Thread-per-core: `--threads N` tokio-uring runtimes, each on its own thread pinned to a
//! core and accepting on its own SO_REUSEPORT listener, so the kernel spreads connections and
//! no task ever crosses cores. The protocol lives in `wsport_server_common::session`; this file
//! is only the completion-based IO loop around it, kept as close to `wsport-tokio`'s
//! readiness-based loop as completion IO allows, so that the benchmark compares the IO models
//! and nothing else.
//!
//! # Operations cannot be cancelled
//!
//! With io_uring the buffer of a read belongs to the kernel until the read completes, and
//! tokio-uring does not cancel an operation when its future is dropped: the operation stays
//! armed, and whatever it reads later is thrown away with the buffer. A read raced against a
//! timer the readiness way (`timeout(read)`, or a `select!` that drops the losing branch)
//! therefore loses data. So this server never drops a pending operation:
//!
//! - a connection keeps one read in flight, pinned across the wakeups of its timers and of
//!   shutdown; heartbeats and close frames are written meanwhile as separate operations from
//!   their own small buffers, and the same read is polled again afterwards;
//! - when the connection must end while a read (or a write, or an accept) is in flight,
//!   `shutdown(2)` on the socket makes the kernel complete the operation at once (a read
//!   returns 0, a write fails with EPIPE, an accept with EINVAL), and that completion is
//!   awaited before the socket is dropped.

mod raw;

use std::cell::Cell;
use std::future::Future;
use std::net::{Shutdown as Halves, TcpListener as StdListener};
use std::ops::Range;
use std::pin::{pin, Pin};
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use socket2::SockRef;
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::{TcpListener, TcpStream};
use wsport_server_common::cli::ServerArgs;
use wsport_server_common::closing::{self, Closing};
use wsport_server_common::counters::Counters;
use wsport_server_common::deadline;
use wsport_server_common::ending::{self, AfterDeadline, AfterRead, Ending};
use wsport_server_common::faults::{Faults, NoFaults};
use wsport_server_common::hub::{self, deliveries, Frames, Taken};
use wsport_server_common::process::{self, Process, RuntimeThread, Serve, Shared};
use wsport_server_common::session::{Control, End, Session, WRITE_TIMEOUT};
use wsport_server_common::{socket, uring, ListenSpec, Scheme};

#[derive(Parser, Debug)]
#[command(
    name = "wsport-tokio-uring",
    version,
    about = "WebSocket echo server on tokio-uring (io_uring)"
)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Create each ring with COOP_TASKRUN (Linux ≥ 5.19): completion work waits for the
    /// thread's next entry into the kernel instead of interrupting it. Off by default, as
    /// tokio-uring ships. (DEFER_TASKRUN, which wsport-uring uses, cannot work here:
    /// tokio-uring waits for its ring through epoll, which a deferred completion never wakes.)
    #[arg(long)]
    coop_taskrun: bool,
}

/// Submission queue entries per ring (the completion queue gets twice as many). tokio-uring's
/// default is 256; 1024 matches monoio's default, so the two io_uring servers run the same
/// ring size, and a busy thread with thousands of connections rarely has to flush a full
/// queue before it can submit.
const RING_ENTRIES: u32 = 1024;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wsport-tokio-uring: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    // Before binding anything: where io_uring is refused (seccomp, sysctl, old kernel), say
    // why and how to fix it, rather than fail on the first ring with a bare errno.
    uring::probe()?;
    let config = Arc::new(args.server.into_config()?);
    let listeners = socket::bind_listeners(&config)?;
    let process = Process::new(config).context("installing signal handlers")?;
    let specs = process::specs(&listeners);
    let threads = process
        .spawn("wsport-tokio-uring", listeners, move |thread| {
            run_thread(thread, args.coop_taskrun)
        })
        .context("spawning runtime threads")?;
    process.serve(&specs, || {
        threads.into_iter().try_for_each(|thread| {
            thread
                .join()
                .map_err(|_| anyhow::anyhow!("a runtime thread panicked"))?
        })
    })?
}

/// One runtime thread (already pinned): start its ring, serve its listeners until shutdown.
fn run_thread(thread: RuntimeThread, coop_taskrun: bool) -> anyhow::Result<()> {
    let mut builder = tokio_uring::builder();
    builder.entries(RING_ENTRIES);
    if coop_taskrun {
        let mut ring = tokio_uring::uring_builder();
        ring.setup_coop_taskrun();
        builder.uring_builder(&ring);
    }
    let runtime = tokio_uring::Runtime::new(&builder).context("starting the io_uring runtime")?;
    // Dropping the runtime cancels whatever operations are still in flight (accepts, and
    // connections still open past the shutdown wait) and waits for the kernel to let go.
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
    let active = Rc::new(Cell::new(0usize));
    for (spec, listener) in listeners {
        // A second descriptor of the same socket, kept to shut the listener down at the end
        // (see `accept_loop`).
        let stopper = listener
            .try_clone()
            .with_context(|| format!("duplicating the listener of {spec}"))?;
        // io_uring waits for readiness itself; blocking sockets are what tokio-uring creates
        // on its own, and accepted sockets inherit nothing from this flag anyway.
        listener
            .set_nonblocking(false)
            .with_context(|| format!("registering {spec}"))?;
        let listener = TcpListener::from_std(listener);
        let context = Rc::new(Accept {
            scheme: spec.scheme,
            counters: Arc::clone(&counters),
            shared: Arc::clone(&shared),
            closing: Arc::clone(&closing),
            active: Rc::clone(&active),
        });
        tokio_uring::spawn(accept_loop(listener, stopper, context));
    }
    let close_all = || closing.close();
    ending::drain(
        &shared.shutdown,
        &shared.config,
        tokio::time::sleep,
        close_all,
        || active.get(),
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
    /// Connections of this runtime still running.
    active: Rc<Cell<usize>>,
}

async fn accept_loop(listener: TcpListener, stopper: StdListener, context: Rc<Accept>) {
    let mut closing = context.closing.subscribe();
    loop {
        let mut accept = pin!(listener.accept());
        let accepted = tokio::select! {
            biased;
            accepted = accept.as_mut() => accepted,
            () = closing.closed() => {
                // Stop accepting. The accept in flight cannot be cancelled, and dropping it
                // would leave it armed: it would take the next connection and lose it. On
                // Linux, shutdown(2) on a listening socket closes the listener: the kernel
                // fails the pending accept (EINVAL) and refuses new connections, as when
                // `wsport-tokio` drops its listener.
                let _ = SockRef::from(&stopper).shutdown(Halves::Both);
                // A connection that won the race is closed, like the backlog of a closed
                // listener.
                let _ = accept.await;
                return;
            }
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // EMFILE and friends: back off instead of spinning; the listener survives.
                eprintln!("wsport-tokio-uring: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
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
        tokio_uring::spawn(async move {
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

/// Why a connection woke up while its read was in flight.
enum Wake {
    Deadline,
    Shutdown,
    /// `--broadcast`: other connections' messages are waiting in the inbox.
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
///
/// Exactly one read is in flight at a time, and it is only ever dropped once complete (see
/// the crate doc). Its buffer is the connection buffer itself: it travels into the kernel
/// and back, the session echoes in place in it, and the echo is written from it.
async fn serve_connection(
    stream: TcpStream,
    session: Session,
    context: &Accept,
    faults: impl Faults,
) {
    let closing = context.closing.subscribe();
    if closing.is_closed() {
        return;
    }
    let mut conn = Conn {
        stream: &stream,
        counters: &context.counters,
        session,
        timer: timer(),
        ending: Ending::No,
        closing,
        shutting_down: false,
        subscription: context.shared.hub.as_ref().map(|hub| hub.subscribe()),
        inbox: Vec::new(),
    };
    let mut buf = Session::new_buffer();
    loop {
        // The read appends after the bytes the buffer holds (an incomplete frame). A bare
        // `Vec` would be read into from index 0 (tokio-uring reads into the whole capacity
        // and only moves `len` forward), so the kernel gets the spare capacity as a slice.
        // `after_write` leaves room; this only guards the lingering reads.
        buf.reserve(1);
        let start = buf.len();
        let read = pin!(stream.read(buf.slice(start..)));
        let Some((result, slice)) = conn.read_or_wake(read).await else {
            return;
        };
        buf = slice.into_inner();
        let n = match conn.ending.after_read(&result) {
            AfterRead::Serve(n) => n,
            // Draining: what the peer sends after our close is read and dropped, so that our
            // close does not turn into a reset.
            AfterRead::Discard => {
                buf.clear();
                continue;
            }
            // EOF or a socket error: the peer is gone (or, lingering, has answered our FIN).
            AfterRead::Over => {
                if conn.ending.is_serving() {
                    conn.session.handle_eof();
                }
                return;
            }
        };
        match conn.serve_read(buf, n, &faults).await {
            Some(next) => buf = next,
            None => return,
        }
    }
}

/// A connection's state around its socket and its buffer (which travels into the kernel with
/// each read, so it is passed along rather than kept here).
struct Conn<'a> {
    stream: &'a TcpStream,
    counters: &'a Counters,
    session: Session,
    timer: Timer,
    /// How the connection ends with its read in flight (see `wsport_server_common::ending`).
    ending: Ending,
    closing: closing::Subscription,
    shutting_down: bool,
    subscription: Option<hub::Subscription>,
    inbox: Vec<Frames>,
}

impl Conn<'_> {
    /// Await the read in flight, serving the timer, shutdown and deliveries meanwhile; `None`
    /// when the connection must be left with the read still in flight.
    async fn read_or_wake<F: Future>(&mut self, mut read: Pin<&mut F>) -> Option<F::Output> {
        loop {
            let wake_at = self.ending.wake_at(&self.session);
            let serving = self.ending.is_serving();
            // Only the read is polled to completion here; the losing timer and `closed`
            // futures are cancel-safe, and the read is polled again on the next turn.
            let wake = tokio::select! {
                biased;
                done = read.as_mut() => return Some(done),
                () = self.timer.until(wake_at, self.counters) => Wake::Deadline,
                () = self.closing.closed(), if !self.shutting_down && serving => Wake::Shutdown,
                taken = deliveries(self.subscription.as_ref(), &mut self.inbox), if self.subscription.is_some() && serving => Wake::Delivery(taken),
            };
            let now = Instant::now();
            if serving {
                self.on_wake(wake, now).await;
                continue;
            }
            // Only the timer wakes an ending connection: the linger ran out without the
            // peer's FIN, or the forced read did not complete.
            match self.ending.after_deadline(now) {
                AfterDeadline::Force(_) => self.ending = force(self.stream, now),
                // Last resort: the read is dropped in flight, and the runtime, which keeps
                // its buffer until the kernel lets go, cancels it when it shuts down.
                AfterDeadline::GiveUp => return None,
            }
        }
    }

    /// A timer, shutdown or delivery woke a serving connection while its read is in flight.
    async fn on_wake(&mut self, wake: Wake, now: Instant) {
        let control = match wake {
            Wake::Deadline => self.session.handle_deadline(now),
            Wake::Shutdown => {
                self.shutting_down = true;
                self.session.begin_shutdown(now)
            }
            Wake::Delivery(Taken::Frames) => {
                let mut control = Control::default();
                self.session.deliver(&self.inbox, &mut control.output);
                self.inbox.clear();
                control
            }
            Wake::Delivery(Taken::TooSlow) => {
                self.subscription = None;
                self.session.close_too_slow(now)
            }
        };
        // A ping or close frame, from its own buffer, while the read stays in flight:
        // the connection buffer may hold an incomplete frame and is in the kernel anyway.
        let (written, _) = write(
            self.stream,
            control.output,
            &mut self.timer,
            now,
            self.counters,
        )
        .await;
        if !written {
            self.session.handle_eof();
            self.ending = force(self.stream, now);
            return;
        }
        match control.end {
            None => {}
            // (`Close` comes from the read path only, where no read is in flight.)
            Some(End::Drop | End::Close) => self.ending = force(self.stream, now),
            Some(End::Linger) => {
                // The read in flight becomes the first draining read.
                let _ = self.stream.shutdown(Halves::Write);
                self.ending = Ending::linger(now);
            }
        }
    }

    /// `n` bytes were read into `buf`: let the session answer, and write the answer. The
    /// buffer for the next read, or `None` when the connection is over (no read is in
    /// flight: dropping the stream closes it).
    async fn serve_read(
        &mut self,
        mut buf: Vec<u8>,
        n: usize,
        faults: &impl Faults,
    ) -> Option<Vec<u8>> {
        self.counters.add_bytes_in(n as u64);
        let now = Instant::now();
        let step = self.session.handle_read(&mut buf, now);
        faults.after_read(now, step.messages);
        if let Some(subscription) = &self.subscription {
            if let Some(frames) = self.session.take_published() {
                subscription.publish(&frames);
            }
        }
        let output = step.output.clone();
        let (written, mut buf) = write_range(
            self.stream,
            buf,
            output,
            &mut self.timer,
            now,
            self.counters,
        )
        .await;
        if !written {
            self.session.handle_eof();
            return None;
        }
        self.session.after_write(&mut buf, &step);
        match step.end {
            None => {}
            Some(End::Drop | End::Close) => return None,
            Some(End::Linger) => {
                // Our FIN; then read and discard until the peer's FIN or LINGER (see `End`).
                let _ = self.stream.shutdown(Halves::Write);
                self.ending = Ending::linger(now);
                buf.clear();
            }
        }
        Some(buf)
    }
}

/// End a connection whose read is still in flight: `shutdown(2)` makes the kernel complete
/// the read (it returns 0, or the bytes that just arrived, which no one wants any more), and
/// the completion hands the buffer back; the loop awaits it up to `FORCE_GRACE`.
fn force(stream: &TcpStream, now: Instant) -> Ending {
    let _ = stream.shutdown(Halves::Both);
    Ending::forced(now)
}

/// Send `buf[range]`, started at `now`; false when the peer is gone or does not read for too
/// long. The buffer comes back either way.
async fn write_range(
    stream: &TcpStream,
    buf: Vec<u8>,
    range: Range<usize>,
    timer: &mut Timer,
    now: Instant,
    counters: &Counters,
) -> (bool, Vec<u8>) {
    if range.is_empty() {
        return (true, buf);
    }
    let (written, slice) = write(stream, buf.slice(range), timer, now, counters).await;
    (written, slice.into_inner())
}

/// Send all of `bytes`, started at `now`; false when the peer is gone or does not read for
/// [`WRITE_TIMEOUT`].
async fn write<T: BoundedBuf>(
    stream: &TcpStream,
    bytes: T,
    timer: &mut Timer,
    now: Instant,
    counters: &Counters,
) -> (bool, T) {
    let len = bytes.bytes_init();
    if len == 0 {
        return (true, bytes);
    }
    let mut send = pin!(stream.write_all(bytes));
    // The timer is consulted only if the write does not complete at once, as in every server;
    // an io_uring write never does, but mostly finds the timer armed early enough already.
    match timer
        .bound(send.as_mut(), now + WRITE_TIMEOUT, counters)
        .await
    {
        Some((result, bytes)) => {
            if result.is_ok() {
                counters.add_bytes_out(len as u64);
            }
            (result.is_ok(), bytes)
        }
        None => {
            // The write in flight cannot be cancelled: shut the socket so that the kernel
            // fails it (EPIPE), and take the buffer back from its completion. The connection
            // is over; a read in flight, if any, completes the same way.
            let _ = stream.shutdown(Halves::Both);
            let (_, bytes) = send.await;
            (false, bytes)
        }
    }
}
