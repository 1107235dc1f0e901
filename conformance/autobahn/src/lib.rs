//! wsport-autobahn: an independent Autobahn|Testsuite-style conformance runner for WebSocket
//! echo servers.
//!
//! The real Autobahn|Testsuite is Python 2 only. This crate reproduces its fuzzingclient
//! (cases 1.x-10.x, same numbering, payloads, timings and verdict rules, transcribed from its
//! `autobahntestsuite/case/*.py`) and adds H.x handshake and abuse cases. It shares no code
//! with `wsport-core`: its client codec and response parser (wsport-harness, shared only with the
//! conformance suite) and its handshake checks ([`handshake`]) are written apart from it,
//! so a bug in the servers' protocol code cannot hide behind the same bug here.
//!
//! Layout, top-down: [`run`] takes the parsed [`cli::Cli`], [`runner`] runs cases in
//! parallel, [`cases`] holds the case list, [`session`] plays Autobahn's fuzzing client
//! protocol over a [`transport::Conn`], [`verdict`] judges, [`report`] writes the results.

pub mod cases;
pub mod cli;
pub mod handshake;
pub mod report;
pub mod runner;
pub mod session;
pub mod tls;
pub mod transport;
pub mod verdict;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::cli::Cli;
use crate::report::{Counts, UrlReport};
use crate::session::{Env, Session};
use crate::transport::Target;
use crate::verdict::Behavior;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every URL was tested and no case FAILED.
    Passed,
    /// At least one case FAILED.
    Failed,
    /// No case failed, but a URL could not be tested at all.
    NotTested,
}

/// Runs the selected cases against every URL, prints failures and summaries, writes the
/// report.
pub fn run(cli: Cli) -> Result<Outcome> {
    let selected = cases::select(cases::all(), &cli.cases, &cli.exclude);
    if selected.is_empty() {
        bail!(
            "no case matches --cases {:?} / --exclude {:?}",
            cli.cases,
            cli.exclude
        );
    }
    if cli.list {
        for c in &selected {
            println!("{:<8} {}", c.id, c.description);
        }
        println!("{} cases", selected.len());
        return Ok(Outcome::Passed);
    }
    let targets = cli
        .urls
        .iter()
        .map(|u| Target::parse(u))
        .collect::<Result<Vec<_>>>()?;
    let tls = if targets.iter().any(|t| t.secure) {
        Some(tls::client_config(cli.insecure, cli.ca.as_deref())?)
    } else {
        None
    };
    let mut reports = Vec::new();
    for target in targets {
        reports.push(run_url(&cli, target, tls.clone(), &selected));
    }
    if reports.len() > 1 {
        println!();
        for r in &reports {
            println!("{}", report::summary_line(r));
        }
    }
    println!("(12.x/13.x permessage-deflate not run: the servers negotiate no extension; H.1.6 checks that.)");
    if let Some(dir) = &cli.report {
        report::write(dir, &reports)?;
        println!("report: {}", dir.join("index.md").display());
    }
    Ok(if reports.iter().any(|r| r.summary.failed > 0) {
        Outcome::Failed
    } else if reports.iter().any(|r| r.error.is_some()) {
        Outcome::NotTested
    } else {
        Outcome::Passed
    })
}

fn run_url(
    cli: &Cli,
    target: Target,
    tls: Option<Arc<rustls::ClientConfig>>,
    cases: &[cases::CaseDef],
) -> UrlReport {
    let url = target.url.clone();
    let env = Env {
        target,
        tls,
        timeout: cli.timeout,
    };
    let start = Instant::now();
    // One plain connection first: an unreachable URL is one error, not 300 failures.
    match Session::open(&env, None, Duration::from_secs(2)) {
        Ok(mut s) => {
            s.send_close(Some(session::NORMAL), None);
            s.finish();
        }
        Err(e) => {
            let error = Some(format!("{e:#}"));
            let r = UrlReport {
                url,
                error,
                summary: Counts::default(),
                duration_ms: 0,
                cases: vec![],
            };
            eprintln!("{}", report::summary_line(&r));
            return r;
        }
    }
    println!(
        "{url}: running {} cases, {} at a time",
        cases.len(),
        cli.jobs
    );
    let verbose = cli.verbose;
    let results = runner::run_all(&env, cases, usize::from(cli.jobs), |r| {
        if r.behavior == Behavior::Failed || (verbose && r.behavior != Behavior::Ok) {
            println!("{}", report::case_line(&url, r));
        }
    });
    let r = UrlReport {
        url: url.clone(),
        error: None,
        summary: Counts::of(&results),
        duration_ms: start.elapsed().as_millis() as u64,
        cases: results,
    };
    print!("{}", report::summary_table(&r));
    r
}
