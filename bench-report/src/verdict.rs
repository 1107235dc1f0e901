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

use crate::rounds::{by_round, paired_ratio, PairedRatio, RoundRun};
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

/// Each repeat's round (where known), server CPU µs per message and core placement.
pub(crate) type Repeats = Vec<(Option<u32>, RoundRun)>;

/// scenario → engine → server → its repeats.
pub(crate) type Figures<'a> = BTreeMap<String, BTreeMap<&'static str, BTreeMap<&'a str, Repeats>>>;

pub(crate) fn figures(runs: &[Run]) -> Figures<'_> {
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
            .push((
                r.round,
                RoundRun {
                    figure: cpu,
                    core_rtt_ns: r.core_rtt_ns,
                },
            ));
    }
    out
}

/// The Markdown section: a table per echo scenario measured under two or more client engines,
/// a row per pair of servers; empty when there is none.
pub fn section(runs: &[Run]) -> String {
    let mut body = String::new();
    let mut paired = false;
    for (scenario, engines) in figures(runs) {
        if engines.len() < 2 {
            continue;
        }
        paired |= scenario_table(&mut body, &scenario, &engines);
        waits_table(&mut body, &scenario, runs);
    }
    if body.is_empty() {
        return body;
    }
    let note = if paired { PAIRED_NOTE } else { "" };
    format!("{SECTION_HEAD}{note}{body}")
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

const PAIRED_NOTE: &str = "Where two servers ran in the same rounds (run-bench's repeats: \
every server runs a cell back to back) at least 6 times, they are ordered round by round \
instead: the ratio of their runs in each round, its median and 95% interval (the sign test's, \
as `compare --paired`), shown as (ratio, interval); apart when the interval excludes 1. A round's \
ratio is free of the host's drift between rounds, which overlaps the ranges on a noisy host. \
Where the runs measured how far apart the server's and the client's cores were, a round whose \
two runs had them placed differently (a cache line's round trip over 1.5× apart, or moving \
during a run) is left out, and the cell says how many were.\n\n";

/// The table of one scenario; whether any of its cells was ordered by rounds.
fn scenario_table(
    out: &mut String,
    scenario: &str,
    engines: &BTreeMap<&'static str, BTreeMap<&str, Repeats>>,
) -> bool {
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
    let mut paired = false;
    for (i, a) in servers.iter().enumerate() {
        for b in &servers[i + 1..] {
            paired |= pair_row(out, (a, b), engines);
        }
    }
    out.push('\n');
    paired
}

/// One pair's row; whether any engine's order came from the rounds.
fn pair_row(
    out: &mut String,
    (a, b): (&str, &str),
    engines: &BTreeMap<&'static str, BTreeMap<&str, Repeats>>,
) -> bool {
    let mut orders = Vec::new();
    let mut cells = Vec::new();
    let mut paired = false;
    for servers in engines.values() {
        let Some(cell) = engine_cell((a, b), servers) else {
            cells.push("–".into());
            continue;
        };
        paired |= cell.paired;
        cells.push(cell.text);
        orders.push(cell.order);
    }
    let verdict = match judge(&orders) {
        Verdict::Robust => "robust",
        Verdict::Flips => "**flips**",
        Verdict::NotSeparated => "not separated",
    };
    let _ = writeln!(out, "| {a} vs {b} | {} | {verdict} |", cells.join(" | "));
    paired
}

/// How two servers compare under one engine, and the table cell that says so.
pub(crate) struct EngineCell {
    pub order: Order,
    pub text: String,
    /// Ordered by rounds (else by the ranges).
    pub paired: bool,
}

/// How `a` and `b` compare under one engine: by rounds where they ran in enough of the same,
/// else by their ranges.
pub(crate) fn engine_cell(
    (a, b): (&str, &str),
    servers: &BTreeMap<&str, Repeats>,
) -> Option<EngineCell> {
    let repeats = |s: &str| servers.get(s).map_or(&[][..], Vec::as_slice);
    let fig = |s: &str| spread(repeats(s).iter().map(|(_, run)| run.figure));
    let (x, y) = (fig(a)?, fig(b)?);
    let rounds = paired_ratio(&by_round(repeats(a)), &by_round(repeats(b)));
    let enough = repeats(a).len() >= MIN_REPEATS && repeats(b).len() >= MIN_REPEATS;
    let o = match rounds {
        Some(p) => match p.apart() {
            Some(std::cmp::Ordering::Less) => Order::Less,
            Some(_) => Order::Greater,
            None => Order::Overlap,
        },
        None if enough => order(x, y),
        None => Order::Overlap,
    };
    let sign = match o {
        Order::Less => "<",
        Order::Greater => ">",
        Order::Overlap => "≈",
    };
    // Paired, the medians are those of the rounds compared.
    let (ma, mb) = rounds.map_or((x.0, y.0), |p| p.medians);
    let mut cell = format!("{a} {ma:.2} {sign} {b} {mb:.2}");
    if let Some(p) = rounds {
        let PairedRatio {
            median, low, high, ..
        } = p;
        let _ = match p.placed_apart {
            0 => write!(cell, " ({median:.2}×, {low:.2}–{high:.2})"),
            n => write!(
                cell,
                " ({median:.2}×, {low:.2}–{high:.2}; {} rounds, {n} placed apart)",
                p.rounds
            ),
        };
    }
    Some(EngineCell {
        order: o,
        text: cell,
        paired: rounds.is_some(),
    })
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

    #[test]
    fn rounds_order_what_a_drifting_host_overlaps() {
        // Six rounds, the host slow in rounds 3 and 6 for both: the ranges overlap (4.6–6.1
        // against 5.6–7.4) but a is cheaper in every round, under both engines.
        let run = |server: &str, engine: &str, round: u32, cpu: f64| {
            let doc = serde_json::json!({
                "schema": "wsport-bench/1", "workload": "echo",
                "scenario": format!("echo-64B-100c-1t-{server}-ws-1"),
                "flags": {"label": server, "json": format!("d/echo-{server}-{engine}-r{round}.json")},
                "setup": {"threads": 1, "engine": engine,
                          "targets": [{"url": "ws://127.0.0.1:1/"}]},
                "results": {"msgs_per_sec": 1.0, "latency_ns": {"p50": 1},
                            "server": {"cpu_us_per_msg": cpu},
                            "client": {"cpu_us_per_msg": 1.0}}
            });
            Run::parse("x.json".into(), doc).unwrap()
        };
        let a = [4.6, 4.6, 6.1, 4.7, 4.6, 6.0];
        let b = [5.6, 5.7, 7.4, 5.6, 5.7, 7.3];
        let mut runs = Vec::new();
        for engine in ["io_uring (batched)", "epoll"] {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                runs.push(run("a", engine, i as u32 + 1, *x));
                runs.push(run("b", engine, i as u32 + 1, y));
            }
        }
        let text = section(&runs);
        assert!(text.contains("ordered round by round"), "{text}");
        assert!(
            text.contains("| a vs b | a 4.65 < b 5.70 (0.82×, 0.81–0.84) | a 4.65 < b 5.70 (0.82×, 0.81–0.84) | robust |"),
            "{text}"
        );
        // One round the other way under one engine: no longer apart there.
        runs[11] = run("b", "io_uring (batched)", 6, 5.9);
        let text = section(&runs);
        assert!(
            text.contains("(0.82×, 0.81–1.02) | not separated |"),
            "{text}"
        );
        // Without rounds (or too few), the ranges decide, and the note is not there.
        let unpaired: Vec<Run> = runs
            .iter()
            .filter(|r| r.round.is_some_and(|n| n <= 5))
            .cloned()
            .collect();
        let text = section(&unpaired);
        assert!(
            !text.contains("round by round") && text.contains("not separated"),
            "{text}"
        );
    }
}
