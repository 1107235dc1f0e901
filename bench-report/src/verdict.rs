//! Does a ranking of servers survive a change of instrument? For each closed-loop (`echo`)
//! scenario measured under more than one client engine, every pair of servers is ordered by
//! server CPU per message under each engine, and the pair's ranking is called:
//!
//! - **robust** when one server is cheaper under every engine, the repeats of the two apart
//!   (every run of one below every run of the other) each time;
//! - **flips** when each is cheaper under some engine: the cost follows how the messages
//!   arrived (how many per wake-up), not the runtime alone, and the ranking is the client's;
//! - **not separated** otherwise: under some engine the repeats overlap.
//!
//! Only a robust ranking belongs in a sentence that ranks runtimes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::runs::{median, spread, Calls, Run};

/// How two servers compare under one engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// The first is cheaper, the repeats apart.
    Less,
    /// The second is cheaper, the repeats apart.
    Greater,
    /// The repeats overlap.
    Overlap,
}

/// A pair's ranking across engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Same order under every engine.
    Robust,
    /// Opposite orders under two engines.
    Flips,
    /// Overlapping repeats under some engine.
    NotSeparated,
}

/// The client engine of a run, from its scenario (see `runs::scenario_and_server`).
pub fn client_engine(run: &Run) -> &'static str {
    if run.scenario.contains("-client-epoll-") {
        "epoll"
    } else {
        "io_uring"
    }
}

/// The scenario without its client engine: what the engines are compared over.
pub fn scenario_any_client(run: &Run) -> String {
    run.scenario.replacen("-client-epoll-", "-", 1)
}

/// Fewest repeats on each side before two servers can be told apart: a single run has no range,
/// so any difference, noise included, would look like an order.
pub const MIN_REPEATS: usize = 2;

/// Order two (median, min, max) figures, lower is cheaper.
pub fn order(a: (f64, f64, f64), b: (f64, f64, f64)) -> Order {
    if a.2 < b.1 {
        Order::Less
    } else if a.1 > b.2 {
        Order::Greater
    } else {
        Order::Overlap
    }
}

/// The verdict over the orders under every engine.
pub fn judge(orders: &[Order]) -> Verdict {
    let all = |o: Order| orders.iter().all(|&x| x == o);
    let any = |o: Order| orders.contains(&o);
    if !orders.is_empty() && (all(Order::Less) || all(Order::Greater)) {
        Verdict::Robust
    } else if any(Order::Less) && any(Order::Greater) {
        Verdict::Flips
    } else {
        Verdict::NotSeparated
    }
}

/// scenario → engine → server → server CPU µs per message of each repeat.
type Figures<'a> = BTreeMap<String, BTreeMap<&'static str, BTreeMap<&'a str, Vec<f64>>>>;

fn figures(runs: &[Run]) -> Figures<'_> {
    let mut out: Figures = BTreeMap::new();
    for r in runs.iter().filter(|r| r.workload == "echo") {
        let Some(cpu) = r.server_us_per_msg else {
            continue;
        };
        out.entry(scenario_any_client(r))
            .or_default()
            .entry(client_engine(r))
            .or_default()
            .entry(r.server.as_str())
            .or_default()
            .push(cpu);
    }
    out
}

/// The Markdown section: a table per echo scenario measured under two or more client engines,
/// a row per pair of servers; empty when there is none.
pub fn section(runs: &[Run]) -> String {
    let mut out = String::new();
    for (scenario, engines) in figures(runs) {
        if engines.len() < 2 {
            continue;
        }
        if out.is_empty() {
            out.push_str(SECTION_HEAD);
        }
        scenario_table(&mut out, &scenario, &engines);
        waits_table(&mut out, &scenario, runs);
    }
    out
}

/// What explains a flip: each server's messages per wait (server · client) under each client
/// engine; absent when no run of the scenario counted its system calls.
fn waits_table(out: &mut String, scenario: &str, runs: &[Run]) {
    let of_scenario: Vec<&Run> = runs
        .iter()
        .filter(|r| r.workload == "echo" && scenario_any_client(r) == scenario)
        .collect();
    if of_scenario.iter().all(|r| r.server_calls.is_none()) {
        return;
    }
    let mut engines: Vec<&str> = of_scenario.iter().map(|r| client_engine(r)).collect();
    engines.sort_unstable();
    engines.dedup();
    let mut servers: Vec<&str> = of_scenario.iter().map(|r| r.server.as_str()).collect();
    servers.sort_unstable();
    servers.dedup();
    let _ = write!(
        out,
        "Messages per wait, server · client (each wake-up's batch):\n\n| server |"
    );
    for e in &engines {
        let _ = write!(out, " {e} client |");
    }
    let _ = writeln!(out, "\n|---|{}", "---:|".repeat(engines.len()));
    for server in servers {
        let _ = write!(out, "| {server} |");
        for engine in &engines {
            let cell: Vec<&Run> = of_scenario
                .iter()
                .copied()
                .filter(|r| r.server == server && client_engine(r) == *engine)
                .collect();
            let side = |calls: fn(&Run) -> Option<&Calls>| {
                median(cell.iter().filter_map(|r| calls(r)?.msgs_per_wait()))
                    .map_or("–".into(), |m| format!("{m:.1}"))
            };
            let _ = write!(
                out,
                " {} · {} |",
                side(|r| r.server_calls.as_ref()),
                side(|r| r.client_calls.as_ref())
            );
        }
        out.push('\n');
    }
    out.push('\n');
}

const SECTION_HEAD: &str = "## Does the ranking depend on the client?\n\n\
The closed-loop cells ran under each client engine. A pair of servers is ranked **robust** when \
one costs less server CPU per message under every engine with the repeats apart, **flips** when \
each is cheaper under some engine (the cost follows how many messages arrive per wake-up, which \
the client decides), **not separated** when the repeats overlap under some engine (or a server ran once: one run \
has no range). Only a robust ranking says something about the runtimes.\n\n";

fn scenario_table(
    out: &mut String,
    scenario: &str,
    engines: &BTreeMap<&'static str, BTreeMap<&str, Vec<f64>>>,
) {
    let names: Vec<&str> = engines.keys().copied().collect();
    let _ = writeln!(out, "### {scenario}\n");
    let _ = write!(out, "| pair |");
    for e in &names {
        let _ = write!(out, " {e} client |");
    }
    let _ = writeln!(out, " verdict |\n|---|{}---|", "---|".repeat(names.len()));
    let mut servers: Vec<&str> = engines.values().flat_map(|s| s.keys().copied()).collect();
    servers.sort_unstable();
    servers.dedup();
    for (i, a) in servers.iter().enumerate() {
        for b in &servers[i + 1..] {
            pair_row(out, (a, b), engines);
        }
    }
    out.push('\n');
}

fn pair_row(
    out: &mut String,
    (a, b): (&str, &str),
    engines: &BTreeMap<&'static str, BTreeMap<&str, Vec<f64>>>,
) {
    let mut orders = Vec::new();
    let mut cells = Vec::new();
    for servers in engines.values() {
        let repeats = |s: &str| servers.get(s).map_or(0, Vec::len);
        let enough = repeats(a) >= MIN_REPEATS && repeats(b) >= MIN_REPEATS;
        let fig = |s: &str| servers.get(s).and_then(|v| spread(v.iter().copied()));
        match (fig(a), fig(b)) {
            (Some(x), Some(y)) => {
                let o = if enough { order(x, y) } else { Order::Overlap };
                let sign = match o {
                    Order::Less => "<",
                    Order::Greater => ">",
                    Order::Overlap => "≈",
                };
                cells.push(format!("{a} {:.2} {sign} {b} {:.2}", x.0, y.0));
                orders.push(o);
            }
            _ => cells.push("–".into()),
        }
    }
    let verdict = match judge(&orders) {
        Verdict::Robust => "robust",
        Verdict::Flips => "**flips**",
        Verdict::NotSeparated => "not separated",
    };
    let _ = writeln!(out, "| {a} vs {b} | {} | {verdict} |", cells.join(" | "));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_need_the_repeats_apart() {
        assert_eq!(order((5.8, 5.7, 5.9), (6.7, 6.6, 6.8)), Order::Less);
        assert_eq!(order((7.5, 7.4, 7.6), (6.8, 6.7, 6.9)), Order::Greater);
        assert_eq!(order((6.8, 6.5, 7.0), (6.9, 6.9, 7.1)), Order::Overlap);
    }

    #[test]
    fn a_ranking_is_robust_only_under_every_engine() {
        use Order::*;
        assert_eq!(judge(&[Less, Less]), Verdict::Robust);
        assert_eq!(judge(&[Greater, Greater]), Verdict::Robust);
        assert_eq!(judge(&[Less, Greater]), Verdict::Flips);
        assert_eq!(judge(&[Less, Overlap]), Verdict::NotSeparated);
        assert_eq!(judge(&[]), Verdict::NotSeparated);
    }

    #[test]
    fn the_issues_monoio_case_flips() {
        // Server CPU µs/msg of the load-axis issue: monoio io_uring 5.80 under the io_uring
        // client, 7.50 under the epoll client; tokio 6.69 and 6.79.
        let run = |server: &str, engine: &str, cpu: f64| {
            // Server messages per wait of the issue: monoio io_uring ≈ 48 under the io_uring
            // client, ≈ 6 under the epoll client.
            let waits = match (server, engine) {
                ("monoio", "epoll") => 6.0,
                ("monoio", _) => 48.0,
                _ => 40.0,
            };
            let doc = serde_json::json!({
                "schema": "wsport-bench/1", "workload": "echo",
                "scenario": format!("echo-64B-100c-1t-{server}-ws-1"),
                "flags": {"label": server},
                "setup": {"threads": 1, "engine": engine,
                          "targets": [{"url": "ws://127.0.0.1:1/"}]},
                "results": {"msgs_per_sec": 1.0, "latency_ns": {"p50": 1},
                            "server": {"cpu_us_per_msg": cpu,
                                       "syscalls": {"per_msg": 0.1, "msgs_per_wait": waits}},
                            "client": {"cpu_us_per_msg": 1.0,
                                       "syscalls": {"unavailable": "not permitted"}}}
            });
            Run::parse("x.json".into(), doc).unwrap()
        };
        let mut runs = Vec::new();
        for d in [0.0, 0.05, 0.1] {
            runs.push(run("monoio", "io_uring (batched)", 5.80 + d));
            runs.push(run("tokio", "io_uring (batched)", 6.69 + d));
            runs.push(run("monoio", "epoll", 7.50 + d));
            runs.push(run("tokio", "epoll", 6.79 + d));
        }
        let text = section(&runs);
        assert!(text.contains("### echo-64B-100c-1t-ws"), "{text}");
        assert!(
            text.contains("| monoio vs tokio | monoio 7.55 > tokio 6.84 | monoio 5.85 < tokio 6.74 | **flips** |"),
            "{text}"
        );
        assert!(
            text.contains("| monoio | 6.0 · – | 48.0 · – |"),
            "the flip is explained by messages per wait: {text}"
        );
        for engine in ["io_uring (batched)", "epoll"] {
            runs.push(run("uws", engine, 5.0));
        }
        assert!(
            section(&runs).contains(
                "| monoio vs uws | monoio 7.55 ≈ uws 5.00 | monoio 5.85 ≈ uws 5.00 | not separated |"
            ),
            "one run has no range: {}",
            section(&runs)
        );
        for engine in ["io_uring (batched)", "epoll"] {
            runs.push(run("uws", engine, 5.0));
        }
        let text = section(&runs);
        assert!(
            text.contains(
                "| monoio vs uws | monoio 7.55 > uws 5.00 | monoio 5.85 > uws 5.00 | robust |"
            ),
            "{text}"
        );
        let one_engine: Vec<Run> = runs
            .into_iter()
            .filter(|r| client_engine(r) == "epoll")
            .collect();
        assert_eq!(section(&one_engine), "");
    }
}
