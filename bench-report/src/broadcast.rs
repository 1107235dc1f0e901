//! The "Broadcast" section of summary.md: per fan-out scenario (publishers × subscribers ×
//! scheme), a row per server with deliveries/s, server CPU per delivery (median and the
//! repeats' range), publish-to-delivery latency and the delivery check, then which server
//! delivers cheaper — said only where every server's repeats are apart.
//!
//! Server CPU per delivery is the figure servers are compared by: every cell is run at the
//! same deliveries per second (`scripts/lib/broadcast.sh`), so deliveries/s says whether the
//! server kept up, and the CPU what each delivery cost it. The delivery latency plots are
//! drawn by [`crate::plot`] like the other percentile plots; this section links them.

use std::fmt::Write as _;

use serde_json::Value;
use wsport_bench_record::{format_ns, thousands};

use crate::plot::{Plot, PLOTS_DIR};
use crate::runs::{by_server, median, scenarios, spread, Run, ServerOrder};
use crate::verdict::{order, Order, MIN_REPEATS};

/// The Markdown section, or nothing when no broadcast run is in the directory.
pub fn section(runs: &[Run], server_order: &ServerOrder, plots: &[Plot]) -> String {
    let groups = scenarios(runs, "broadcast");
    if groups.is_empty() {
        return String::new();
    }
    let mut out = String::from("## Broadcast (fan-out)\n\n");
    out.push_str(
        "One publisher's messages sent by the server (`--broadcast`) to every subscriber, at the \
         same deliveries per second in every cell. *CPU µs/delivery*: the server's CPU over the \
         window ÷ the deliveries in it (median, range of the repeats), explained beside it by \
         the server's system calls per delivery and the deliveries each of its waits found \
         (`epoll_wait` or `io_uring_enter`, counted over the warm-up's last second); latency \
         from each \
         message's intended publish time to its arrival at each subscriber; *check*: every \
         subscriber got every message, in order, once (a failed check lists what went wrong: \
         such a run measured a broken fan-out, and its figures are not compared); ⚠ as in the \
         other tables: here, the publishers sent late (send lag p99 over the limit), so part \
         of the latency is the client's.\n\n",
    );
    for (scenario, list) in &groups {
        let _ = writeln!(out, "### {scenario}\n");
        let servers = by_server(list, server_order);
        table(&mut out, &servers);
        out.push_str(&ranking(&servers));
        for p in plots
            .iter()
            .filter(|p| p.scenario.as_deref() == Some(scenario))
        {
            let _ = writeln!(out, "![{}]({PLOTS_DIR}/{})\n", p.title, p.file);
        }
    }
    out
}

/// `results.broadcast` of a run's document.
fn record(run: &Run) -> &Value {
    &run.doc["results"]["broadcast"]
}

/// Whether the run's delivery check passed (runs without a record count as failed).
fn passed(run: &Run) -> bool {
    record(run)["ok"].as_bool().unwrap_or(false)
}

fn table(out: &mut String, servers: &[(&str, Vec<&Run>)]) {
    out.push_str(
        "| server | runs | subscribers | published/s | deliveries/s (range) | server CPU | server CPU µs/delivery (range) | server syscalls/delivery · deliveries/wait | p50 | p99 | p99.9 | send lag p99 | check |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for (server, runs) in servers {
        let figure = |f: fn(&Run) -> f64| median(runs.iter().map(|r| f(r)));
        let b = |key: &'static str| median(runs.iter().filter_map(|r| record(r)[key].as_f64()));
        let cpu = spread(runs.iter().filter_map(|r| r.server_us_per_msg));
        let _ = writeln!(
            out,
            "| {server} | {} | {} | {} | {}{} | {} | {} | {} | {} | {} | {} | {} | {} |",
            runs.len(),
            b("subscribers").map_or("–".into(), |s| thousands(s as u64)),
            b("publish_rate").map_or("–".into(), |r| thousands(r as u64)),
            spread(runs.iter().map(|r| r.msgs_per_sec)).map_or("–".into(), |(m, lo, hi)| format!(
                "{} ({}–{})",
                thousands(m as u64),
                thousands(lo as u64),
                thousands(hi as u64)
            )),
            client_mark(runs),
            median(runs.iter().filter_map(|r| r.server_cpu_percent))
                .map_or("–".into(), |p| format!("{p:.0}%")),
            cpu.map_or("–".into(), |(m, lo, hi)| format!(
                "{m:.3} ({lo:.3}–{hi:.3})"
            )),
            calls(runs),
            ns(figure(|r| r.latency.p50)),
            ns(figure(|r| r.latency.p99)),
            ns(figure(|r| r.latency.p999)),
            ns(median(
                runs.iter().filter_map(|r| r.send_lag.map(|l| l.p99))
            )),
            check(runs),
        );
    }
    out.push('\n');
}

/// ` ⚠` (every run) or ` ⚠ 1/3` (some) where the client limited the run by the rule of the
/// summary's preamble (at a fixed rate: it sent late), as the other tables mark it.
fn client_mark(runs: &[&Run]) -> String {
    match runs.iter().filter(|r| r.client_bound.is_some()).count() {
        0 => String::new(),
        n if n == runs.len() => " ⚠".into(),
        n => format!(" ⚠ {n}/{}", runs.len()),
    }
}

/// What explains the CPU per delivery: the server's system calls per delivery and the
/// deliveries each of its waits found (medians), or why they were not counted.
fn calls(runs: &[&Run]) -> String {
    let counted = || runs.iter().filter_map(|r| r.server_calls.as_ref());
    let per = median(counted().filter_map(|c| c.per_msg()));
    let wait = median(counted().filter_map(|c| c.msgs_per_wait()));
    match (per, wait) {
        (Some(per), Some(wait)) => format!("{per:.2} · {wait:.0}"),
        (Some(per), None) => format!("{per:.2} · –"),
        _ => "–".into(),
    }
}

fn ns(value: Option<f64>) -> String {
    value.map_or("–".into(), |v| format_ns(v as u64))
}

/// `ok`, or what went wrong in the runs that failed the check.
fn check(runs: &[&Run]) -> String {
    let failed: Vec<&&Run> = runs.iter().filter(|r| !passed(r)).collect();
    if failed.is_empty() {
        return "ok".into();
    }
    let sum = |key: &str| -> u64 { failed.iter().filter_map(|r| record(r)[key].as_u64()).sum() };
    let errors: u64 = failed
        .iter()
        .filter_map(|r| r.doc["results"]["errors"].as_object())
        .flat_map(|e| e.values().filter_map(|v| v["count"].as_u64()))
        .sum();
    let mut what = Vec::new();
    for (n, name) in [
        (sum("lost"), "lost"),
        (sum("duplicates"), "duplicated"),
        (sum("reordered"), "reordered"),
        (sum("malformed"), "malformed"),
        (errors, "connections failed"),
    ] {
        if n > 0 {
            what.push(format!("{} {name}", thousands(n)));
        }
    }
    format!(
        "**FAILED {}/{}**: {}",
        failed.len(),
        runs.len(),
        what.join(", ")
    )
}

/// Which server delivers at the least CPU, as a sentence, when the repeats tell them apart:
/// every server of the scenario with at least [`MIN_REPEATS`] runs, all passing the check, and
/// each one's range entirely below the next one's.
fn ranking(servers: &[(&str, Vec<&Run>)]) -> String {
    if servers.len() < 2 {
        return String::new();
    }
    let mut figures = Vec::new();
    for (server, runs) in servers {
        if runs.len() < MIN_REPEATS || !runs.iter().all(|r| passed(r)) {
            return format!(
                "No ranking: it needs at least {MIN_REPEATS} repeats per server, each passing the check.\n\n"
            );
        }
        match spread(runs.iter().filter_map(|r| r.server_us_per_msg)) {
            Some(s) => figures.push((*server, s)),
            None => return "No ranking: server CPU was not measured.\n\n".into(),
        }
    }
    figures.sort_by(|a, b| a.1 .0.total_cmp(&b.1 .0));
    let apart = figures
        .windows(2)
        .all(|w| order(w[0].1, w[1].1) == Order::Less);
    if !apart {
        return "No ranking: the repeats of some servers overlap in server CPU per delivery.\n\n"
            .into();
    }
    let names: Vec<String> = figures
        .iter()
        .map(|(s, (m, _, _))| format!("{s} ({m:.3} µs)"))
        .collect();
    format!(
        "Server CPU per delivery, every repeat apart: {}.\n\n",
        names.join(" < ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A fabricated broadcast run of `label` (its repeat `r`) at `cpu` µs per delivery.
    fn run(label: &str, r: u16, subscribers: u64, cpu: f64, ok: bool) -> Run {
        late(label, r, subscribers, cpu, ok, 20_000)
    }

    /// The same, with the publishers' send lag p99 at `lag_p99` ns.
    fn late(label: &str, r: u16, subscribers: u64, cpu: f64, ok: bool, lag_p99: u64) -> Run {
        let lost = if ok { 0 } else { 7 };
        Run::parse(
            PathBuf::from(format!("{label}-{r}.json")),
            serde_json::json!({
                "schema": "wsport-bench/1",
                "workload": "broadcast",
                "scenario": format!("broadcast-1p-{subscribers}s-100ps-64B-1t-{label}-ws-{}", 9000 + r),
                "flags": {"label": label},
                "setup": {"threads": 1, "connections": subscribers + 1, "sizes": [64],
                    "targets": [{"url": format!("ws://127.0.0.1:{}/", 9000 + r), "connections": subscribers + 1}]},
                "results": {
                    "msgs_per_sec": 99_000.0 + f64::from(r),
                    "latency_ns": {"p50": 1_500_000, "p90": 3_000_000, "p99": 4_000_000, "p99_9": 4_500_000, "max": 5_000_000},
                    "send_lag_ns": {"p50": 1, "p90": 1, "p99": lag_p99, "p99_9": lag_p99, "max": lag_p99},
                    "server": {"cpu_us_per_msg": cpu, "cpu_percent": 60.0,
                        "syscalls": {"per_msg": 1.02, "msgs_per_wait": 57.6}},
                    "client": {"cpu_us_per_msg": 1.0, "cpu_percent": 50.0, "cores": 1},
                    "errors": if ok { serde_json::json!({}) } else { serde_json::json!({"closed_by_server": {"count": 1, "first": "1008"}}) },
                    "broadcast": {"publishers": 1, "subscribers": subscribers, "publish_rate": 100,
                        "published": 300, "expected_deliveries": 300 * subscribers,
                        "delivered": 300 * subscribers - lost, "lost": lost, "duplicates": 0,
                        "reordered": 0, "malformed": 0, "ok": ok}
                }
            }),
        )
        .unwrap()
    }

    fn render(runs: &[Run]) -> String {
        section(runs, &ServerOrder::of(runs, "tokio"), &[])
    }

    #[test]
    fn a_row_per_server_with_medians_ranges_and_the_check() {
        let runs = vec![
            run("tokio", 1, 1000, 1.0, true),
            run("tokio", 2, 1000, 1.2, true),
            run("tokio", 3, 1000, 1.1, true),
            run("uring", 4, 1000, 0.8, true),
            run("uring", 5, 1000, 0.7, false),
        ];
        let s = render(&runs);
        assert!(s.starts_with("## Broadcast (fan-out)\n"), "{s}");
        assert!(
            s.contains("### broadcast-1p-1000s-100ps-64B-1t-ws\n"),
            "{s}"
        );
        assert!(
            s.contains("| tokio | 3 | 1,000 | 100 | 99,002 (99,001–99,003) | 60% | 1.100 (1.000–1.200) | 1.02 · 58 | 1.50ms | 4.00ms | 4.50ms | 20.0µs | ok |"),
            "{s}"
        );
        assert!(
            s.contains("| uring | 2 |")
                && s.contains("**FAILED 1/2**: 7 lost, 1 connections failed |"),
            "{s}"
        );
        assert!(
            s.contains("No ranking"),
            "a failed repeat rules a ranking out: {s}"
        );
    }

    #[test]
    fn a_ranking_only_when_every_repeat_is_apart() {
        let apart = vec![
            run("tokio", 1, 10000, 1.0, true),
            run("tokio", 2, 10000, 1.1, true),
            run("uring", 3, 10000, 0.7, true),
            run("uring", 4, 10000, 0.8, true),
        ];
        let s = render(&apart);
        assert!(
            s.contains("every repeat apart: uring (0.750 µs) < tokio (1.050 µs)."),
            "{s}"
        );
        let overlap = vec![
            run("tokio", 1, 10000, 1.0, true),
            run("tokio", 2, 10000, 1.1, true),
            run("uring", 3, 10000, 0.7, true),
            run("uring", 4, 10000, 1.05, true),
        ];
        assert!(render(&overlap).contains("No ranking: the repeats of some servers overlap"));
        let once = vec![
            run("tokio", 1, 10000, 1.0, true),
            run("uring", 2, 10000, 0.5, true),
        ];
        assert!(render(&once).contains("No ranking: it needs at least 2 repeats"));
    }

    #[test]
    fn scenarios_of_other_subscriber_counts_are_tables_of_their_own() {
        let runs = vec![
            run("tokio", 1, 1000, 1.0, true),
            run("tokio", 2, 10000, 1.0, true),
        ];
        let s = render(&runs);
        assert!(s.contains("### broadcast-1p-1000s-100ps-64B-1t-ws\n"));
        assert!(s.contains("### broadcast-1p-10000s-100ps-64B-1t-ws\n"));
        assert_eq!(render(&[]), "");
    }

    #[test]
    fn runs_whose_publishers_sent_late_are_marked() {
        let runs = vec![
            late("tokio", 1, 1000, 1.0, true, 20_000),
            late("tokio", 2, 1000, 1.0, true, 5_000_000),
        ];
        let s = render(&runs);
        assert!(s.contains("| 99,001 (99,001–99,002) ⚠ 1/2 |"), "{s}");
    }
}
