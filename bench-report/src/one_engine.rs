//! Servers ordered round by round in echo scenarios measured under one client engine, where
//! "Does the ranking depend on the client?" (`verdict`) has nothing to compare: the same
//! paired order ([`crate::rounds`]), for every pair that ran in at least
//! [`crate::rounds::MIN_ROUNDS`] of the same rounds placed alike.

use std::fmt::Write as _;

use crate::runs::Run;
use crate::verdict::{engine_cell, figures, Order};

/// The Markdown section; empty when no such scenario has a pair ordered by rounds.
pub fn section(runs: &[Run]) -> String {
    let mut body = String::new();
    for (scenario, engines) in figures(runs) {
        let [(engine, servers)] = engines.iter().collect::<Vec<_>>()[..] else {
            continue;
        };
        let mut names: Vec<&str> = servers.keys().copied().collect();
        names.sort_unstable();
        let mut rows = String::new();
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                let Some(cell) = engine_cell((a, b), servers).filter(|c| c.paired) else {
                    continue;
                };
                let verdict = match cell.order {
                    Order::Less | Order::Greater => "apart",
                    Order::Overlap => "not apart",
                };
                let _ = writeln!(rows, "| {a} vs {b} | {} | {verdict} |", cell.text);
            }
        }
        if !rows.is_empty() {
            let _ = write!(
                body,
                "### {scenario} ({engine} client)\n\n| pair | server CPU µs/msg, round by round | verdict |\n|---|---|---|\n{rows}\n"
            );
        }
    }
    if body.is_empty() {
        return body;
    }
    format!(
        "## Round by round\n\nEcho scenarios measured under one client engine: two servers that \
         ran in at least 6 of the same rounds are ordered by the ratio of their runs in each \
         round (rounds whose two runs had the cores placed differently left out), shown as \
         (median ratio, 95% interval), with the rounds compared where some were left out; \
         **apart** when the interval excludes 1.\n\n{body}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_engine_pairs_are_ordered_by_rounds() {
        let run = |server: &str, round: u32, cpu: f64| {
            let doc = serde_json::json!({
                "schema": "wsport-bench/1", "workload": "echo",
                "scenario": format!("echo-64B-100c-1t-{server}-ws-1"),
                "flags": {"label": server, "json": format!("d/echo-{server}-r{round}.json")},
                "setup": {"threads": 1, "engine": "io_uring (batched)",
                          "targets": [{"url": "ws://127.0.0.1:1/"}]},
                "results": {"msgs_per_sec": 1.0, "latency_ns": {"p50": 1},
                            "server": {"cpu_us_per_msg": cpu},
                            "client": {"cpu_us_per_msg": 1.0}}
            });
            Run::parse("x.json".into(), doc).unwrap()
        };
        let mut runs = Vec::new();
        for (i, (a, b)) in [
            (4.1, 4.5),
            (4.0, 4.4),
            (6.0, 6.6),
            (4.1, 4.4),
            (4.2, 4.5),
            (6.1, 6.5),
        ]
        .into_iter()
        .enumerate()
        {
            runs.push(run("uring", i as u32 + 1, a));
            runs.push(run("monoio-uring", i as u32 + 1, b));
        }
        let text = section(&runs);
        assert!(
            text.contains("### echo-64B-100c-1t-ws (io_uring client)"),
            "{text}"
        );
        assert!(
            text.contains("| monoio-uring vs uring | monoio-uring 4.50 > uring 4.15 (1.09×, 1.07–1.10) | apart |"),
            "{text}"
        );
        assert_eq!(section(&runs[..10]), "", "five rounds order nothing");
    }
}
