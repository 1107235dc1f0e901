//! A result directory's runs, read back: every `*.json` (schema `wsport-bench/1`) of the
//! directory, or its `runs.jsonl` when it holds no JSON files (a committed result keeps the
//! one file, gzipped as `runs.jsonl.gz` by scripts/slim-results.sh), parsed into the figures
//! that `report` and `compare` use.
//!
//! Runs of the same scenario and server are repeats. The scenario of a run is its name without
//! the server's label and without the ports (servers start on port 0, so ports differ between
//! repeats): `echo-64B-100c-1t-tokio-ws-40321` is scenario `echo-64B-100c-1t-ws` of server
//! `tokio`.

use std::cmp::Ordering;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use serde_json::Value;

/// The file `report` writes and reads back when a directory has no JSON runs.
pub const RUNS_JSONL: &str = "runs.jsonl";

/// The same lines gzipped: a committed result keeps its runs in this file (about half the
/// size; the histograms' base64 is most of what is left), read back as [`RUNS_JSONL`] is.
pub const RUNS_JSONL_GZ: &str = "runs.jsonl.gz";

/// Why a directory could not be read or its documents written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunsError {
    /// The directory could not be listed.
    #[error("cannot read {}: {source}", dir.display())]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A result file could not be read or is not a wsport-bench/1 report.
    #[error("{}: {why}", file.display())]
    BadFile {
        /// The file.
        file: PathBuf,
        /// Why.
        why: String,
    },
    /// No result file at all.
    #[error("no wsport-bench results (*.json, runs.jsonl or runs.jsonl.gz) in {}", .0.display())]
    Empty(PathBuf),
    /// An output file could not be written.
    #[error("cannot write {}: {source}", file.display())]
    Write {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Latency percentiles of one run, nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    /// 50th.
    pub p50: f64,
    /// 90th.
    pub p90: f64,
    /// 99th.
    pub p99: f64,
    /// 99.9th.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    fn of(latency: &Value) -> Option<Self> {
        let get = |key: &str| latency[key].as_f64();
        Some(Self {
            p50: get("p50")?,
            p90: get("p90").unwrap_or(0.0),
            p99: get("p99").unwrap_or(0.0),
            p999: get("p99_9").unwrap_or(0.0),
            max: get("max").unwrap_or(0.0),
        })
    }
}

/// One side's system calls (`results.server.syscalls`, `results.client.syscalls`).
#[derive(Debug, Clone, PartialEq)]
pub enum Calls {
    /// Counted over the warmup's last second.
    Counted {
        /// Every call, per message.
        per_msg: f64,
        /// Messages per `epoll_wait`/`io_uring_enter`; `None` without waits.
        msgs_per_wait: Option<f64>,
    },
    /// Not counted on that host, and why.
    Unavailable(String),
}

impl Calls {
    fn of(record: &Value) -> Option<Self> {
        if let Some(why) = record["unavailable"].as_str() {
            return Some(Calls::Unavailable(why.to_owned()));
        }
        Some(Calls::Counted {
            per_msg: record["per_msg"].as_f64()?,
            msgs_per_wait: record["msgs_per_wait"].as_f64(),
        })
    }

    /// Calls per message, when counted.
    pub fn per_msg(&self) -> Option<f64> {
        match self {
            Calls::Counted { per_msg, .. } => Some(*per_msg),
            Calls::Unavailable(_) => None,
        }
    }

    /// Messages per wait, when counted and the side waited.
    pub fn msgs_per_wait(&self) -> Option<f64> {
        match self {
            Calls::Counted { msgs_per_wait, .. } => *msgs_per_wait,
            Calls::Unavailable(_) => None,
        }
    }
}

/// `connect`: the phases of opening a connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phases {
    /// TCP connect.
    pub tcp: Percentiles,
    /// TLS handshake (wss only).
    pub tls: Option<Percentiles>,
    /// Upgrade request to 101.
    pub upgrade: Percentiles,
}

/// Why a run counts as limited by the client (see [`Run::client_bound`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientLimit {
    /// The client was busy at least [`CLIENT_BUSY_PERCENT`] of its worker cores.
    Busy,
    /// Closed loop (`echo`, `connect`): the client spent at least as much CPU per message or
    /// connection as the server, so with equal cores it saturates first.
    Costlier,
    /// A scheduled run (`rate`, `hold`, `connect --rate`) whose own sends were late: send-lag
    /// p99 over [`wsport_bench_record::SEND_LAG_LIMIT_NS`], so its corrected latency is partly the client's.
    Late,
    /// The run flagged itself (`results.client_bottleneck`) for a reason the figures do not
    /// show here.
    SelfReported,
}

/// Busy share of its cores at which the client is taken as saturated: the threshold the
/// engine itself warns at, so the report and a run's own WARNING line agree.
pub const CLIENT_BUSY_PERCENT: f64 = 90.0;

/// A `rate` run that delivered less than this share of its target rate missed it.
pub const RATE_MISSED_BELOW: f64 = 0.98;

/// The figures of one run.
#[derive(Debug, Clone)]
pub struct Run {
    /// Where it was read from.
    pub file: PathBuf,
    /// The whole document, for `runs.jsonl`.
    pub doc: Value,
    /// `echo`, `rate`, `connect` or `hold`.
    pub workload: String,
    /// The scenario without server and ports, e.g. `echo-64B-100c-1t-ws`.
    pub scenario: String,
    /// The server (`--label`, or `server`).
    pub server: String,
    /// `ws`, `wss`, or `ws+wss` for runs over both.
    pub scheme: String,
    /// Payload sizes, bytes.
    pub sizes: Vec<u64>,
    /// Connections (connect: slots).
    pub connections: u64,
    /// Pipelining depth (echo).
    pub depth: u64,
    /// Client worker threads.
    pub threads: u64,
    /// `hold`: ns between two pings of a connection.
    pub ping_interval_ns: Option<u64>,
    /// Wall-clock start of the window.
    pub started: f64,
    /// `rate`: the target rate.
    pub target_rate: Option<f64>,
    /// Messages (connect: connections upgraded; hold: pongs) per second of the window.
    pub msgs_per_sec: f64,
    /// Server CPU, percent of one core.
    pub server_cpu_percent: Option<f64>,
    /// Server CPU per message (connect: per connection; hold: per ping), µs.
    pub server_us_per_msg: Option<f64>,
    /// Its user-space part (absent in runs recorded before it was measured).
    pub server_user_us_per_msg: Option<f64>,
    /// Client CPU, percent of one core.
    pub client_cpu_percent: Option<f64>,
    /// Client CPU per message, µs.
    pub client_us_per_msg: Option<f64>,
    /// Client worker cores.
    pub client_cores: u64,
    /// The server's system calls; `None` for runs that did not count them.
    pub server_calls: Option<Calls>,
    /// The client's.
    pub client_calls: Option<Calls>,
    /// Server RSS at the window's end, bytes.
    pub server_rss_bytes: Option<f64>,
    /// (Server RSS with the connections open − before connecting) / connections, bytes.
    pub memory_per_connection: Option<f64>,
    /// Latency (rate: from intended send times; connect: total handshake).
    pub latency: Percentiles,
    /// `rate`, `hold`: latency from actual send times.
    pub latency_uncorrected: Option<Percentiles>,
    /// Scheduled workloads: how late the client sent (actual − intended); `None` for runs
    /// written before it was measured.
    pub send_lag: Option<Percentiles>,
    /// `connect`: per phase.
    pub phases: Option<Phases>,
    /// The full histogram, as in the JSON (base64 of V2 deflate).
    pub histogram: Option<String>,
    /// The uncorrected one.
    pub histogram_uncorrected: Option<String>,
    /// Echoes that did not match.
    pub mismatches: u64,
    /// Whether, and why, the client limited this run.
    pub client_bound: Option<ClientLimit>,
    /// The repeat of `scripts/run-bench.sh` it belongs to (its file ends in `-r<N>.json`):
    /// within one, every server ran each cell back to back (see [`crate::rounds`]).
    pub round: Option<u32>,
    /// A cache line's round trip between the server's core and the client's, ns, before the
    /// warmup and after the window (`results.core_rtt`); `None` where not measured.
    pub core_rtt_ns: Option<(f64, f64)>,
}

impl Run {
    /// Parse one wsport-bench/1 document; `None` when a required figure is missing.
    pub fn parse(file: PathBuf, doc: Value) -> Option<Self> {
        let results = &doc["results"];
        let setup = &doc["setup"];
        let (scenario, server) = scenario_and_server(&doc)?;
        let workload = doc["workload"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| scenario.split('-').next().map(str::to_owned))?;
        let server_record = &results["server"];
        let client_record = &results["client"];
        let phases = results["connect"].is_object().then(|| Phases {
            tcp: Percentiles::of(&results["connect"]["tcp_ns"]).unwrap_or_default(),
            tls: Percentiles::of(&results["connect"]["tls_ns"]),
            upgrade: Percentiles::of(&results["connect"]["upgrade_ns"]).unwrap_or_default(),
        });
        let threads = setup["threads"].as_u64().unwrap_or(1);
        let mut run = Self {
            file,
            workload,
            server,
            scheme: scheme_of(&doc),
            sizes: setup["sizes"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default(),
            connections: setup["connections"].as_u64().unwrap_or(0),
            depth: setup["pacing"]["depth"].as_u64().unwrap_or(1),
            threads,
            ping_interval_ns: (doc["workload"] == "hold")
                .then(|| setup["pacing"]["interval_ns"].as_u64())
                .flatten(),
            started: doc["started_unix_s"].as_f64().unwrap_or(0.0),
            target_rate: (doc["workload"] == "rate")
                .then(|| setup["pacing"]["rate"].as_f64())
                .flatten(),
            msgs_per_sec: results["msgs_per_sec"].as_f64()?,
            server_cpu_percent: server_record["cpu_percent"].as_f64(),
            server_us_per_msg: server_record["cpu_us_per_msg"].as_f64(),
            server_user_us_per_msg: server_record["user_us_per_msg"].as_f64(),
            client_cpu_percent: client_record["cpu_percent"].as_f64(),
            client_us_per_msg: client_record["cpu_us_per_msg"].as_f64(),
            client_cores: client_record["cores"].as_u64().unwrap_or(threads).max(1),
            server_calls: Calls::of(&server_record["syscalls"]),
            client_calls: Calls::of(&client_record["syscalls"]),
            server_rss_bytes: server_record["rss_end_bytes"].as_f64(),
            memory_per_connection: results["server_memory_per_connection_bytes"].as_f64(),
            latency: Percentiles::of(&results["latency_ns"]).unwrap_or_default(),
            latency_uncorrected: Percentiles::of(&results["latency_uncorrected_ns"]),
            send_lag: Percentiles::of(&results["send_lag_ns"]),
            phases,
            histogram: doc["histogram"]["data"].as_str().map(str::to_owned),
            histogram_uncorrected: doc["histogram_uncorrected"]["data"]
                .as_str()
                .map(str::to_owned),
            mismatches: results["mismatches"].as_u64().unwrap_or(0),
            client_bound: None,
            round: round_of(&doc),
            core_rtt_ns: results["core_rtt"]["before_ns"]
                .as_f64()
                .zip(results["core_rtt"]["after_ns"].as_f64()),
            scenario,
            doc,
        };
        run.client_bound = run.judge_client();
        Some(run)
    }

    /// The report's rule for "the client was the bottleneck", recomputed from the raw figures
    /// so that runs written by any version of the engine are judged alike:
    ///
    /// 1. the client was busy at least 90% of its worker cores (any workload without a send
    ///    lag); or
    /// 2. in a closed loop (`echo`, `connect`), where both sides go as fast as they can, the
    ///    client spent at least as much CPU per message (connection) as the server: with equal
    ///    cores it saturates first, so msgs/s (handshakes/s) is its limit, not the server's;
    /// 3. a scheduled run sent late: send-lag p99 over [`wsport_bench_record::SEND_LAG_LIMIT_NS`];
    /// 4. or the run flagged itself (`client_bottleneck`).
    ///
    /// At a fixed rate (`rate`, `hold`) the second does not apply: per-message CPU is compared
    /// at equal load there, and a missed target is reported on its own ([`Run::missed_rate`]).
    /// Where the send lag was measured it replaces the first: a scheduled worker polls rather
    /// than sleeps just before each send (see `wake.rs`), so at high rates it is always busy,
    /// and whether it kept up is exactly what its send lag says.
    fn judge_client(&self) -> Option<ClientLimit> {
        let late = self
            .send_lag
            .is_some_and(|lag| lag.p99 > wsport_bench_record::SEND_LAG_LIMIT_NS as f64);
        let busy = self.send_lag.is_none()
            && self
                .client_cpu_percent
                .is_some_and(|c| c >= CLIENT_BUSY_PERCENT * self.client_cores as f64);
        let closed_loop = matches!(self.workload.as_str(), "echo" | "connect" | "raw");
        let costlier = match (self.client_us_per_msg, self.server_us_per_msg) {
            (Some(c), Some(s)) => closed_loop && c > 0.0 && c >= s,
            _ => false,
        };
        if busy {
            Some(ClientLimit::Busy)
        } else if costlier {
            Some(ClientLimit::Costlier)
        } else if late {
            Some(ClientLimit::Late)
        } else if self.doc["results"]["client_bottleneck"] == true {
            Some(ClientLimit::SelfReported)
        } else {
            None
        }
    }

    /// `rate`: delivered less than [`RATE_MISSED_BELOW`] of the target.
    pub fn missed_rate(&self) -> bool {
        self.target_rate
            .is_some_and(|t| self.msgs_per_sec < RATE_MISSED_BELOW * t)
    }

    /// The scenario with its scheme suffix removed (`connect-10c-1t`), to put ws and wss side
    /// by side.
    pub fn family(&self) -> &str {
        self.scenario
            .strip_suffix(&format!("-{}", self.scheme))
            .unwrap_or(&self.scenario)
    }

    /// The order tables and plots list scenarios in: by workload, then by the parameters as
    /// numbers (64 B before 1 KiB), then by name.
    pub fn scenario_order(&self, other: &Self) -> Ordering {
        let workload = |w: &str| {
            ["echo", "rate", "connect", "hold"]
                .iter()
                .position(|k| *k == w)
                .unwrap_or(4)
        };
        workload(&self.workload)
            .cmp(&workload(&other.workload))
            .then_with(|| self.sizes.cmp(&other.sizes))
            .then_with(|| self.connections.cmp(&other.connections))
            .then_with(|| self.depth.cmp(&other.depth))
            .then_with(|| self.threads.cmp(&other.threads))
            .then_with(|| {
                self.target_rate
                    .unwrap_or(0.0)
                    .total_cmp(&other.target_rate.unwrap_or(0.0))
            })
            .then_with(|| self.ping_interval_ns.cmp(&other.ping_interval_ns))
            .then_with(|| self.scheme.cmp(&other.scheme))
            .then_with(|| self.scenario.cmp(&other.scenario))
    }
}

/// Decode a histogram as the JSON holds it (base64 of the V2 deflate encoding).
pub fn decode_histogram(data: &str) -> Option<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    Deserializer::new().deserialize(&mut &bytes[..]).ok()
}

/// Read every run of `dir`: its `*.json` files, or, when it has none, its `runs.jsonl` (or
/// `runs.jsonl.gz`; a directory holding both is refused, since either may be stale).
/// Returns the runs in a stable order (scenario, server, start) and whether they came from
/// `runs.jsonl`. Files of another schema are skipped.
pub fn load(dir: &Path) -> Result<(Vec<Run>, bool), RunsError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| RunsError::ReadDir {
            dir: dir.to_owned(),
            source,
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let mut runs = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| bad(file, e.to_string()))?;
        let doc: Value = serde_json::from_str(&text).map_err(|e| bad(file, e.to_string()))?;
        if let Some(run) = accept(file, doc)? {
            runs.push(run);
        }
    }
    let mut from_jsonl = false;
    if runs.is_empty() {
        if let Some((jsonl, text)) = read_jsonl(dir)? {
            from_jsonl = true;
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let doc: Value = serde_json::from_str(line)
                    .map_err(|e| bad(&jsonl, format!("line {}: {e}", i + 1)))?;
                let name = PathBuf::from(format!("{}:{}", jsonl.display(), i + 1));
                if let Some(run) = accept(&name, doc)? {
                    runs.push(run);
                }
            }
        }
    }
    if runs.is_empty() {
        return Err(RunsError::Empty(dir.to_owned()));
    }
    let order = ServerOrder::of(&runs, "");
    runs.sort_by(|a, b| {
        a.scenario_order(b)
            .then_with(|| order.rank(&a.server).cmp(&order.rank(&b.server)))
            .then_with(|| a.started.total_cmp(&b.started))
            .then_with(|| a.file.cmp(&b.file))
    });
    Ok((runs, from_jsonl))
}

/// The text of `dir`'s `runs.jsonl`, or of its `runs.jsonl.gz` uncompressed, with the file's
/// path; `None` when it has neither.
fn read_jsonl(dir: &Path) -> Result<Option<(PathBuf, String)>, RunsError> {
    let plain = dir.join(RUNS_JSONL);
    let gz = dir.join(RUNS_JSONL_GZ);
    match (plain.is_file(), gz.is_file()) {
        (true, true) => Err(bad(
            &gz,
            format!("{RUNS_JSONL} beside it: keep one (either may be stale)"),
        )),
        (true, false) => std::fs::read_to_string(&plain)
            .map(|text| Some((plain.clone(), text)))
            .map_err(|e| bad(&plain, e.to_string())),
        (false, true) => {
            let file = std::fs::File::open(&gz).map_err(|e| bad(&gz, e.to_string()))?;
            let mut text = String::new();
            // Multi-member, as `cat a.gz b.gz` and `gzip` of an appended file make.
            flate2::read::MultiGzDecoder::new(file)
                .read_to_string(&mut text)
                .map_err(|e| bad(&gz, e.to_string()))?;
            Ok(Some((gz, text)))
        }
        (false, false) => Ok(None),
    }
}

fn bad(file: &Path, why: String) -> RunsError {
    RunsError::BadFile {
        file: file.to_owned(),
        why,
    }
}

/// A wsport-bench/1 document as a run; other schemas are skipped, broken runs refused.
fn accept(file: &Path, doc: Value) -> Result<Option<Run>, RunsError> {
    if doc["schema"] != "wsport-bench/1" {
        return Ok(None);
    }
    if doc["scenario"].as_str().is_none() {
        return Err(bad(file, "no scenario name".into()));
    }
    Run::parse(file.to_owned(), doc)
        .map(Some)
        .ok_or_else(|| bad(file, "no results".into()))
}

/// The scenario without the server's name and the ports (`echo-64B-100c-1t-ws`), and the
/// server's name (`--label`, or "server").
///
/// Names end `-{threads}t[-{label}]-{scheme}-{port}[+{scheme}-{port}...]`; the label is taken
/// out first (it may contain dashes), then every port of the target list after the `Nt` part.
fn scenario_and_server(doc: &Value) -> Option<(String, String)> {
    let scenario = doc["scenario"].as_str()?;
    let server = doc["flags"]["label"]
        .as_str()
        .unwrap_or("server")
        .to_owned();
    let without_label = scenario.replacen(&format!("-{server}-"), "-", 1);
    let parts: Vec<&str> = without_label.split('-').collect();
    let threads_at = parts.iter().rposition(|p| {
        p.len() > 1 && p.ends_with('t') && p[..p.len() - 1].chars().all(|c| c.is_ascii_digit())
    });
    let trimmed = match threads_at {
        Some(i) if i + 1 < parts.len() => {
            let targets = parts[i + 1..].join("-");
            // Several ports of one scheme (`ws-80+ws-8080`) are one scenario: `ws`.
            let mut schemes: Vec<&str> = Vec::new();
            for scheme in targets.split('+').map(|t| t.split('-').next().unwrap_or(t)) {
                if !schemes.contains(&scheme) {
                    schemes.push(scheme);
                }
            }
            // The client's engine is part of the instrument: runs under the epoll engine are
            // a scenario of their own (`echo-64B-100c-1t-client-epoll-ws`), so that a table
            // never mixes the two and a ranking can be checked under each.
            let client = if epoll_client(doc) {
                "-client-epoll"
            } else {
                ""
            };
            format!("{}{client}-{}", parts[..=i].join("-"), schemes.join("+"))
        }
        _ => without_label,
    };
    Some((trimmed, server))
}

/// The repeat in the name of the run's JSON file (`…-r3.json` → 3), as run-bench names them.
fn round_of(doc: &Value) -> Option<u32> {
    let path = Path::new(doc["flags"]["json"].as_str()?);
    let stem = path.file_stem()?.to_str()?;
    let (_, digits) = stem.rsplit_once("-r")?;
    digits.parse().ok()
}

/// Whether the run's client used its epoll engine (asked for, or io_uring's fallback).
fn epoll_client(doc: &Value) -> bool {
    doc["setup"]["engine"]
        .as_str()
        .is_some_and(|e| e.starts_with("epoll"))
}

/// `ws`, `wss` or `ws+wss`, from the targets the run connected to.
fn scheme_of(doc: &Value) -> String {
    let mut schemes: Vec<&str> = doc["setup"]["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["url"].as_str())
        .map(|url| if url.starts_with("wss:") { "wss" } else { "ws" })
        .collect();
    schemes.sort_unstable();
    schemes.dedup();
    if schemes.is_empty() {
        let scenario = doc["scenario"].as_str().unwrap_or("");
        return if scenario.contains("-wss-") {
            "wss".into()
        } else {
            "ws".into()
        };
    }
    schemes.join("+")
}

/// The order servers are listed and coloured in: the baseline first, then the servers the
/// runner knows in its own order, then any other by name. One order per directory, so a
/// server keeps its colour across every plot of a report.
#[derive(Debug, Clone)]
pub struct ServerOrder(Vec<String>);

/// The runner's servers, in the order `scripts/run-bench.sh` lists them, the reference
/// servers (servers/reference) last.
const KNOWN_SERVERS: [&str; 7] = [
    "tokio",
    "tokio-multi",
    "tokio-uring",
    "monoio-uring",
    "monoio-epoll",
    REFERENCE_SERVER,
    "tokio-tungstenite",
];

/// The well-known server every server's cost is also stated against when it ran: the
/// fastwebsockets echo server of servers/reference, on the same runtime as wsport-tokio.
pub const REFERENCE_SERVER: &str = "fastwebsockets";

impl ServerOrder {
    /// The servers of `runs`, `baseline` first when present.
    pub fn of(runs: &[Run], baseline: &str) -> Self {
        let mut names: Vec<String> = runs.iter().map(|r| r.server.clone()).collect();
        names.sort();
        names.dedup();
        let rank = |name: &str| {
            if name == baseline {
                0
            } else {
                1 + KNOWN_SERVERS
                    .iter()
                    .position(|k| *k == name)
                    .unwrap_or(KNOWN_SERVERS.len())
            }
        };
        names.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
        Self(names)
    }

    /// Position of `server` (unknown servers last).
    pub fn rank(&self, server: &str) -> usize {
        self.0
            .iter()
            .position(|s| s == server)
            .unwrap_or(self.0.len())
    }

    /// The servers, in order.
    pub fn names(&self) -> &[String] {
        &self.0
    }
}

/// The scenarios of one workload with their runs, in [`Run::scenario_order`].
pub fn scenarios<'a>(runs: &'a [Run], workload: &str) -> Vec<(&'a str, Vec<&'a Run>)> {
    let mut out: Vec<(&'a str, Vec<&'a Run>)> = Vec::new();
    for run in runs.iter().filter(|r| r.workload == workload) {
        match out.iter_mut().find(|(s, _)| *s == run.scenario) {
            Some((_, list)) => list.push(run),
            None => out.push((&run.scenario, vec![run])),
        }
    }
    out.sort_by(|a, b| a.1[0].scenario_order(b.1[0]));
    out
}

/// The runs of each server among `runs`, in `order`.
pub fn by_server<'a>(runs: &[&'a Run], order: &ServerOrder) -> Vec<(&'a str, Vec<&'a Run>)> {
    let mut out: Vec<(&'a str, Vec<&'a Run>)> = Vec::new();
    for run in runs {
        match out.iter_mut().find(|(s, _)| *s == run.server) {
            Some((_, list)) => list.push(run),
            None => out.push((&run.server, vec![run])),
        }
    }
    out.sort_by_key(|(server, _)| order.rank(server));
    out
}

/// Median, min and max.
pub fn spread(values: impl Iterator<Item = f64>) -> Option<(f64, f64, f64)> {
    let mut values: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    values.sort_by(f64::total_cmp);
    Some((median_sorted(&values)?, *values.first()?, *values.last()?))
}

/// Median.
pub fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    spread(values).map(|(m, _, _)| m)
}

fn median_sorted(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(scenario: &str, label: &str) -> (String, String) {
        scenario_and_server(&serde_json::json!({
            "scenario": scenario, "flags": {"label": label}
        }))
        .unwrap()
    }

    #[test]
    fn scenario_drops_label_and_every_port() {
        assert_eq!(
            names("echo-64B-100c-1t-monoio-uring-wss-40321", "monoio-uring"),
            ("echo-64B-100c-1t-wss".into(), "monoio-uring".into())
        );
        assert_eq!(
            names("echo-64B+1KiB-10c-d4-2t-tokio-ws-8080+wss-8443", "tokio"),
            ("echo-64B+1KiB-10c-d4-2t-ws+wss".into(), "tokio".into())
        );
        assert_eq!(
            names("hold-1000c-ping500ms-1t-tokio-ws-1", "tokio").0,
            "hold-1000c-ping500ms-1t-ws"
        );
        assert_eq!(
            names("rate-50000ps-64B-100c-1t-tokio-ws-9", "tokio").0,
            "rate-50000ps-64B-100c-1t-ws"
        );
    }

    #[test]
    fn gzipped_runs_read_back_as_the_plain_ones() {
        use std::io::Write as _;
        let line = |port: u32| {
            serde_json::json!({
                "schema": "wsport-bench/1", "workload": "echo",
                "scenario": format!("echo-64B-1c-1t-x-ws-{port}"), "flags": {"label": "x"},
                "started_unix_s": port,
                "results": {"msgs_per_sec": port, "latency_ns": {"p50": 1}}
            })
            .to_string()
        };
        let text = format!("{}\n{}\n", line(2), line(1));
        let root = std::env::temp_dir().join(format!("wsport-runs-gz-{}", std::process::id()));
        let (plain, gz) = (root.join("plain"), root.join("gz"));
        std::fs::create_dir_all(&plain).unwrap();
        std::fs::create_dir_all(&gz).unwrap();
        std::fs::write(plain.join(RUNS_JSONL), &text).unwrap();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(text.as_bytes()).unwrap();
        std::fs::write(gz.join(RUNS_JSONL_GZ), enc.finish().unwrap()).unwrap();

        let figures = |dir: &Path| {
            let (runs, from_jsonl) = load(dir).unwrap();
            assert!(from_jsonl);
            runs.iter()
                .map(|r| (r.doc.clone(), r.msgs_per_sec))
                .collect::<Vec<_>>()
        };
        let read = figures(&gz);
        assert_eq!(read, figures(&plain));
        assert_eq!(read.len(), 2);

        // Both files: either may be stale, so neither is read.
        std::fs::write(gz.join(RUNS_JSONL), &text).unwrap();
        assert!(matches!(load(&gz), Err(RunsError::BadFile { .. })));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn client_rule() {
        let run = |workload: &str, client_cpu: f64, client_us: f64, server_us: f64| {
            Run::parse(
                PathBuf::from("x.json"),
                serde_json::json!({
                    "schema": "wsport-bench/1", "workload": workload,
                    "scenario": format!("{workload}-64B-1c-1t-x-ws-1"), "flags": {"label": "x"},
                    "setup": {"threads": 1},
                    "results": {"msgs_per_sec": 1.0, "latency_ns": {"p50": 1},
                        "server": {"cpu_us_per_msg": server_us},
                        "client": {"cpu_percent": client_cpu, "cpu_us_per_msg": client_us, "cores": 1}}
                }),
            )
            .unwrap()
            .client_bound
        };
        assert_eq!(run("echo", 95.0, 1.0, 2.0), Some(ClientLimit::Busy));
        assert_eq!(run("echo", 50.0, 2.0, 2.0), Some(ClientLimit::Costlier));
        assert_eq!(run("connect", 50.0, 3.0, 2.0), Some(ClientLimit::Costlier));
        assert_eq!(run("echo", 50.0, 1.9, 2.0), None);
        // At a fixed rate a costlier client is not the limit.
        assert_eq!(run("rate", 50.0, 3.0, 2.0), None);
        assert_eq!(run("rate", 91.0, 3.0, 2.0), Some(ClientLimit::Busy));
    }
}
