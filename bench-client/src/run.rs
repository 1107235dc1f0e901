//! One run of a workload: validate the options into a [`Plan`], raise the descriptor limit,
//! choose the engine, start one worker thread per `--threads`, start every worker's window at
//! the same instant, collect the per-second intervals (progress, `--hlog`), sample server and
//! client CPU at the window's edges, and build the [`Report`].

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cli::{Command, EngineChoice, Opts, Pacing, Plan};
use crate::ctx::{TargetRt, Totals};
use crate::error::{BenchError, OutputError};
use crate::hists::Hists;
use crate::report::{
    EndedBy, ErrorRecord, IntervalSummary, Latency, ProcessRecord, Report, Results, Setup,
    TargetRecord,
};
use crate::stop::Stop;
use crate::window_calls::{Tally, WindowCalls};
use crate::worker::{Control, Event, Go, Interval, Worker};
use crate::{core_rtt, epoll, hlog, kernel_mem, meta, report, sys, tls, uring, worker};

/// One run: open the connections, warm up, measure the window, close.
pub(crate) fn run_once(opts: &Opts, stop: &Stop) -> Result<Report, BenchError> {
    let plan = Arc::new(Plan::new(&opts.command)?);
    let common = opts.command.common();
    let nofile_limit = sys::raise_nofile(plan.connections)?;
    let (engine, engine_fallback) = choose_engine(plan.engine)?;
    let tls_config = match plan.targets.iter().any(|t| t.tls) {
        true => Some(tls::client_config(common.insecure, common.ca.as_deref())?),
        false => None,
    };
    let targets: Arc<[TargetRt]> = plan
        .targets
        .iter()
        .map(TargetRt::new)
        .collect::<Result<Vec<_>, _>>()?
        .into();
    let meta = meta::Meta::gather();
    let flags = match &opts.command {
        Command::Echo(a) => serde_json::to_value(a),
        Command::Rate(a) => serde_json::to_value(a),
        Command::Hold(a) => serde_json::to_value(a),
        Command::Connect(a) => serde_json::to_value(a),
        Command::Broadcast(a) => serde_json::to_value(a),
    }
    .unwrap_or_default();

    // The server's memory before any connection of ours, for its memory per connection.
    let baseline = plan.server_pid.and_then(sys::sample_process);
    let kernel_before = kernel_mem::sample();
    let workers = Workers::spawn(&plan, engine, &targets, &tls_config)?;
    // Every worker opens its connections; the first failure calls the run off.
    let progress = !common.quiet && std::io::stderr().is_terminal();
    let (workers, engine_name) = workers.await_ready(&plan, progress, stop)?;
    let opening_s = Duration::from_nanos(workers.clock()).as_secs_f64();
    // Before the warmup, while the connections are idle: the probe spins on both cores.
    let core_rtt = core_rtt::start(plan.server_pid, plan.pinning.as_deref());
    let calls = WindowCalls::open(plan.server_pid, !common.no_syscalls, !plan.warmup.is_zero());
    let window = workers.measure(&plan, common.hlog.as_ref(), progress, calls, stop)?;
    let before = Before {
        meta,
        flags,
        argv: opts.argv.clone(),
        engine: engine_name,
        engine_fallback,
        nofile_limit,
        server_rss_before: baseline.and_then(|b| b.rss_bytes),
        kernel_before,
        opening_s,
        core_rtt: core_rtt.map(core_rtt::CoreRtt::finish),
    };
    let mut report = window.report(&plan, before);
    if let Some(path) = &common.json {
        if let Err(source) = write_json(path, &report) {
            report.output_errors.push(OutputError {
                path: path.clone(),
                source,
            });
        }
    }
    Ok(report)
}

/// The worker threads of a run and the channels to them.
struct Workers {
    epoch: Instant,
    control: Arc<Control>,
    events: mpsc::Receiver<Event>,
    go: Vec<mpsc::Sender<Go>>,
    handles: Vec<JoinHandle<()>>,
}

/// What the window left: the samples at its edges, the workers' totals and intervals.
struct Window {
    agg: Aggregator,
    calls: WindowCalls,
    start_sample: Option<Sample>,
    end_sample: Option<Sample>,
    totals: Totals,
    /// Ctrl-C cut the window short.
    interrupted: bool,
    /// Every connection failed before the window's end.
    ended_early: bool,
    warnings: Vec<String>,
    output_errors: Vec<OutputError>,
    record_from: u64,
    end_ns: u64,
    window_start_wall: SystemTime,
}

impl Workers {
    /// One worker thread per `--threads`, each opening its connections.
    fn spawn(
        plan: &Arc<Plan>,
        engine: Engine,
        targets: &Arc<[TargetRt]>,
        tls_config: &Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Self, BenchError> {
        let epoch = Instant::now();
        let control = Arc::new(Control {
            end_ns: AtomicU64::new(u64::MAX),
            abort: AtomicBool::new(false),
            opened: AtomicUsize::new(0),
            broadcast: crate::broadcast::Shared::new(plan.broadcast.map_or(0, |b| b.publishers)),
        });
        let (events_tx, events) = mpsc::channel();
        let mut go = Vec::with_capacity(plan.threads);
        let mut handles: Vec<JoinHandle<()>> = Vec::with_capacity(plan.threads);
        for index in 0..plan.threads {
            let (go_tx, go_rx) = mpsc::channel();
            go.push(go_tx);
            let (plan, targets, tls_config, events_tx, shared) = (
                plan.clone(),
                targets.clone(),
                tls_config.clone(),
                events_tx.clone(),
                control.clone(),
            );
            let spawned = std::thread::Builder::new()
                .name(format!("wsport-bench-{index}"))
                .spawn(move || {
                    worker_main(
                        index, &plan, engine, targets, tls_config, epoch, events_tx, go_rx, shared,
                    )
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    abort(&control, &go, handles);
                    return Err(BenchError::io("spawning a worker thread", e));
                }
            }
        }
        Ok(Self {
            epoch,
            control,
            events,
            go,
            handles,
        })
    }

    /// Now, ns since the epoch the workers share.
    fn clock(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Close every worker and wait for it.
    fn abort(self) {
        abort(&self.control, &self.go, self.handles);
    }

    /// Wait until every worker has opened its connections; the engine's name as it runs.
    fn await_ready(
        self,
        plan: &Plan,
        progress: bool,
        stop: &Stop,
    ) -> Result<(Self, String), BenchError> {
        let mut ramp_progress =
            RampProgress::new(progress && plan.ramp.is_some(), plan.connections);
        let mut ready = 0;
        let mut engine_name = String::new();
        while ready < plan.threads {
            ramp_progress.show(self.control.opened.load(Ordering::Relaxed), self.clock());
            match self.events.recv_timeout(Duration::from_millis(50)) {
                Ok(Event::Ready(_, name)) => {
                    ready += 1;
                    engine_name = name;
                }
                Ok(Event::Failed(_, e)) => {
                    self.abort();
                    return Err(e);
                }
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) if stop.is_stopped() => {
                    self.abort();
                    return Err(BenchError::Interrupted);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.abort();
                    return Err(BenchError::WorkerPanic(0));
                }
            }
        }
        ramp_progress.finish(plan.connections, self.clock());
        Ok((self, engine_name))
    }

    /// Start every worker at once, run the warmup and the window, and collect until every
    /// worker is done.
    fn measure(
        self,
        plan: &Plan,
        hlog_path: Option<&PathBuf>,
        progress: bool,
        mut calls: WindowCalls,
        stop: &Stop,
    ) -> Result<Window, BenchError> {
        // Every worker starts at once; the window starts after the warmup.
        let start = self.clock();
        let record_from = start + plan.warmup.as_nanos() as u64;
        // System calls are counted over the warmup's last interval (window_calls.rs).
        let count_from = record_from.saturating_sub(worker::INTERVAL_NS).max(start);
        self.control.end_ns.store(
            record_from + plan.duration.as_nanos() as u64,
            Ordering::Relaxed,
        );
        let window_start_wall = SystemTime::now() + plan.warmup;
        for g in &self.go {
            let _ = g.send(Go::Start { start, record_from });
        }
        let mut output_errors = Vec::new();
        let hlog = open_hlog(hlog_path, plan, window_start_wall, &mut output_errors);
        let mut agg = Aggregator::new(
            plan.threads,
            record_from,
            hlog,
            progress,
            plan.duration,
            Hists::shaped(plan.as_sent_latency(), plan.pacing.scheduled()),
        );
        let collected = self.collect(plan, &mut agg, &mut calls, (count_from, record_from), stop);
        for (i, handle) in self.handles.into_iter().enumerate() {
            if handle.join().is_err() {
                return Err(BenchError::WorkerPanic(i));
            }
        }
        let (start_sample, end_sample, totals, interrupted, warnings) = collected?;
        agg.flush_all();
        if let Some(e) = agg.hlog_error.take() {
            output_errors.push(e);
        }
        let end_ns = agg.window_end.unwrap_or(record_from).max(record_from);
        let ended_early = end_ns < self.control.end_ns.load(Ordering::Relaxed);
        Ok(Window {
            agg,
            calls,
            start_sample,
            end_sample,
            totals,
            interrupted,
            ended_early,
            warnings,
            output_errors,
            record_from,
            end_ns,
            window_start_wall,
        })
    }

    /// Until every worker is done: the samples at the window's edges, the intervals, the
    /// totals; Ctrl-C brings the window's end forward.
    fn collect(
        &self,
        plan: &Plan,
        agg: &mut Aggregator,
        calls: &mut WindowCalls,
        (count_from, record_from): (u64, u64),
        stop: &Stop,
    ) -> Result<Collected, BenchError> {
        let mut counting_started = false;
        let mut start_sample: Option<Sample> = None;
        let mut end_sample: Option<Sample> = None;
        let mut totals = Totals::default();
        let mut finished = 0;
        let mut interrupted = false;
        let mut warnings = Vec::new();
        let mut fatal: Option<BenchError> = None;
        while finished < plan.threads {
            let now = self.clock();
            if !counting_started && now >= count_from {
                counting_started = true;
                calls.mark();
            }
            if start_sample.is_none() && now >= record_from {
                start_sample = Some(Sample::take(now, plan.server_pid, plan.proxy_pid));
                calls.mark();
            }
            let end = self.control.end_ns.load(Ordering::Relaxed);
            if end_sample.is_none() && start_sample.is_some() && (now >= end || agg.all_last()) {
                end_sample = Some(Sample::take(
                    now.min(end.max(record_from)),
                    plan.server_pid,
                    plan.proxy_pid,
                ));
            }
            if stop.is_stopped() && !interrupted {
                interrupted = true;
                self.control.end_ns.fetch_min(now, Ordering::Relaxed);
            }
            let mut wait = Duration::from_millis(50);
            if !counting_started {
                wait = wait.min(Duration::from_nanos(count_from.saturating_sub(now)));
            } else if start_sample.is_none() {
                wait = wait.min(Duration::from_nanos(record_from.saturating_sub(now)));
            } else if end_sample.is_none() {
                wait = wait.min(Duration::from_nanos(end.saturating_sub(now)));
            }
            match self.events.recv_timeout(wait) {
                Ok(Event::Interval(iv)) => agg.add(*iv),
                Ok(Event::Finished(_, t)) => {
                    totals.add(&t);
                    finished += 1;
                }
                // `connect` reports a Setup failure when not one connection could be opened.
                Ok(Event::Failed(_, e @ BenchError::Setup { .. })) => {
                    self.control
                        .end_ns
                        .fetch_min(self.clock(), Ordering::Relaxed);
                    fatal.get_or_insert(e);
                }
                Ok(Event::Failed(i, e)) => warnings.push(format!("worker {i} stopped early: {e}")),
                Ok(Event::Ready(..)) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        match fatal {
            Some(e) => Err(e),
            None => Ok((start_sample, end_sample, totals, interrupted, warnings)),
        }
    }
}

/// The samples at the window's edges, the summed totals, whether Ctrl-C cut the window, and
/// the warnings so far.
type Collected = (Option<Sample>, Option<Sample>, Totals, bool, Vec<String>);

/// What the run learned before its window, for the report.
struct Before {
    meta: meta::Meta,
    flags: serde_json::Value,
    argv: Vec<String>,
    engine: String,
    engine_fallback: Option<String>,
    nofile_limit: u64,
    server_rss_before: Option<u64>,
    /// The kernel's socket memory before any connection of ours ([`kernel_mem`]).
    kernel_before: kernel_mem::KernelSample,
    opening_s: f64,
    core_rtt: Option<core_rtt::CoreRtt>,
}

/// `--hlog FILE`, created; a file that cannot be is an output error, not a failed run.
fn open_hlog(
    path: Option<&PathBuf>,
    plan: &Plan,
    window_start_wall: SystemTime,
    output_errors: &mut Vec<OutputError>,
) -> Option<(hlog::Hlog, PathBuf)> {
    let path = path?;
    let title = format!(
        "wsport-bench {}: round-trip latency in nanoseconds",
        plan.scenario
    );
    match hlog::Hlog::create(path, window_start_wall, &title) {
        Ok(h) => Some((h, path.clone())),
        Err(source) => {
            output_errors.push(OutputError {
                path: path.clone(),
                source,
            });
            None
        }
    }
}

impl Window {
    /// The run's record.
    fn report(mut self, plan: &Plan, before: Before) -> Report {
        let window = Duration::from_nanos(self.end_ns - self.record_from);
        let ended_by = self.ended_by();
        let messages = self.totals.measured_messages;
        let secs = window.as_secs_f64();
        let rate_of = |n: f64| if secs > 0.0 { n / secs } else { 0.0 };
        let (server, client, proxy) = process_records(
            plan,
            messages,
            (&self.start_sample, &self.end_sample),
            self.calls,
            self.agg.counted,
            &mut self.warnings,
        );
        let closed_loop = matches!(plan.pacing, Pacing::Closed { .. });
        let client_bottleneck = judge_client(
            &server,
            &client,
            plan.threads,
            (closed_loop, plan.pacing.scheduled()),
            &mut self.warnings,
        );
        let per_connection = memory_per_connection(plan, before.server_rss_before, &server);
        let kernel_memory = self
            .start_sample
            .as_ref()
            .filter(|_| !plan.pacing.is_storm())
            .and_then(|open| {
                kernel_mem::per_connection(&before.kernel_before, &open.kernel, plan.connections)
            });
        load_warnings(plan, &self.totals, secs, &mut self.warnings);
        let totals = &self.totals;
        let broadcast = broadcast_record(
            plan,
            totals,
            (
                rate_of(messages as f64),
                server.as_ref().map(|s| s.cpu_us_per_msg),
            ),
            &mut self.warnings,
        );
        let hists = self.agg.total.take();
        let send_lag = hists.send_lag.as_ref().map(Latency::of);
        let send_lag_exceeded = send_lag
            .as_ref()
            .is_some_and(|lag| judge_send_lag(lag, &mut self.warnings));
        // One field a line, as the JSON record has them: longer than 80 lines, read at once.
        Report {
            schema: report::SCHEMA,
            scenario: plan.scenario.clone(),
            workload: plan.workload,
            started_unix_s: self
                .window_start_wall
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            ended_by,
            meta: before.meta,
            argv: before.argv,
            flags: before.flags,
            setup: setup_record(
                plan,
                before.engine,
                before.engine_fallback,
                before.nofile_limit,
            ),
            results: Results {
                window_s: secs,
                messages,
                msgs_per_sec: rate_of(messages as f64),
                payload_bytes_per_sec: rate_of(totals.measured_bytes as f64),
                sent_per_sec: rate_of(totals.measured_sent as f64),
                opening_s: if plan.pacing.is_storm() {
                    0.0
                } else {
                    before.opening_s
                },
                broadcast,
                latency_ns: Latency::of(&hists.latency),
                latency_uncorrected_ns: hists.uncorrected.as_ref().map(Latency::of),
                send_lag_ns: send_lag,
                send_lag_exceeded,
                sent: totals.sent,
                received: totals.received,
                in_flight: totals.in_flight,
                lost: totals.lost,
                mismatches: totals.mismatches,
                errors: error_records(totals),
                server,
                server_rss_before_connecting_bytes: before.server_rss_before,
                server_memory_per_connection_bytes: per_connection,
                kernel_memory,
                client,
                client_bottleneck,
                connect: totals.phases.as_deref().map(report::ConnectRecord::of),
                endings: totals.endings.record_of(),
                proxy,
                core_rtt: before.core_rtt,
            },
            intervals: std::mem::take(&mut self.agg.summaries),
            warnings: self.warnings,
            histogram: report::HistogramRecord::of(&hists.latency),
            histogram_uncorrected: hists.uncorrected.as_ref().map(report::HistogramRecord::of),
            histogram_send_lag: hists.send_lag.as_ref().map(report::HistogramRecord::of),
            slo: None,
            hists,
            output_errors: self.output_errors,
        }
    }

    fn ended_by(&self) -> EndedBy {
        if self.interrupted {
            EndedBy::Interrupted
        } else if self.ended_early {
            EndedBy::ConnectionsFailed
        } else {
            EndedBy::Duration
        }
    }
}

/// The broadcast check's record (`--broadcast` runs only); a failed check is also a warning,
/// in capitals, so no reader misses it. `measured`: msgs/s and server CPU µs per message.
fn broadcast_record(
    plan: &Plan,
    totals: &Totals,
    measured: (f64, Option<f64>),
    warnings: &mut Vec<String>,
) -> Option<crate::broadcast::Record> {
    let b = plan.broadcast?;
    let record = crate::broadcast::Record::of(
        &totals.broadcast,
        (b.publishers, b.subscribers, b.rate),
        measured,
        totals.errors.values().map(|(n, _)| n).sum(),
    );
    if !record.ok {
        warnings.push(format!(
            "THE BROADCAST CHECK FAILED: {}",
            record.failures.join("; ")
        ));
    }
    Some(record)
}

/// What ran: the plan, and what the engine and the process limits turned out to be.
fn setup_record(
    plan: &Plan,
    engine: String,
    engine_fallback: Option<String>,
    nofile_limit: u64,
) -> Setup {
    Setup {
        engine,
        engine_fallback,
        threads: plan.threads,
        pinning: plan.pinning.clone(),
        nofile_limit,
        connections: plan.connections,
        targets: target_records(plan),
        pacing: report::PacingRecord::of(plan.pacing),
        sizes: plan.sizes.clone(),
        message_type: if plan.text { "text" } else { "binary" },
        warmup_s: plan.warmup.as_secs_f64(),
        duration_s: plan.duration.as_secs_f64(),
        source_ips: plan.source_ips.clone(),
        ramp_per_sec: plan.ramp,
        max: plan.max.clone(),
    }
}

/// The server's, the client's and the proxy's CPU, memory and system calls over the window.
fn process_records(
    plan: &Plan,
    messages: u64,
    (start_sample, end_sample): (&Option<Sample>, &Option<Sample>),
    calls: WindowCalls,
    counted: Option<Tally>,
    warnings: &mut Vec<String>,
) -> (
    Option<ProcessRecord>,
    Option<ProcessRecord>,
    Option<ProcessRecord>,
) {
    let (mut server, mut client, proxy) = match (start_sample, end_sample) {
        (Some(a), Some(b)) => (
            process_record(a, b, |s| s.server, plan.server_pid, messages),
            Some(client_record(a, b, messages, plan.threads)),
            process_record(a, b, |s| s.proxy, plan.proxy_pid, messages),
        ),
        _ => (None, None, None),
    };
    let (server_calls, client_calls) = calls.records(counted);
    if let Some(s) = server.as_mut() {
        s.syscalls = server_calls;
    }
    if let Some(c) = client.as_mut() {
        c.syscalls = client_calls;
    }
    if plan.server_pid.is_some() && server.is_none() && start_sample.is_some() {
        warnings.push(
            "--server-pid: the process could not be read at both ends of the window (gone?)".into(),
        );
    }
    (server, client, proxy)
}

/// The server's memory per connection: what the connections added to its RSS. Not for
/// `connect`, whose connections come and go.
fn memory_per_connection(
    plan: &Plan,
    server_rss_before: Option<u64>,
    server: &Option<ProcessRecord>,
) -> Option<f64> {
    match (
        server_rss_before,
        server.as_ref().and_then(|s| s.rss_start_bytes),
    ) {
        (Some(before), Some(open)) if !plan.pacing.is_storm() => {
            Some((open as f64 - before as f64) / plan.connections as f64)
        }
        _ => None,
    }
}

/// What the reader must know about the load itself: a rate not reached, corrupt echoes,
/// failed connections.
fn load_warnings(plan: &Plan, totals: &Totals, secs: f64, warnings: &mut Vec<String>) {
    let rate_of = |n: f64| if secs > 0.0 { n / secs } else { 0.0 };
    if let Pacing::Open { rate, .. } = plan.pacing {
        // `broadcast`: the rate is the publishers'; deliveries are that times the subscribers.
        let counted = match plan.broadcast {
            Some(_) => totals.measured_sent,
            None => totals.measured_messages,
        };
        let achieved = rate_of(counted as f64);
        if secs > 0.0 && achieved < 0.99 * rate as f64 {
            warnings.push(format!(
                "the target rate was not reached: {achieved:.0} of {rate} msgs/s; latencies from the \
                 intended send times include the backlog"
            ));
        }
    }
    if let Pacing::Storm { rate: Some(rate) } = plan.pacing {
        let started = rate_of(totals.measured_sent as f64);
        if secs > 0.0 && started < 0.97 * rate as f64 {
            warnings.push(format!(
                "the target connection rate was not reached: {started:.0} of {rate} attempts/s \
                 started (all -c {} slots busy, or the client too slow); totals from the \
                 intended start times include the wait",
                plan.connections
            ));
        }
    }
    if totals.mismatches > 0 {
        warnings.push(format!("{} echoes did not match what was sent: the server corrupts, reorders or drops messages", totals.mismatches));
    }
    if !totals.errors.is_empty() {
        warnings.push(
            "connections failed during the run; the figures cover the connections that remained"
                .into(),
        );
    }
}

/// Each target and its number of connections (round-robin over the targets).
fn target_records(plan: &Plan) -> Vec<TargetRecord> {
    let mut targets_record: Vec<TargetRecord> = plan
        .targets
        .iter()
        .map(|t| TargetRecord {
            url: t.url.clone(),
            connections: 0,
        })
        .collect();
    for id in 0..plan.connections {
        targets_record[id % plan.targets.len()].connections += 1;
    }
    targets_record
}

/// Failures by cause: count and the first one's text.
fn error_records(totals: &Totals) -> BTreeMap<String, ErrorRecord> {
    totals
        .errors
        .iter()
        .map(|(c, (n, first))| {
            (
                c.key().to_owned(),
                ErrorRecord {
                    count: *n,
                    first: first.clone(),
                },
            )
        })
        .collect()
}

/// The engine that will run.
#[derive(Debug, Clone, Copy)]
enum Engine {
    Uring,
    Epoll,
}

/// The engine `--engine` asks for, and why io_uring was passed over under `auto`.
fn choose_engine(choice: EngineChoice) -> Result<(Engine, Option<String>), BenchError> {
    match choice {
        EngineChoice::Epoll => Ok((Engine::Epoll, None)),
        EngineChoice::IoUring => match uring::probe() {
            Ok(()) => Ok((Engine::Uring, None)),
            Err(why) => Err(BenchError::UringUnavailable(why)),
        },
        EngineChoice::Auto => match uring::probe() {
            Ok(()) => Ok((Engine::Uring, None)),
            Err(why) => Ok((Engine::Epoll, Some(why))),
        },
    }
}

/// A worker thread: pin, open the connections, run the engine, report.
#[allow(clippy::too_many_arguments)]
fn worker_main(
    index: usize,
    plan: &Plan,
    engine: Engine,
    targets: Arc<[TargetRt]>,
    tls_config: Option<Arc<rustls::ClientConfig>>,
    epoch: Instant,
    events: mpsc::Sender<Event>,
    go: mpsc::Receiver<Go>,
    control: Arc<Control>,
) {
    let fail = |e: BenchError| {
        let _ = events.send(Event::Failed(index, e));
        let _ = events.send(Event::Finished(index, Box::default()));
    };
    sys::exact_timers();
    if let Some(cpus) = &plan.pinning {
        if let Err(e) = sys::pin(cpus[index]) {
            return fail(BenchError::io(
                format!("pinning worker {index} to CPU {}", cpus[index]),
                e,
            ));
        }
    }
    let mut w = match Worker::new(
        index,
        plan,
        targets,
        tls_config,
        epoch,
        events.clone(),
        go,
        control,
    ) {
        Ok(w) => w,
        Err(e) => return fail(e),
    };
    let result = match engine {
        Engine::Uring => uring::run(&mut w),
        Engine::Epoll => epoll::run(&mut w),
    };
    if let Err(e) = result {
        let _ = events.send(Event::Failed(index, e));
    }
    w.finish();
}

/// Call the run off before the start: stop opening, release workers waiting for Go, join.
fn abort(control: &Control, go: &[mpsc::Sender<Go>], handles: Vec<JoinHandle<()>>) {
    control.abort.store(true, Ordering::Relaxed);
    for g in go {
        let _ = g.send(Go::Abort);
    }
    for h in handles {
        let _ = h.join();
    }
}

/// CPU and memory of the server, the proxy, this process and the kernel's sockets at one
/// instant.
struct Sample {
    at_ns: u64,
    server: Option<sys::ProcSample>,
    proxy: Option<sys::ProcSample>,
    client: sys::SelfUsage,
    kernel: kernel_mem::KernelSample,
}

impl Sample {
    fn take(at_ns: u64, pid: Option<u32>, proxy_pid: Option<u32>) -> Self {
        Self {
            at_ns,
            server: pid.and_then(sys::sample_process),
            proxy: proxy_pid.and_then(sys::sample_process),
            client: sys::self_usage(),
            kernel: kernel_mem::sample(),
        }
    }
}

/// The CPU and RSS of the measured process `pid` (the server, or the proxy: `which`) between
/// two samples.
fn process_record(
    a: &Sample,
    b: &Sample,
    which: fn(&Sample) -> Option<sys::ProcSample>,
    pid: Option<u32>,
    messages: u64,
) -> Option<ProcessRecord> {
    let (pid, sa, sb) = (pid?, which(a)?, which(b)?);
    let wall = Duration::from_nanos(b.at_ns.saturating_sub(a.at_ns)).as_secs_f64();
    let cpu = sb.cpu.saturating_sub(sa.cpu).as_secs_f64();
    let user = sb.user.saturating_sub(sa.user).as_secs_f64();
    let sched = match (sa.sched, sb.sched) {
        (Some(x), Some(y)) => Some(us_per_msg(y.saturating_sub(x).as_secs_f64(), messages)),
        _ => None,
    };
    Some(ProcessRecord {
        pid,
        cpu_s: cpu,
        cpu_percent: if wall > 0.0 { cpu * 100.0 / wall } else { 0.0 },
        cpu_us_per_msg: us_per_msg(cpu, messages),
        user_us_per_msg: us_per_msg(user, messages),
        sched_cpu_us_per_msg: sched,
        rss_start_bytes: sa.rss_bytes,
        rss_end_bytes: sb.rss_bytes,
        cores: None,
        syscalls: None,
    })
}

/// `seconds` of CPU spread over `messages`, in microseconds each (0 without messages).
fn us_per_msg(seconds: f64, messages: u64) -> f64 {
    if messages > 0 {
        seconds * 1e6 / messages as f64
    } else {
        0.0
    }
}

fn client_record(a: &Sample, b: &Sample, messages: u64, threads: usize) -> ProcessRecord {
    let wall = Duration::from_nanos(b.at_ns.saturating_sub(a.at_ns)).as_secs_f64();
    let cpu = b.client.cpu.saturating_sub(a.client.cpu).as_secs_f64();
    let user = b.client.user.saturating_sub(a.client.user).as_secs_f64();
    ProcessRecord {
        pid: std::process::id(),
        cpu_s: cpu,
        cpu_percent: if wall > 0.0 { cpu * 100.0 / wall } else { 0.0 },
        cpu_us_per_msg: us_per_msg(cpu, messages),
        user_us_per_msg: us_per_msg(user, messages),
        sched_cpu_us_per_msg: None,
        rss_start_bytes: Some(a.client.max_rss),
        rss_end_bytes: Some(b.client.max_rss),
        cores: Some(threads),
        syscalls: None,
    }
}

/// Was the client the limit? Two signs: its workers were busy all the time, or (closed loop,
/// where both sides run as fast as they can) it spent more CPU per message than the server.
/// At a fixed rate, per-message CPU is compared at equal load instead, and a missed target
/// rate is reported on its own.
fn judge_client(
    server: &Option<ProcessRecord>,
    client: &Option<ProcessRecord>,
    threads: usize,
    (closed_loop, scheduled): (bool, bool),
    warnings: &mut Vec<String>,
) -> bool {
    let Some(c) = client else { return false };
    let mut bottleneck = false;
    // A scheduled worker polls instead of sleeping just before each send (wake.rs), so its
    // CPU says nothing about whether it kept up: its send lag does (judge_send_lag).
    if !scheduled && c.cpu_percent >= 90.0 * threads as f64 {
        bottleneck = true;
        match server {
            Some(s) if s.cpu_percent >= 90.0 => warnings.push(format!(
                "CLIENT AND SERVER BOTH SATURATED ({:.0}% and {:.0}% CPU): msgs/s is the pair's limit, \
                 not the server's; compare servers by server CPU µs per message.",
                c.cpu_percent, s.cpu_percent
            )),
            _ => warnings.push(format!(
                "THE CLIENT WAS THE BOTTLENECK: wsport-bench used {:.0}% CPU of its {threads} core(s); \
                 msgs/s measures the client, not the server. Give it more --threads/--cpus.",
                c.cpu_percent
            )),
        }
    }
    if let (Some(s), true) = (server, closed_loop) {
        if c.cpu_us_per_msg > s.cpu_us_per_msg && c.cpu_us_per_msg > 0.0 {
            bottleneck = true;
            warnings.push(format!(
                "THE CLIENT COST MORE PER MESSAGE THAN THE SERVER ({:.2} vs {:.2} µs CPU): with equal \
                 cores the client saturates first; compare servers by server µs/msg, not msgs/s.",
                c.cpu_us_per_msg, s.cpu_us_per_msg
            ));
        }
    }
    bottleneck
}

use wsport_bench_record::SEND_LAG_LIMIT_NS;

/// Flag a scheduled run whose own sends were late enough to distort its latency: send-lag
/// p99 over [`SEND_LAG_LIMIT_NS`]. The corrected latency of each message is its as-sent
/// latency plus its send lag, so past this the corrected figures describe the client.
fn judge_send_lag(lag: &Latency, warnings: &mut Vec<String>) -> bool {
    let exceeded = lag.count > 0 && lag.p99 > SEND_LAG_LIMIT_NS;
    if exceeded {
        warnings.push(format!(
            "THE CLIENT SENT LATE: send lag p99 {} (over {}): the latency from the intended send \
             times includes the client's own lateness; give it a core of its own, or more \
             --threads/--cpus.",
            report::format_ns(lag.p99),
            report::format_ns(SEND_LAG_LIMIT_NS)
        ));
    }
    exceeded
}

pub(crate) fn write_json(path: &PathBuf, report: &Report) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    text.push('\n');
    // Write beside, then rename: a full disk never leaves half a document behind.
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// `hold --ramp`: the connections open so far, on stderr, at most ten times a second.
struct RampProgress {
    on: bool,
    total: usize,
    shown_at: u64,
}

impl RampProgress {
    fn new(on: bool, total: usize) -> Self {
        Self {
            on,
            total,
            shown_at: 0,
        }
    }

    fn show(&mut self, opened: usize, now: u64) {
        if !self.on || now < self.shown_at + 100_000_000 {
            return;
        }
        self.shown_at = now;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r[ramp {:>5.1}s] {opened:>8} of {} connections open",
            now as f64 / 1e9,
            self.total
        );
        let _ = err.flush();
    }

    fn finish(&mut self, opened: usize, now: u64) {
        if self.on {
            self.shown_at = 0;
            self.show(opened, now.max(100_000_000));
            eprintln!();
        }
    }
}

/// Merges the workers' intervals second by second: the total histogram, the `.hlog`, the
/// progress line and the per-second summaries.
struct Aggregator {
    threads: usize,
    record_from: u64,
    pending: BTreeMap<i64, Merged>,
    /// Each worker's last interval index, once it sent it.
    last: Vec<Option<i64>>,
    total: Hists,
    summaries: Vec<IntervalSummary>,
    hlog: Option<(hlog::Hlog, PathBuf)>,
    hlog_error: Option<OutputError>,
    progress: bool,
    duration: Duration,
    /// End of the window as the workers saw it: the latest end of a measured interval.
    window_end: Option<u64>,
    /// The warmup's last interval, over which system calls are counted.
    counted: Option<Tally>,
}

struct Merged {
    workers: usize,
    start: u64,
    end: u64,
    hists: Hists,
    messages: u64,
    errors: u64,
}

impl Aggregator {
    fn new(
        threads: usize,
        record_from: u64,
        hlog: Option<(hlog::Hlog, PathBuf)>,
        progress: bool,
        duration: Duration,
        total: Hists,
    ) -> Self {
        Self {
            threads,
            record_from,
            pending: BTreeMap::new(),
            last: vec![None; threads],
            total,
            summaries: Vec::new(),
            hlog,
            hlog_error: None,
            progress,
            duration,
            window_end: None,
            counted: None,
        }
    }

    fn all_last(&self) -> bool {
        self.last.iter().all(Option::is_some)
    }

    fn add(&mut self, iv: Interval) {
        if iv.last {
            self.last[iv.worker] = Some(iv.index);
        }
        let m = self.pending.entry(iv.index).or_insert_with(|| Merged {
            workers: 0,
            start: iv.start_ns,
            end: iv.end_ns,
            hists: iv.hists.empty_like(),
            messages: 0,
            errors: 0,
        });
        m.workers += 1;
        m.start = m.start.min(iv.start_ns);
        m.end = m.end.max(iv.end_ns);
        m.hists.add(&iv.hists);
        m.messages += iv.messages;
        m.errors += iv.errors;
        // Emit up to the latest interval every worker has delivered (or will never deliver).
        let complete = self
            .pending
            .iter()
            .rev()
            .find(|(&k, m)| m.workers >= self.expected(k))
            .map(|(&k, _)| k);
        if let Some(k) = complete {
            self.emit_through(k);
        }
    }

    /// Workers that will deliver interval `k`.
    fn expected(&self, k: i64) -> usize {
        (0..self.threads)
            .filter(|&w| self.last[w].map_or(true, |l| l >= k))
            .count()
    }

    fn flush_all(&mut self) {
        if let Some((&k, _)) = self.pending.last_key_value() {
            self.emit_through(k);
        }
    }

    fn emit_through(&mut self, k: i64) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > k {
                break;
            }
            let (index, m) = entry.remove_entry();
            self.emit(index, m);
        }
    }

    fn emit(&mut self, index: i64, m: Merged) {
        let length = Duration::from_nanos(m.end.saturating_sub(m.start)).as_secs_f64();
        if index == -1 {
            self.counted = Some(Tally {
                messages: m.messages,
                seconds: length,
            });
        }
        let t = (m.start as f64 - self.record_from as f64) / 1e9;
        let rate = if length > 0.0 {
            m.messages as f64 / length
        } else {
            0.0
        };
        let q = |p: f64| {
            if m.hists.latency.is_empty() {
                0
            } else {
                m.hists.latency.value_at_quantile(p)
            }
        };
        if self.progress {
            let phase = if index < 0 {
                "warmup".to_owned()
            } else {
                format!("{:>3.0}/{:.0}s", t + length, self.duration.as_secs_f64())
            };
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r[{phase}] {:>9.0} msgs/s  p50 {:>8}  p99 {:>8}  max {:>8}  errors {:<6}",
                rate,
                report::format_ns(q(0.5)),
                report::format_ns(q(0.99)),
                report::format_ns(m.hists.latency.max()),
                m.errors
            );
            let _ = err.flush();
        }
        if index < 0 {
            return;
        }
        self.window_end = Some(self.window_end.map_or(m.end, |e| e.max(m.end)));
        self.total.add(&m.hists);
        if let Some((log, path)) = &mut self.hlog {
            let written = log.write_interval(t, length, &m.hists);
            if let Err(source) = written {
                self.hlog_error = Some(OutputError {
                    path: path.clone(),
                    source,
                });
                self.hlog = None;
            }
        }
        self.summaries.push(IntervalSummary {
            t,
            length_s: length,
            messages: m.messages,
            msgs_per_sec: rate,
            p50_ns: q(0.5),
            p99_ns: q(0.99),
            max_ns: m.hists.latency.max(),
            errors: m.errors,
        });
    }
}

impl Drop for Aggregator {
    fn drop(&mut self) {
        if self.progress {
            eprintln!();
        }
    }
}
