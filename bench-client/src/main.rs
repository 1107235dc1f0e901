//! `wsport-bench`: parse the command line, run, print the summary. See the crate docs.

use std::process::ExitCode;

use clap::Parser;
use wsport_bench::{run_with_stop, Opts, Stop};

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
    let mut opts = Opts::parse();
    opts.argv = std::env::args().collect();
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
