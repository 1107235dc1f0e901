//! wsport-abuse: hostile clients beside a measured load, and the summary of such runs.
//!
//! ```text
//! wsport-abuse run --addr 127.0.0.1:8080 --duration 5s --server-pid PID --json abuse.json
//! wsport-abuse run --addr 127.0.0.1:8443 --wss ...   # the same over TLS, and the TLS kinds
//! wsport-abuse summary DIR        # DIR/runs.jsonl (or .gz) -> DIR/summary.md
//! ```
//! `run` exits 3 when a connection did not end the RFC way or the server's RSS passed its
//! bound.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use wsport_abuse::rss::BoundInputs;
use wsport_abuse::{Kind, Plan, Target};
use wsport_server_common::units::{parse_duration, parse_size};

#[derive(Parser)]
#[command(about = "Hostile WebSocket clients beside a measured load")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the abuse against one ws:// listener (wss:// with --wss) until --duration.
    Run(RunArgs),
    /// Write DIR/summary.md from DIR/runs.jsonl or DIR/runs.jsonl.gz (scripts/lib/abuse.sh's runs).
    Summary { dir: PathBuf },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The server's ws:// listener, HOST:PORT (its wss:// listener with --wss).
    #[arg(long)]
    addr: SocketAddr,
    /// --addr is a wss:// listener: every attack speaks TLS (any certificate accepted), and
    /// the TLS kinds (tls-slowloris, tls-garbage, tls-bad-record) run too.
    #[arg(long)]
    wss: bool,
    /// Kinds, comma-separated (default: all; the tls-* kinds only with --wss).
    #[arg(long, value_delimiter = ',')]
    kinds: Vec<Kind>,
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Slowloris connections held at once (split between slowloris and tls-slowloris).
    #[arg(long, default_value_t = 2000)]
    slowloris: usize,
    /// Never-read connections held at once.
    #[arg(long, default_value_t = 20)]
    never_read: usize,
    /// Payload of each frame a never-read client sends.
    #[arg(long, default_value = "16KiB", value_parser = parse_size)]
    never_read_frame_bytes: u64,
    /// Short-lived abusive connections per second (the other kinds, in turn).
    #[arg(long, default_value_t = 200)]
    churn_rate: u32,
    /// Abusive connections in all, at most.
    #[arg(long, default_value_t = 100_000)]
    max_connections: u64,
    /// How long one answer may take.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    answer_wait: Duration,
    /// The server's --handshake-timeout.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    handshake_timeout: Duration,
    /// Sample this server's RSS and check it against the bound.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The server's --max-header-bytes (for the bound).
    #[arg(long, default_value = "8KiB", value_parser = parse_size)]
    max_header_bytes: u64,
    /// The server's --max-frame-bytes (for the bound).
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    max_frame_bytes: u64,
    /// Legitimate connections open beside the abuse (for the bound).
    #[arg(long, default_value_t = 0)]
    legit_conns: u64,
    /// The legitimate connections speak wss (they carry TLS state; for the bound).
    #[arg(long)]
    legit_wss: bool,
    /// Allowance for the allocator and thread stacks in the bound.
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    rss_slack: u64,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wsport-abuse: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<ExitCode> {
    match Cli::parse().command {
        Command::Run(args) => run(args),
        Command::Summary { dir } => {
            let jsonl = read_runs(&dir)?;
            let md = wsport_abuse::summary::markdown(&jsonl)?;
            std::fs::write(dir.join("summary.md"), &md)?;
            print!("{md}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// DIR/runs.jsonl, or DIR/runs.jsonl.gz uncompressed (a committed result, slimmed by
/// scripts/slim-results.sh).
fn read_runs(dir: &std::path::Path) -> Result<String> {
    let plain = dir.join("runs.jsonl");
    let gz = dir.join("runs.jsonl.gz");
    if plain.is_file() || !gz.is_file() {
        return std::fs::read_to_string(&plain)
            .with_context(|| format!("reading {}", plain.display()));
    }
    let mut text = String::new();
    std::fs::File::open(&gz)
        .map(flate2::read::MultiGzDecoder::new)
        .and_then(|mut z| std::io::Read::read_to_string(&mut z, &mut text))
        .with_context(|| format!("reading {}", gz.display()))?;
    Ok(text)
}

fn run(args: RunArgs) -> Result<ExitCode> {
    // Thousands of slowloris connections need thousands of descriptors.
    wsport_server_common::limits::raise_nofile().context("raising RLIMIT_NOFILE")?;
    let kinds = if args.kinds.is_empty() {
        Kind::defaults(args.wss)
    } else {
        args.kinds
    };
    if let Some(kind) = kinds.iter().find(|k| k.is_tls() && !args.wss) {
        bail!("{kind} attacks a TLS listener: give its wss:// address with --wss");
    }
    let plan = Plan {
        target: Target {
            addr: args.addr,
            answer_wait: args.answer_wait,
            handshake_timeout: args.handshake_timeout,
            frame_bytes: args.never_read_frame_bytes as usize,
            tls: args.wss.then(wsport_abuse::tls::client_config),
        },
        kinds,
        duration: args.duration,
        slowloris: args.slowloris,
        never_read: args.never_read,
        churn_rate: args.churn_rate,
        max_connections: args.max_connections,
        server_pid: args.server_pid,
        bound: BoundInputs {
            max_header_bytes: args.max_header_bytes,
            max_frame_bytes: args.max_frame_bytes,
            legit: args.legit_conns,
            legit_wss: args.legit_wss,
            handshaking: 0,
            open: 0,
            never_read: 0,
            abuse_wss: args.wss,
            slack: args.rss_slack,
        },
    };
    let report = wsport_abuse::run(&plan);
    print!("{}", report.text());
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_vec(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
