//! Running cases: every case on every endpoint of a server, a few at a time, every server
//! config in turn, and one failure report at the end that names config, endpoint and case.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::config::{self, ServerConfig};
use crate::server::{Endpoint, Server};
use crate::Outcome;

/// A named case that runs against one endpoint.
#[derive(Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    pub run: fn(&Endpoint) -> Outcome,
}

/// `cases![a, b, c]`: a slice of [`Case`]s named after the functions.
#[macro_export]
macro_rules! cases {
    ($($case:path),* $(,)?) => {
        &[$($crate::run::Case { name: stringify!($case), run: $case }),*]
    };
}

/// Timing allowance added to every "within N s" of the spec: the suite runs on loaded
/// 2-core CI machines next to debug builds of the servers.
pub const SLACK: Duration = Duration::from_secs(1);

/// The limit for something the spec says happens "within ~`spec`".
pub fn within(spec: Duration) -> Duration {
    spec + SLACK
}

/// Run `test` once per selected server config; panic at the end with every failure.
///
/// A failing config does not stop the others. The selection (see [`config::selected`]) is
/// shared by every test in the binary.
pub fn for_each_server(test: &str, run: impl Fn(&'static ServerConfig) -> Outcome) {
    for_each_server_that(test, |_| None, run);
}

/// [`for_each_server`], skipping each config for which `skip` gives a reason (said in the
/// notice line instead of "ok", so a skipped config does not read as a checked one).
pub fn for_each_server_that(
    test: &str,
    skip: impl Fn(&ServerConfig) -> Option<&'static str>,
    run: impl Fn(&'static ServerConfig) -> Outcome,
) {
    let configs = config::selected().unwrap_or_else(|e| panic!("{test}: {e}"));
    let mut failures = Vec::new();
    for &config in configs {
        if let Some(why) = skip(config) {
            config::notice(&format!("{test} [{}]: skipped: {why}", config.name));
            continue;
        }
        let started = Instant::now();
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| run(config)))
            .unwrap_or_else(|panic| Err(format!("panicked: {}", panic_text(&*panic))));
        let verdict = if outcome.is_ok() { "ok" } else { "FAILED" };
        config::notice(&format!(
            "{test} [{}]: {verdict} in {:.1?}",
            config.name,
            started.elapsed()
        ));
        if let Err(e) = outcome {
            failures.push(format!("=== {} ({test}) ===\n{e}", config.name));
        }
    }
    if !failures.is_empty() {
        panic!(
            "{test}: {} of {} server configs failed\n\n{}\n",
            failures.len(),
            configs.len(),
            failures.join("\n\n")
        );
    }
}

/// Run every case on every endpoint of `server`, then check the server is still alive.
pub fn run_cases(server: &Server, cases: &[Case]) -> Outcome {
    run_cases_on(server, server.endpoints(), cases)
}

/// Run every case on each of `endpoints`, a few at a time (`WSPORT_PARALLEL`, default 8).
/// `WSPORT_CASES` (comma list of substrings) narrows the cases to run.
pub fn run_cases_on(server: &Server, endpoints: &[Endpoint], cases: &[Case]) -> Outcome {
    let jobs: Vec<(&Case, &Endpoint)> = cases
        .iter()
        .filter(|case| selected_case(case.name))
        .flat_map(|case| endpoints.iter().map(move |ep| (case, ep)))
        .collect();
    let next = Mutex::new(0);
    let results = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..parallelism().min(jobs.len()) {
            scope.spawn(|| loop {
                let index = {
                    let mut next = next.lock().unwrap_or_else(|e| e.into_inner());
                    *next += 1;
                    *next - 1
                };
                let Some(&(case, ep)) = jobs.get(index) else {
                    break;
                };
                let outcome = guarded(|| (case.run)(ep));
                let mut results = results.lock().unwrap_or_else(|e| e.into_inner());
                results.push((index, format!("{} on {ep}", case.name), outcome));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(index, ..)| *index);
    let outcomes = results
        .into_iter()
        .map(|(_, label, outcome)| labelled(&label, outcome));
    let health = [
        labelled("server still running", server.check_alive()),
        labelled("server did not panic", server.check_no_panic()),
    ];
    collect(outcomes.chain(health)).map_err(|e| with_server_context(server, e))
}

/// Run one case that needs the whole server (signals, connection limits, counters).
pub fn run_server_case(server: &Server, name: &str, case: fn(&Server) -> Outcome) -> Outcome {
    if !selected_case(name) {
        return Ok(());
    }
    let outcome = labelled(name, guarded(|| case(server)));
    collect([
        outcome,
        labelled("server did not panic", server.check_no_panic()),
    ])
    .map_err(|e| with_server_context(server, e))
}

/// Join several outcomes: `Ok` if all are, else every failure on its own paragraph.
pub fn collect(outcomes: impl IntoIterator<Item = Outcome>) -> Outcome {
    let failures: Vec<String> = outcomes.into_iter().filter_map(Result::err).collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// Failures end with the server's command line and its last stderr lines.
fn with_server_context(server: &Server, failures: String) -> String {
    format!(
        "{failures}\n  command: {}{}",
        server.command_line(),
        server.stderr_tail(20)
    )
}

fn labelled(label: &str, outcome: Outcome) -> Outcome {
    outcome.map_err(|e| format!("- {label}: {e}"))
}

/// Run a case, turning a panic into a failure.
fn guarded(case: impl FnOnce() -> Outcome) -> Outcome {
    panic::catch_unwind(AssertUnwindSafe(case))
        .unwrap_or_else(|panic| Err(format!("panicked: {}", panic_text(&*panic))))
}

fn panic_text(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(non-string panic)".into())
}

fn parallelism() -> usize {
    std::env::var("WSPORT_PARALLEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(8)
}

fn selected_case(name: &str) -> bool {
    match std::env::var("WSPORT_CASES") {
        Ok(filter) if !filter.trim().is_empty() => filter
            .split(',')
            .map(str::trim)
            .any(|part| !part.is_empty() && name.contains(part)),
        _ => true,
    }
}

/// `ensure!(cond, "format", args)`: return `Err(format!(..))` from a case unless `cond`.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}
