//! `wsport-bench`: parse the command line, run a workload and print its summary, or summarise
//! a directory of runs (`report`). See the crate docs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use wsport_bench::cli::Command;
use wsport_bench::{run_with_stop, summary, Opts, Stop};

#[derive(Debug, Parser)]
#[command(
    name = "wsport-bench",
    version,
    about = "A load generator for WebSocket servers"
)]
struct Cli {
    #[command(subcommand)]
    command: TopCommand,
}

#[derive(Debug, Subcommand)]
enum TopCommand {
    #[command(flatten)]
    Workload(Box<Command>),
    /// Summarise a directory of runs (`--json` files): a table per scenario, one row per
    /// server (`--label`), medians and ranges of the repeats, server CPU per message as a ratio
    /// against the baseline server. Prints it and writes DIR/summary.md.
    Report(ReportArgs),
    /// Compare two result directories (same scenarios, e.g. a baseline and this commit) by
    /// server CPU per message, deciding from the spread of the repeats whether each server got
    /// slower, faster or stayed the same; prints a Markdown table and exits 1 on a slowdown.
    Compare(CompareArgs),
}

#[derive(Debug, Args)]
struct CompareArgs {
    /// The baseline result directory.
    base: PathBuf,
    /// The result directory to judge.
    current: PathBuf,
    /// Smallest relative change that can count (0.03 = 3%).
    #[arg(long, default_value_t = 0.03)]
    threshold: f64,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// The directory holding the runs' JSON files.
    dir: PathBuf,
    /// The server the ratios are against.
    #[arg(long, default_value = "tokio")]
    baseline: String,
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wsport-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> anyhow::Result<ExitCode> {
    let command = match Cli::parse().command {
        TopCommand::Workload(command) => *command,
        TopCommand::Report(args) => {
            let text = summary::summarize(&args.dir, &args.baseline)?;
            print!("{text}");
            std::fs::write(args.dir.join("summary.md"), &text)?;
            return Ok(ExitCode::SUCCESS);
        }
        TopCommand::Compare(args) => {
            let (table, slower) = summary::compare(&args.base, &args.current, args.threshold)?;
            print!("{table}");
            return Ok(if slower {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            });
        }
    };
    let opts = Opts {
        command,
        argv: std::env::args().collect(),
    };
    let stop = Stop::new();
    stop.on_signals()?;
    let report = run_with_stop(&opts, &stop)?;
    print!("{report}");
    if report.output_errors.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for e in &report.output_errors {
        eprintln!("wsport-bench: {e}");
    }
    Ok(ExitCode::FAILURE)
}
