//! `wsport-bench`: parse the command line, run a workload and print its summary, or summarise
//! a directory of runs (`report`). See the crate docs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use clap::{Args, Parser, Subcommand};
use wsport_bench::cli::Command;
use wsport_bench::{run_with_stop, Opts, Stop};
use wsport_bench_report::{compare, paired, publish};

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
    /// Regenerate a result directory's documents from its runs (`--json` files, or its
    /// runs.jsonl or runs.jsonl.gz): DIR/summary.md (a table per scenario, one row per server, medians and
    /// ranges of the repeats, ratios against the baseline server, client-bound cells flagged),
    /// DIR/runs.jsonl and the plots in DIR/plots/*.svg. Prints the summary.
    Report(ReportArgs),
    /// Compare two result directories (same scenarios, e.g. a baseline and this commit) by the
    /// server's own cost (echo, rate: CPU per message; connect: CPU per handshake; hold: memory
    /// per connection), deciding from the spread of the repeats whether each server got slower,
    /// faster or stayed the same; prints a Markdown table and exits 1 on a slowdown.
    /// `compare --paired DIR` judges one directory where base and head ran in alternating
    /// pairs (`scripts/run-bench.sh --base-bin DIR --head-bin DIR`) by the interval of the
    /// median head/base ratio, and says what change the run could have seen.
    Compare(CompareArgs),
}

#[derive(Debug, Args)]
struct CompareArgs {
    /// The baseline result directory.
    #[arg(required_unless_present = "paired", requires = "current")]
    base: Option<PathBuf>,
    /// The result directory to judge.
    current: Option<PathBuf>,
    /// One directory of a paired run: judge its head side against its base side, pair by pair.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["base", "github_json", "bencher_json"])]
    paired: Option<PathBuf>,
    /// --paired: the side judged against.
    #[arg(long, default_value = "base", requires = "paired")]
    base_side: String,
    /// --paired: the side judged.
    #[arg(long, default_value = "head", requires = "paired")]
    head_side: String,
    /// Smallest relative change that can count (0.03 = 3%).
    #[arg(long, default_value_t = 0.03)]
    threshold: f64,
    /// Also write CUR's figures for github-action-benchmark (tool: customSmallerIsBetter).
    #[arg(long, value_name = "FILE")]
    github_json: Option<PathBuf>,
    /// Also write CUR's figures in Bencher Metric Format (bencher run --adapter json).
    #[arg(long, value_name = "FILE")]
    bencher_json: Option<PathBuf>,
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
            let published = publish::regenerate(&args.dir, &args.baseline)?;
            print!("{}", published.summary);
            eprintln!(
                "wsport-bench report: {} runs; wrote {}",
                published.runs,
                published
                    .files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return Ok(ExitCode::SUCCESS);
        }
        TopCommand::Compare(args) => {
            if let Some(dir) = &args.paired {
                let comparison =
                    paired::compare_paired(dir, &args.base_side, &args.head_side, args.threshold)?;
                print!("{}", comparison.markdown());
                return Ok(if comparison.any_slower() {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                });
            }
            let (Some(base), Some(current)) = (&args.base, &args.current) else {
                anyhow::bail!("compare takes BASE and CUR, or --paired DIR");
            };
            let comparison = compare::compare(base, current, args.threshold)?;
            print!("{}", comparison.markdown());
            for (file, doc) in [
                (&args.github_json, comparison.github_json()),
                (&args.bencher_json, comparison.bencher_json()),
            ] {
                if let Some(file) = file {
                    let text = serde_json::to_string_pretty(&doc)? + "\n";
                    std::fs::write(file, text)
                        .with_context(|| format!("cannot write {}", file.display()))?;
                }
            }
            return Ok(if comparison.any_slower() {
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
    // A broadcast that lost, duplicated or reordered a message measured a broken server.
    let broadcast_failed = report.results.broadcast.as_ref().is_some_and(|b| !b.ok);
    if broadcast_failed {
        eprintln!("wsport-bench: the broadcast check failed (see `verified` above)");
    }
    if report.output_errors.is_empty() && !broadcast_failed {
        return Ok(ExitCode::SUCCESS);
    }
    for e in &report.output_errors {
        eprintln!("wsport-bench: {e}");
    }
    Ok(ExitCode::FAILURE)
}
