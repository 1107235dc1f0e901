//! The process around the runtimes, the same for every server: signal handling, per-thread
//! counters, one named and pinned thread per runtime, the `listening` lines, the periodic
//! stats and the final counters line. Each server only supplies what one runtime thread runs.

use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::counters::{self, ConnectionLimit, Counters};
use crate::hub::Hub;
use crate::listen::{announce, ListenSpec, Scheme};
use crate::session::Session;
use crate::shutdown::Shutdown;
use crate::{affinity, limits, socket, ServerConfig};

/// What every connection of the process shares.
#[derive(Debug)]
pub struct Shared {
    /// The validated configuration.
    pub config: Arc<ServerConfig>,
    /// Connections of the whole process, against `--max-connections`.
    pub limit: ConnectionLimit,
    /// Set by SIGINT/SIGTERM; runtimes poll it (see [`Shutdown`]).
    pub shutdown: Shutdown,
    /// `--broadcast`: the fan-out every connection subscribes to.
    pub hub: Option<Arc<Hub>>,
}

/// What one runtime thread is given: its index, its own SO_REUSEPORT listeners and counters.
#[derive(Debug)]
pub struct RuntimeThread {
    /// 0-based thread index (also the index into `--cpus`).
    pub index: usize,
    /// One listener per `--listen`, bound for this thread.
    pub listeners: Vec<(ListenSpec, TcpListener)>,
    /// This thread's counters (no cross-core contention).
    pub counters: Arc<Counters>,
    /// Process-wide state.
    pub shared: Arc<Shared>,
}

/// A server process being set up and run.
#[derive(Debug)]
pub struct Process {
    shared: Arc<Shared>,
    counters: Vec<Arc<Counters>>,
    started: Instant,
}

impl Process {
    /// Install the signal handlers and make one counter set per thread.
    pub fn new(config: Arc<ServerConfig>) -> io::Result<Self> {
        let shutdown = Shutdown::install()?;
        // Each connection is a descriptor; past the limit, accept fails with EMFILE (said on
        // stderr by the accept loops).
        limits::raise_nofile()?;
        let limit = ConnectionLimit::new(config.max_connections);
        let counters = (0..config.threads).map(|_| Arc::default()).collect();
        let hub = config.broadcast.then(Hub::new);
        let shared = Arc::new(Shared {
            config,
            limit,
            shutdown,
            hub,
        });
        Ok(Self {
            shared,
            counters,
            started: Instant::now(),
        })
    }

    /// Process-wide state.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Counters of thread `index`.
    pub fn counters(&self, index: usize) -> &Arc<Counters> {
        &self.counters[index]
    }

    /// Thread 0 on the calling thread, pinned to its `--cpus` entry: for a server with one
    /// runtime thread, which then needs no second thread at all. glibc wraps every `send` and
    /// `recv` in cancellation bookkeeping once a process has started a second thread (about
    /// 85 instructions a message in an echo; results/2026-12-06-vm/icount-fair-loops/).
    pub fn this_thread(&self, listeners: Vec<(ListenSpec, TcpListener)>) -> RuntimeThread {
        if let Some(cpu) = self.shared.config.cpu_for_thread(0) {
            // As in `spawn`: odd enough to say, not to stop for.
            if let Err(error) = affinity::pin_current_thread(cpu) {
                eprintln!("wsport: could not pin to CPU {cpu}: {error}");
            }
        }
        RuntimeThread {
            index: 0,
            listeners,
            counters: Arc::clone(&self.counters[0]),
            shared: Arc::clone(&self.shared),
        }
    }

    /// Start one thread per listener set (as `socket::bind_listeners` returns them), named
    /// `{name}-{index}`, pinned to its `--cpus` entry, running `run`.
    pub fn spawn<R, F>(
        &self,
        name: &str,
        listeners: Vec<Vec<(ListenSpec, TcpListener)>>,
        run: F,
    ) -> io::Result<Vec<JoinHandle<R>>>
    where
        R: Send + 'static,
        F: Fn(RuntimeThread) -> R + Send + Clone + 'static,
    {
        let mut threads = Vec::with_capacity(listeners.len());
        for (index, listeners) in listeners.into_iter().enumerate() {
            let thread = RuntimeThread {
                index,
                listeners,
                counters: Arc::clone(&self.counters[index]),
                shared: Arc::clone(&self.shared),
            };
            let run = run.clone();
            let cpu = self.shared.config.cpu_for_thread(index);
            let thread_name = format!("{name}-{index}");
            threads.push(
                std::thread::Builder::new()
                    .name(thread_name.clone())
                    .spawn(move || {
                        if let Some(cpu) = cpu {
                            // --cpus was checked against the affinity mask; failing here is odd
                            // enough to say, not to stop for.
                            if let Err(error) = affinity::pin_current_thread(cpu) {
                                eprintln!("{thread_name}: could not pin to CPU {cpu}: {error}");
                            }
                        }
                        run(thread)
                    })?,
            );
        }
        Ok(threads)
    }

    /// Announce `specs` (the `listening <url>` lines scripts wait for), print stats every
    /// `--stats` while `serve` runs, then print the final counters line.
    pub fn serve<T>(&self, specs: &[ListenSpec], serve: impl FnOnce() -> T) -> io::Result<T> {
        let serving = self.announce(specs)?;
        let result = serve();
        serving.finish();
        Ok(result)
    }

    /// The first half of [`serve`](Self::serve), for a server whose runtime announces from
    /// inside itself, once it runs (a runtime on the main thread cannot return to `main` to
    /// say it is ready): start the `--stats` printer and print the `listening` lines.
    pub fn announce(&self, specs: &[ListenSpec]) -> io::Result<Serving<'_>> {
        let stop_stats = Arc::new(AtomicBool::new(false));
        let stats = match self.shared.config.stats_interval {
            Some(interval) => Some(counters::spawn_stats_printer(
                self.counters.clone(),
                interval,
                Arc::clone(&stop_stats),
            )?),
            None => None,
        };
        for spec in specs {
            announce(spec);
        }
        Ok(Serving {
            process: self,
            stop_stats,
            stats,
        })
    }
}

/// A process that announced its listeners ([`Process::announce`]); [`finish`](Self::finish)
/// once its runtimes returned.
#[must_use = "finish prints the final counters"]
#[derive(Debug)]
pub struct Serving<'a> {
    process: &'a Process,
    stop_stats: Arc<AtomicBool>,
    stats: Option<JoinHandle<()>>,
}

impl Serving<'_> {
    /// Stop the `--stats` printer and print the final counters line.
    pub fn finish(self) {
        self.stop_stats.store(true, Ordering::Relaxed);
        if let Some(stats) = self.stats {
            let _ = stats.join();
        }
        counters::print_final(&self.process.counters, self.process.started);
    }
}

/// Turn a socket just accepted on a `scheme` listener into its [`Session`]: TCP_NODELAY, then
/// [`Session::accept`]. `None` (said on stderr) when rustls cannot start a wss session.
pub fn admit(
    stream: &impl AsRawFd,
    shared: &Shared,
    counters: &Arc<Counters>,
    scheme: Scheme,
) -> Option<Session> {
    // Without TCP_NODELAY small echoes wait on Nagle; failing to set it is not fatal.
    let _ = socket::configure_stream(stream);
    match Session::accept(
        &shared.config,
        counters,
        &shared.limit,
        scheme,
        Instant::now(),
    ) {
        Ok(session) => Some(session),
        Err(error) => {
            eprintln!("wsport: TLS setup failed: {error}");
            None
        }
    }
}

/// What an accepted connection runs.
// Moved once per connection into its task: boxing the session would only add an allocation
// to every WebSocket connection.
#[allow(clippy::large_enum_variant)]
pub enum Serve {
    /// The WebSocket protocol, driven by its session.
    WebSocket(Session),
    /// `--raw-tcp`: bytes echoed as they come, the runtime's floor.
    Raw,
}

/// [`admit`], or under `--raw-tcp` TCP_NODELAY alone: what to run on a socket just accepted
/// on a `scheme` listener. `None` when rustls cannot start a wss session.
pub fn admit_connection(
    stream: &impl AsRawFd,
    shared: &Shared,
    counters: &Arc<Counters>,
    scheme: Scheme,
) -> Option<Serve> {
    if shared.config.raw_tcp {
        // As for a session: small echoes must not wait on Nagle; failing is not fatal.
        let _ = socket::configure_stream(stream);
        return Some(Serve::Raw);
    }
    admit(stream, shared, counters, scheme).map(Serve::WebSocket)
}

/// The listen specs with their real ports (the first thread's: every thread binds the same).
pub fn specs(listeners: &[Vec<(ListenSpec, TcpListener)>]) -> Vec<ListenSpec> {
    listeners
        .first()
        .map(|first| first.iter().map(|(spec, _)| *spec).collect())
        .unwrap_or_default()
}
