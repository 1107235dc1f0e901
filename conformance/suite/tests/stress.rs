//! Stress (issue 3): under load — N connections echoing continuously for a while, with
//! clients killed mid-frame at random — no server leaks connections or file descriptors,
//! and none stalls other connections.
//!
//! Slow, so `#[ignore]`d; `scripts/stress.sh` builds the release servers and runs it:
//!
//! ```text
//! scripts/stress.sh                                   # 1000 connections, 60 s per config
//! WSPORT_STRESS_SECS=20 scripts/stress.sh --servers tokio,monoio-epoll
//! ```
//!
//! Per server config (one server, `--threads 1 --stats 1s`, one ws and one wss listener):
//!
//! 1. Count the server's descriptors (`/proc/<pid>/fd`) once it runs, before any client.
//! 2. Open `WSPORT_STRESS_CONNS` connections (default 1000), alternately ws and wss, spread
//!    over a few worker threads that each multiplex their share with poll(2). Every
//!    connection echoes in a closed loop: one message in flight, random size 1 B..=16 KiB,
//!    text or binary, the echo compared byte for byte.
//! 3. For `WSPORT_STRESS_SECS` (default 60), about 5 times a second a killer picks a
//!    connection, writes a frame header and half its payload, and drops the socket without
//!    any close (one in three with `SO_LINGER` 0, so the server sees RST instead of FIN);
//!    a replacement connection of the same scheme takes its place.
//! 4. Meanwhile a watchdog checks every second that the server runs and has not panicked,
//!    samples its descriptors, and requires every live connection to have completed an
//!    echo within the last [`STALL`]: one that did not fails the config, named.
//! 5. Then every connection closes cleanly (close 1000, the server's close, EOF), and
//!    within [`SETTLE`] the server's `connections_open` must reach 0 and its descriptor count
//!    must return exactly to the count of step 1.
//! 6. SIGTERM: exit status 0, and a `final` line with `connections_open` 0.
//!
//! A table of what each config did (echoes, kills, descriptors before/peak/after,
//! connections_open after, the longest gap between two echoes of one connection) is printed
//! at the end, failed configs included.

use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Barrier, Mutex};
use std::thread;

use wsport_conformance::config::notice;
use wsport_conformance::frame::{self, ServerFrame};
use wsport_conformance::prelude::*;
use wsport_conformance::raw::{describe_difference, MAX_SERVER_FRAME};
use wsport_conformance::stress::{self, NbStream};
use wsport_harness::rng::Rng;

/// A live connection without a completed echo for this long is stalled.
const STALL: Duration = Duration::from_secs(5);
/// How long the server gets, after the last client closed, to report 0 connections and
/// return to its descriptor count (closes are asynchronous; `--stats 1s` adds up to 1 s).
const SETTLE: Duration = Duration::from_secs(6);
/// How long the clean close of every connection may take.
const CLOSE_LIMIT: Duration = Duration::from_secs(6);
/// Largest echoed payload.
const MAX_PAYLOAD: usize = 16 * 1024;
/// Mean time between kills: ~5 per second.
const KILL_EVERY_MS: std::ops::RangeInclusive<u64> = 100..=300;
/// Connections per worker thread (roughly): 1000 connections use 8 threads.
const CONNS_PER_WORKER: usize = 125;
const MAX_WORKERS: usize = 16;

#[test]
#[ignore = "slow (minutes): run by scripts/stress.sh"]
fn connections_under_load_with_killed_clients() {
    let plan = Plan::from_env().unwrap_or_else(|e| panic!("stress: {e}"));
    // Client sockets here, server sockets in the children (which inherit the limit).
    let limit =
        stress::raise_nofile(plan.conns as u64 + 1024).unwrap_or_else(|e| panic!("stress: {e}"));
    notice(&format!(
        "stress: {} connections (half ws, half wss) for {:?} per config, {} worker threads, \
         RLIMIT_NOFILE {limit}",
        plan.conns, plan.duration, plan.workers
    ));
    let reports = Mutex::new(Vec::new());
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        for_each_server("stress", |config| {
            let mut report = Report::new(config.name);
            let outcome = Launch::new(config)
                .args(&["--threads", "1", "--stats", "1s"])
                .start()
                .and_then(|server| stress_one(&server, &plan, &mut report));
            report.verdict = if outcome.is_ok() { "ok" } else { "FAILED" };
            notice(&format!("stress [{}]: {}", config.name, report.row()));
            reports
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(report);
            outcome
        });
    }));
    let reports = reports.into_inner().unwrap_or_else(|e| e.into_inner());
    notice(&table(&plan, &reports));
    if let Err(panic) = outcome {
        panic::resume_unwind(panic);
    }
}

// ---- plan and report ---------------------------------------------------------------------

struct Plan {
    duration: Duration,
    conns: usize,
    workers: usize,
}

impl Plan {
    fn from_env() -> Result<Plan, String> {
        let secs = env_number("WSPORT_STRESS_SECS", 60)?;
        let conns = env_number("WSPORT_STRESS_CONNS", 1000)? as usize;
        if secs == 0 || conns < 2 {
            return Err("WSPORT_STRESS_SECS must be >= 1 and WSPORT_STRESS_CONNS >= 2".into());
        }
        let workers = conns.div_ceil(CONNS_PER_WORKER).clamp(1, MAX_WORKERS);
        Ok(Plan {
            duration: Duration::from_secs(secs),
            conns,
            workers,
        })
    }
}

fn env_number(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a whole number")),
        _ => Ok(default),
    }
}

/// What one config's run measured; whatever was reached is filled in, even on failure.
struct Report {
    config: &'static str,
    verdict: &'static str,
    echoes: u64,
    bytes: u64,
    kills: u64,
    resets: u64,
    fds_before: Option<usize>,
    fds_peak: Option<usize>,
    fds_after: Option<usize>,
    open_after: Option<u64>,
    max_gap: Duration,
    exit: String,
}

impl Report {
    fn new(config: &'static str) -> Report {
        Report {
            config,
            verdict: "FAILED",
            echoes: 0,
            bytes: 0,
            kills: 0,
            resets: 0,
            fds_before: None,
            fds_peak: None,
            fds_after: None,
            open_after: None,
            max_gap: Duration::ZERO,
            exit: "-".into(),
        }
    }

    fn row(&self) -> String {
        let opt = |v: Option<usize>| v.map_or("-".into(), |v| v.to_string());
        format!(
            "{:<13} {:>9} {:>7} {:>5}/{:<5} {:>10} {:>8} {:>9} {:>10} {:>11.2} {:>4} {}",
            self.config,
            self.echoes,
            self.bytes / (1 << 20),
            self.kills,
            self.resets,
            opt(self.fds_before),
            opt(self.fds_peak),
            opt(self.fds_after),
            self.open_after.map_or("-".into(), |v| v.to_string()),
            self.max_gap.as_secs_f64(),
            self.exit,
            self.verdict
        )
    }
}

fn table(plan: &Plan, reports: &[Report]) -> String {
    let mut out = format!(
        "stress results: {} connections (ws+wss), {:?} per config, kills ~5/s\n",
        plan.conns, plan.duration
    );
    let _ = writeln!(
        out,
        "{:<13} {:>9} {:>7} {:>11} {:>10} {:>8} {:>9} {:>10} {:>11} {:>4} verdict",
        "config",
        "echoes",
        "MiB",
        "kills/rst",
        "fds_before",
        "fds_peak",
        "fds_after",
        "open_after",
        "max_gap (s)",
        "exit"
    );
    for report in reports {
        let _ = writeln!(out, "{}", report.row());
    }
    out
}

// ---- one config --------------------------------------------------------------------------

/// State shared by the workers, the killer and the watchdog of one run.
struct Run<'a> {
    server: &'a Server,
    start: Instant,
    /// The load phase is over: close everything cleanly.
    stop: AtomicBool,
    /// The killer has stopped handing over replacement connections.
    killer_done: AtomicBool,
    failed: AtomicBool,
    failures: Mutex<Vec<String>>,
    echoes: AtomicU64,
    bytes: AtomicU64,
    kills: AtomicU64,
    resets: AtomicU64,
    max_gap_us: AtomicU64,
    next_id: AtomicU64,
    /// One table of slots per worker, for the watchdog.
    slots: Vec<Vec<Slot>>,
    /// Kills ordered from each worker, not yet carried out.
    kill_orders: Vec<AtomicUsize>,
}

/// What the watchdog can see of one live connection.
#[derive(Default)]
struct Slot {
    /// 0: free.
    id: AtomicU64,
    wss: AtomicBool,
    /// Milliseconds since the run started, at the last completed echo (or at start).
    progress_ms: AtomicU64,
    /// The message awaiting its echo: `len << 8 | opcode`.
    awaiting: AtomicU64,
    /// Has the request been handed to the kernel completely?
    flushed: AtomicBool,
    /// Bytes of the reply received so far.
    received: AtomicU64,
}

impl Run<'_> {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn fail(&self, why: String) {
        self.failed.store(true, Relaxed);
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() < 20 {
            failures.push(why);
        }
    }

    fn has_failed(&self) -> bool {
        self.failed.load(Relaxed)
    }

    fn endpoint(&self, wss: bool) -> &Endpoint {
        self.server
            .endpoint(if wss { Scheme::Wss } else { Scheme::Ws })
    }

    fn failures(&self) -> Outcome {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        collect(failures.iter().map(|f| Err(format!("- {f}"))))
    }
}

fn stress_one(server: &Server, plan: &Plan, report: &mut Report) -> Outcome {
    let pid = server.pid();
    // One stats line proves the server is past its start-up; count its descriptors then.
    server
        .wait_stdout(0, within(Duration::from_secs(2)), |l| json_line(l, "stats"))
        .ok_or("with --stats 1s: no stats line within 3 s of start")?;
    let fds_before = stress::open_fds(pid)?;
    report.fds_before = Some(fds_before);

    let per_worker =
        |w: usize| plan.conns / plan.workers + usize::from(w < plan.conns % plan.workers);
    let run = Run {
        server,
        start: Instant::now(),
        stop: AtomicBool::new(false),
        killer_done: AtomicBool::new(false),
        failed: AtomicBool::new(false),
        failures: Mutex::new(Vec::new()),
        echoes: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        kills: AtomicU64::new(0),
        resets: AtomicU64::new(0),
        max_gap_us: AtomicU64::new(0),
        next_id: AtomicU64::new(1),
        // A little slack: a replacement never arrives before its victim left, but costs
        // nothing to allow.
        slots: (0..plan.workers)
            .map(|w| (0..per_worker(w) + 4).map(|_| Slot::default()).collect())
            .collect(),
        kill_orders: (0..plan.workers).map(|_| AtomicUsize::new(0)).collect(),
    };
    let (replace_tx, replace_rx) = mpsc::channel::<Replace>();
    let inboxes: Vec<(Sender<Conn>, Receiver<Conn>)> =
        (0..plan.workers).map(|_| mpsc::channel()).collect();
    let (senders, receivers): (Vec<_>, Vec<_>) = inboxes.into_iter().unzip();
    // Workers open their connections, then all start echoing together.
    let ready = Barrier::new(plan.workers + 1);
    let mut fds_peak = fds_before;

    thread::scope(|scope| {
        let (run, ready, senders) = (&run, &ready, &senders);
        let mut first = 0;
        for (w, inbox) in receivers.into_iter().enumerate() {
            let count = per_worker(w);
            let replace_tx = replace_tx.clone();
            scope.spawn(move || worker(run, w, first, count, inbox, replace_tx, ready));
            first += count;
        }
        drop(replace_tx);
        ready.wait();
        if run.has_failed() {
            run.stop.store(true, Relaxed);
            run.killer_done.store(true, Relaxed);
            return;
        }
        notice(&format!(
            "stress [{}]: {} connections open in {:.1?}, {} server fds; load for {:?}",
            server.name(),
            plan.conns,
            run.start.elapsed(),
            stress::open_fds(pid).unwrap_or(0),
            plan.duration
        ));
        let load_start = Instant::now();
        scope.spawn(move || killer(run, replace_rx, senders));
        fds_peak = watchdog(run, pid, load_start + plan.duration);
        run.stop.store(true, Relaxed);
    });

    report.echoes = run.echoes.load(Relaxed);
    report.bytes = run.bytes.load(Relaxed);
    report.kills = run.kills.load(Relaxed);
    report.resets = run.resets.load(Relaxed);
    report.max_gap = Duration::from_micros(run.max_gap_us.load(Relaxed));
    report.fds_peak = Some(fds_peak);
    let health = collect([server.check_alive(), server.check_no_panic()]);
    if run.has_failed() {
        return collect([run.failures(), health]).map_err(|e| context(server, e));
    }
    health.map_err(|e| context(server, e))?;
    let settled = settle(server, pid, fds_before, report);
    let exit = sigterm_exit(server, report);
    collect([settled, exit]).map_err(|e| context(server, e))
}

fn context(server: &Server, failures: String) -> String {
    format!(
        "{failures}\n  command: {}{}",
        server.command_line(),
        server.stderr_tail(20)
    )
}

/// Every second until `end`: the server lives and has not panicked, its descriptors are
/// sampled, and no live connection has gone [`STALL`] without an echo. Returns the peak
/// descriptor count.
fn watchdog(run: &Run, pid: u32, end: Instant) -> usize {
    let mut peak = 0;
    let mut next_progress = Instant::now() + Duration::from_secs(10);
    while !run.has_failed() && Instant::now() < end {
        thread::sleep(Duration::from_secs(1).min(end.saturating_duration_since(Instant::now())));
        if let Err(e) = collect([run.server.check_alive(), run.server.check_no_panic()]) {
            run.fail(format!("during load: {e}"));
            break;
        }
        match stress::open_fds(pid) {
            Ok(fds) => peak = peak.max(fds),
            Err(e) => run.fail(format!("during load: {e}")),
        }
        let now = run.now_ms();
        let stalled: Vec<String> = run
            .slots
            .iter()
            .flatten()
            .filter_map(|slot| {
                let id = slot.id.load(Relaxed);
                let idle = now.saturating_sub(slot.progress_ms.load(Relaxed));
                (id != 0 && idle > STALL.as_millis() as u64).then(|| describe_slot(slot, idle))
            })
            .collect();
        if !stalled.is_empty() {
            let shown: Vec<_> = stalled.iter().take(8).cloned().collect();
            run.fail(format!(
                "{}: {} live connections without an echo for over {STALL:?} at {:.1} s into \
                 the run ({} echoes, {} kills so far):\n    {}",
                run.server.name(),
                stalled.len(),
                now as f64 / 1000.0,
                run.echoes.load(Relaxed),
                run.kills.load(Relaxed),
                shown.join("\n    ")
            ));
        }
        if Instant::now() >= next_progress {
            next_progress += Duration::from_secs(10);
            notice(&format!(
                "stress [{}]: {:.0} s: {} echoes, {} kills, {} server fds, {}",
                run.server.name(),
                run.start.elapsed().as_secs_f64(),
                run.echoes.load(Relaxed),
                run.kills.load(Relaxed),
                peak,
                last_stats(run.server, 0).map_or("no stats yet".into(), |s| format!(
                    "connections_open {}",
                    s.0
                ))
            ));
        }
    }
    peak
}

fn describe_slot(slot: &Slot, idle_ms: u64) -> String {
    let awaiting = slot.awaiting.load(Relaxed);
    let (len, opcode) = (awaiting >> 8, (awaiting & 0xff) as u8);
    format!(
        "conn #{} ({}): {:.1} s since its last echo; awaiting the echo of a {len}-byte {} \
         message, request {}, {} reply bytes received",
        slot.id.load(Relaxed),
        if slot.wss.load(Relaxed) { "wss" } else { "ws" },
        idle_ms as f64 / 1000.0,
        opcode::name(opcode),
        if slot.flushed.load(Relaxed) {
            "fully written"
        } else {
            "NOT fully written (server not reading)"
        },
        slot.received.load(Relaxed),
    )
}

/// The last stats line's `connections_open`, and its stdout index, at or after line `from`.
fn last_stats(server: &Server, from: usize) -> Option<(u64, usize)> {
    let lines = server.stdout_lines();
    lines
        .iter()
        .enumerate()
        .skip(from)
        .rev()
        .find_map(|(i, l)| Some((json_line(l, "stats")?.get("connections_open")?.as_u64()?, i)))
}

/// After the clients left: `connections_open` 0 (in a stats line printed after they left)
/// and the descriptor count back to `fds_before`, both within [`SETTLE`].
fn settle(server: &Server, pid: u32, fds_before: usize, report: &mut Report) -> Outcome {
    let from = server.stdout_lines().len();
    let deadline = Instant::now() + SETTLE;
    loop {
        let open = last_stats(server, from).map(|(open, _)| open);
        let fds = stress::open_fds(pid)?;
        report.open_after = open;
        report.fds_after = Some(fds);
        if open == Some(0) && fds == fds_before {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let mut problems = Vec::new();
            if open != Some(0) {
                problems.push(match open {
                    Some(n) => format!("connections_open is still {n} (a connection leak)"),
                    None => "no stats line was printed".into(),
                });
            }
            if fds != fds_before {
                problems.push(format!(
                    "the server holds {fds} descriptors, {fds_before} before the load \
                     ({:+}: {})",
                    fds as i64 - fds_before as i64,
                    fd_kinds(pid)
                ));
            }
            return Err(format!(
                "- {SETTLE:?} after every client closed: {}",
                problems.join("; ")
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// What a process's descriptors point at, counted by kind: "anon_inode:[eventfd] 1, socket 12".
fn fd_kinds(pid: u32) -> String {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return "unreadable".into();
    };
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for entry in dir.flatten() {
        let target = std::fs::read_link(entry.path())
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "?".into());
        // "socket:[1234]" counts as "socket"; "anon_inode:[eventfd]" and paths stay whole.
        let kind = match target.split_once(":[") {
            Some((kind, inode)) if inode.trim_end_matches(']').parse::<u64>().is_ok() => {
                kind.into()
            }
            _ => target,
        };
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((kind, 1)),
        }
    }
    kinds.sort();
    let kinds: Vec<_> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    kinds.join(", ")
}

/// SIGTERM with no client left: exit 0 within ~5 s, last line `final` with nothing open.
fn sigterm_exit(server: &Server, report: &mut Report) -> Outcome {
    server.sigterm().map_err(|e| format!("- {e}"))?;
    let status = server
        .wait_exit(within(Duration::from_secs(5)))
        .map_err(|e| format!("- after SIGTERM: {e}"))?;
    report.exit = status
        .code()
        .map_or_else(|| status.to_string(), |c| c.to_string());
    ensure!(
        status.success(),
        "- after SIGTERM: expected exit status 0; got {status}"
    );
    let stdout = server.wait_stdout_closed(Duration::from_secs(2))?;
    let last = stdout.iter().rev().find(|l| !l.trim().is_empty());
    let open = last
        .and_then(|l| json_line(l, "final"))
        .and_then(|f| f.get("connections_open")?.as_u64());
    ensure!(
        open == Some(0),
        "- after SIGTERM: expected a last line {{\"type\":\"final\",...,\"connections_open\":0}}; \
         got {last:?}"
    );
    Ok(())
}

// ---- the killer --------------------------------------------------------------------------

/// A worker killed a connection and wants one of the same scheme in its place.
struct Replace {
    worker: usize,
    wss: bool,
}

/// Orders a kill from a random worker every 100-300 ms and opens the replacement
/// connections the workers ask for, until the load phase ends.
fn killer(run: &Run, replace: Receiver<Replace>, inboxes: &[Sender<Conn>]) {
    let mut rng = Rng::new();
    let mut next_kill = Instant::now();
    while !run.stop.load(Relaxed) && !run.has_failed() {
        let now = Instant::now();
        if now >= next_kill {
            let worker = rng.below(inboxes.len() as u64) as usize;
            run.kill_orders[worker].fetch_add(1, Relaxed);
            let ms =
                KILL_EVERY_MS.start() + rng.below(KILL_EVERY_MS.end() - KILL_EVERY_MS.start() + 1);
            next_kill = now + Duration::from_millis(ms);
        }
        let wait = next_kill
            .saturating_duration_since(now)
            .min(Duration::from_millis(100));
        match replace.recv_timeout(wait) {
            Ok(Replace { worker, wss }) => match Conn::open(run, wss) {
                Ok(conn) => {
                    // A worker that is gone has failed already.
                    let _ = inboxes[worker].send(conn);
                }
                Err(e) => run.fail(format!(
                    "{}: opening a replacement {} connection during load: {e}",
                    run.server.name(),
                    if wss { "wss" } else { "ws" }
                )),
            },
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    run.killer_done.store(true, Relaxed);
}

// ---- the workers -------------------------------------------------------------------------

/// One client connection in a worker's hands.
struct Conn {
    id: u64,
    wss: bool,
    stream: NbStream,
    inbuf: Vec<u8>,
    /// The message awaiting its echo.
    expected: Option<(u8, Vec<u8>)>,
    /// A fragmented echo being reassembled.
    partial: Option<(u8, Vec<u8>)>,
    last_echo: Instant,
    slot: usize,
    /// Close sent (the clean close after the load phase).
    closing: bool,
    /// The server's close frame arrived.
    got_close: bool,
}

/// What became of a connection after some IO.
enum Fate {
    Live,
    /// Closed cleanly after the close handshake: forget it.
    Done,
    Failed(String),
}

impl Conn {
    fn open(run: &Run, wss: bool) -> Result<Conn, String> {
        let (stream, inbuf) = NbStream::upgrade(run.endpoint(wss))?;
        Ok(Conn {
            id: run.next_id.fetch_add(1, Relaxed),
            wss,
            stream,
            inbuf,
            expected: None,
            partial: None,
            last_echo: Instant::now(),
            slot: usize::MAX,
            closing: false,
            got_close: false,
        })
    }

    fn name(&self) -> String {
        format!(
            "conn #{} ({})",
            self.id,
            if self.wss { "wss" } else { "ws" }
        )
    }

    /// Queue the next message: random size and kind, random content.
    fn send_next(&mut self, rng: &mut Rng, slot: &Slot) {
        let len = 1 + rng.below(MAX_PAYLOAD as u64) as usize;
        let text = rng.below(2) == 0;
        let frame = if text {
            Frame::text(printable(rng, len))
        } else {
            Frame::binary(rng.bytes(len))
        };
        self.stream.queue(&frame.encode());
        slot.awaiting
            .store((len as u64) << 8 | u64::from(frame.opcode), Relaxed);
        slot.flushed.store(false, Relaxed);
        slot.received.store(0, Relaxed);
        self.expected = Some((frame.opcode, frame.payload));
    }

    /// Read what is there, act on every complete frame, write what is queued.
    fn drive(&mut self, run: &Run, rng: &mut Rng, slot: &Slot) -> Fate {
        let progress = match self.stream.read_available(&mut self.inbuf) {
            Ok(progress) => progress,
            Err(e) => {
                return Fate::Failed(format!("{}: read error {}: {e}", self.name(), self.state()))
            }
        };
        if progress.bytes > 0 {
            slot.received.fetch_add(progress.bytes as u64, Relaxed);
        }
        loop {
            let frame = match frame::decode_frame(&self.inbuf, MAX_SERVER_FRAME) {
                Ok(Some((frame, used))) => {
                    self.inbuf.drain(..used);
                    frame
                }
                Ok(None) => break,
                Err(e) => {
                    return Fate::Failed(format!("{}: undecodable frame: {e:?}", self.name()))
                }
            };
            if let Err(e) = self.on_frame(frame, run, rng, slot) {
                return Fate::Failed(format!("{}: {e}", self.name()));
            }
        }
        if progress.eof {
            if self.closing && self.got_close && self.inbuf.is_empty() {
                return Fate::Done;
            }
            return Fate::Failed(format!(
                "{}: the server closed the connection {} ({} bytes of a frame buffered)",
                self.name(),
                self.state(),
                self.inbuf.len()
            ));
        }
        if let Err(e) = self.stream.flush() {
            return Fate::Failed(format!(
                "{}: write error {}: {e}",
                self.name(),
                self.state()
            ));
        }
        if !self.stream.wants_write() {
            slot.flushed.store(true, Relaxed);
        }
        Fate::Live
    }

    fn state(&self) -> String {
        match (&self.expected, self.closing) {
            (_, true) => format!(
                "after the client's close 1000 (server close received: {})",
                self.got_close
            ),
            (Some((opcode, payload)), false) => format!(
                "while awaiting the echo of a {}-byte {} message",
                payload.len(),
                opcode::name(*opcode)
            ),
            (None, false) => "with no message in flight".into(),
        }
    }

    fn on_frame(&mut self, frame: ServerFrame, run: &Run, rng: &mut Rng, slot: &Slot) -> Outcome {
        ensure!(
            !frame.is_masked() && frame.rsv == 0,
            "expected unmasked frames with RSV clear; got {frame}"
        );
        match frame.opcode {
            opcode::PING => {
                self.stream.queue(&Frame::pong(frame.payload).encode());
                return Ok(());
            }
            opcode::PONG => return Ok(()),
            opcode::CLOSE => {
                ensure!(
                    self.closing && !self.got_close,
                    "unexpected {frame} {}",
                    self.state()
                );
                self.got_close = true;
                return Ok(());
            }
            opcode::TEXT | opcode::BINARY if self.partial.is_none() => {
                self.partial = Some((frame.opcode, frame.payload));
            }
            opcode::CONTINUATION if self.partial.is_some() => {
                let (_, payload) = self.partial.as_mut().expect("checked");
                payload.extend_from_slice(&frame.payload);
            }
            _ => {
                return Err(format!(
                    "unexpected {frame} (a fragmented message in progress: {})",
                    self.partial.is_some()
                ))
            }
        }
        if !frame.fin {
            return Ok(());
        }
        let (opcode, payload) = self.partial.take().expect("set above");
        let Some((want_opcode, want)) = self.expected.take() else {
            return Err(format!(
                "a {} message of {} bytes that nobody asked for ({})",
                opcode::name(opcode),
                payload.len(),
                self.state()
            ));
        };
        ensure!(
            opcode == want_opcode && payload == want,
            "sent a {}-byte {} message; got back a {} message: {}",
            want.len(),
            opcode::name(want_opcode),
            opcode::name(opcode),
            describe_difference(&payload, &want)
        );
        let now = Instant::now();
        let gap = now.duration_since(self.last_echo);
        self.last_echo = now;
        run.max_gap_us.fetch_max(gap.as_micros() as u64, Relaxed);
        run.echoes.fetch_add(1, Relaxed);
        run.bytes.fetch_add(want.len() as u64, Relaxed);
        slot.progress_ms.store(run.now_ms(), Relaxed);
        if !self.closing && !run.stop.load(Relaxed) {
            self.send_next(rng, slot);
        }
        Ok(())
    }

    /// Start the clean close: close 1000 after whatever is in flight.
    fn close(&mut self) {
        self.closing = true;
        self.stream.queue(&Frame::close(1000, b"").encode());
    }

    /// Die mid-frame: a frame header and half its payload, then the socket is dropped (with
    /// RST when `reset`).
    fn kill(self, rng: &mut Rng, reset: bool) -> Result<(), String> {
        let len = 2 + rng.below(MAX_PAYLOAD as u64 - 1) as usize;
        let frame = Frame::binary(rng.bytes(len));
        let bytes = frame.encode();
        let cut = frame.header_bytes().len() + len / 2;
        let name = self.name();
        self.stream
            .abort_after(&bytes[..cut], reset)
            .map_err(|e| format!("{name}: setting SO_LINGER 0: {e}"))
    }
}

/// One worker: opens its `count` connections (global indexes `first..`; even ones ws, odd
/// ones wss), waits for the others, then drives them all with poll(2) until the load phase
/// ends, carrying out kill orders and adopting replacements; finally closes them cleanly.
fn worker(
    run: &Run,
    w: usize,
    first: usize,
    count: usize,
    inbox: Receiver<Conn>,
    replace: Sender<Replace>,
    ready: &Barrier,
) {
    let slots = &run.slots[w];
    let mut rng = Rng::new();
    let mut conns: Vec<Conn> = Vec::with_capacity(count);
    for i in first..first + count {
        match Conn::open(run, i % 2 == 1) {
            Ok(conn) => conns.push(conn),
            Err(e) => {
                run.fail(format!(
                    "{}: opening connection {i} of the initial set: {e}",
                    run.server.name()
                ));
                break;
            }
        }
    }
    ready.wait();
    if run.has_failed() {
        return;
    }
    let adopt = |conn: &mut Conn, rng: &mut Rng| {
        let slot_index = slots
            .iter()
            .position(|s| s.id.load(Relaxed) == 0)
            .expect("a free slot: replacements never outnumber the connections killed");
        let slot = &slots[slot_index];
        conn.slot = slot_index;
        conn.last_echo = Instant::now();
        slot.wss.store(conn.wss, Relaxed);
        slot.progress_ms.store(run.now_ms(), Relaxed);
        slot.id.store(conn.id, Relaxed);
        conn.send_next(rng, slot);
    };
    for conn in &mut conns {
        adopt(conn, &mut rng);
    }
    let mut fds: Vec<stress::pollfd> = Vec::with_capacity(count + 4);
    let mut closing_since: Option<Instant> = None;
    loop {
        if run.has_failed() {
            return;
        }
        while let Ok(mut conn) = inbox.try_recv() {
            adopt(&mut conn, &mut rng);
            if closing_since.is_some() {
                conn.close();
            }
            conns.push(conn);
        }
        if closing_since.is_none() && run.stop.load(Relaxed) {
            closing_since = Some(Instant::now());
            for conn in &mut conns {
                conn.close();
            }
        }
        if let Some(since) = closing_since {
            if conns.is_empty() && run.killer_done.load(Relaxed) {
                while let Ok(mut conn) = inbox.try_recv() {
                    adopt(&mut conn, &mut rng);
                    conn.close();
                    conns.push(conn);
                }
                if conns.is_empty() {
                    return;
                }
            }
            if since.elapsed() > CLOSE_LIMIT {
                let stuck: Vec<_> = conns
                    .iter()
                    .take(5)
                    .map(|c| format!("{} {}", c.name(), c.state()))
                    .collect();
                run.fail(format!(
                    "{}: {} connections did not finish the close handshake within \
                     {CLOSE_LIMIT:?}, e.g.:\n    {}",
                    run.server.name(),
                    conns.len(),
                    stuck.join("\n    ")
                ));
                return;
            }
        } else {
            while run.kill_orders[w].load(Relaxed) > 0 && !conns.is_empty() {
                run.kill_orders[w].fetch_sub(1, Relaxed);
                let victim = conns.swap_remove(rng.below(conns.len() as u64) as usize);
                slots[victim.slot].id.store(0, Relaxed);
                let wss = victim.wss;
                let reset = rng.below(3) == 0;
                if let Err(e) = victim.kill(&mut rng, reset) {
                    run.fail(e);
                    return;
                }
                run.kills.fetch_add(1, Relaxed);
                run.resets.fetch_add(u64::from(reset), Relaxed);
                let _ = replace.send(Replace { worker: w, wss });
            }
        }
        fds.clear();
        fds.extend(conns.iter().map(|c| stress::pollfd {
            fd: c.stream.fd(),
            events: stress::POLLIN
                | if c.stream.wants_write() {
                    stress::POLLOUT
                } else {
                    0
                },
            revents: 0,
        }));
        if let Err(e) = stress::poll(&mut fds, 20) {
            run.fail(format!("poll(2) in worker {w}: {e}"));
            return;
        }
        // Back to front, so swap_remove keeps the indexes still to visit valid.
        for i in (0..conns.len()).rev() {
            if fds[i].revents == 0 {
                continue;
            }
            let slot = &slots[conns[i].slot];
            match conns[i].drive(run, &mut rng, slot) {
                Fate::Live => {}
                Fate::Done => {
                    slot.id.store(0, Relaxed);
                    conns.swap_remove(i);
                }
                Fate::Failed(why) => {
                    run.fail(format!("{}: {why}", run.server.name()));
                    return;
                }
            }
        }
    }
}

// ---- randomness --------------------------------------------------------------------------

/// Printable ASCII, so any length is valid UTF-8.
fn printable(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = rng.bytes(len);
    for b in &mut out {
        *b = b' ' + *b % 95;
    }
    out
}
