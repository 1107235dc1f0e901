//! The summary's "Deployment paths" section (issue 12): the same cells over the paths a
//! deployment really uses, side by side, from the `path` record `scripts/run-bench.sh
//! --topology` puts in each run (`{"topology": "proxy", "proxy_pid": ..., ...}`).
//!
//! - Direct vs through nginx: ws and wss served by the Rust server, and wss terminated by
//!   nginx in front of a ws server. The cost that compares them is the CPU of the whole
//!   server side per message (nginx + server, both from /proc/PID/stat over the window), and
//!   the latency nginx adds over direct wss; the section says where TLS is cheaper on this
//!   host.
//! - Loopback vs veth vs shaped veth: where the CPU goes (client/server split) and how many
//!   system calls each side makes per message.
//! - Heartbeat: idle connections held through nginx's `proxy_read_timeout`, without and with
//!   pings: how many the proxy cut and when, from `results.endings`.
//!
//! Runs without a `path` record (every run before `--topology`) leave the section out.

use std::fmt::Write;

use serde_json::Value;

use crate::runs::{median, Run};

/// The section, or "" when no run carries a path.
pub fn section(runs: &[Run]) -> String {
    let pathed: Vec<&Run> = runs.iter().filter(|r| r.doc["path"].is_object()).collect();
    if pathed.is_empty() {
        return String::new();
    }
    let mut out = String::from("## Deployment paths\n\n");
    proxy_tables(&mut out, &pathed);
    link_tables(&mut out, &pathed);
    heartbeat_table(&mut out, &pathed);
    out
}

/// `loopback`, `proxy`, `veth`, `tbf-100mbit`, ...
fn topology(r: &Run) -> &str {
    r.doc["path"]["topology"].as_str().unwrap_or("loopback")
}

/// The server under the path: the label without the path's suffix (`tokio-nginx` -> `tokio`).
fn base_server(r: &Run) -> String {
    let s = r.server.as_str();
    let cut = match topology(r) {
        "loopback" => None,
        "proxy" => s.rfind("-nginx"),
        _ => s.find("-veth"),
    };
    cut.map_or(s, |i| &s[..i]).to_owned()
}

/// The scenario without its scheme: `echo-64B-100c-1t` (+ `-client-epoll`).
fn family(r: &Run) -> String {
    let scheme = format!("-{}", r.scheme);
    r.scenario
        .strip_suffix(&scheme)
        .unwrap_or(&r.scenario)
        .to_owned()
}

/// Distinct values in first-seen order.
fn distinct<T: PartialEq + Clone>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// The median of a figure over runs.
fn med(runs: &[&Run], figure: impl Fn(&Run) -> Option<f64>) -> Option<f64> {
    median(runs.iter().filter_map(|r| figure(r)))
}

/// CPU per message of `results.<side>` (`server`, `proxy`): from the schedstat sum over its
/// threads (ns resolution) where recorded, else from /proc/PID/stat (10 ms ticks, coarse
/// against a short window at a few percent CPU).
fn cpu_us(r: &Run, side: &str) -> Option<f64> {
    let rec = &r.doc["results"][side];
    rec["sched_cpu_us_per_msg"]
        .as_f64()
        .or_else(|| rec["cpu_us_per_msg"].as_f64())
}

fn server_us(r: &Run) -> Option<f64> {
    cpu_us(r, "server")
}

/// The proxy's (nginx worker's) CPU per message.
fn proxy_us(r: &Run) -> Option<f64> {
    cpu_us(r, "proxy")
}

/// Server + proxy CPU per message: the whole server side of the path.
fn path_us(r: &Run) -> Option<f64> {
    Some(server_us(r)? + proxy_us(r).unwrap_or(0.0))
}

fn us(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.2}"))
}

fn ms(ns: Option<f64>) -> String {
    match ns {
        None => "–".into(),
        Some(ns) if ns >= 1e6 => format!("{:.2} ms", ns / 1e6),
        Some(ns) => format!("{:.0} µs", ns / 1e3),
    }
}

fn calls(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.2}"))
}

/// One row's figures: msgs/s, server, proxy, path and client CPU per message, latency,
/// system calls per message of server and client.
fn figures_row(runs: &[&Run]) -> String {
    // ⚠ as in the other tables: the client limited (or, scheduled, sent late in) that many of
    // the row's runs, so its msgs/s and latency are partly the client's.
    let limited = runs.iter().filter(|r| r.client_bound.is_some()).count();
    let mark = if limited > 0 {
        format!(" ⚠{limited}")
    } else {
        String::new()
    };
    format!(
        "{:.0}{mark} | {} | {} | {} | {} | {} | {} | {} | {}",
        med(runs, |r| Some(r.msgs_per_sec)).unwrap_or(0.0),
        us(med(runs, server_us)),
        us(med(runs, proxy_us)),
        us(med(runs, path_us)),
        us(med(runs, |r| r.client_us_per_msg)),
        ms(med(runs, |r| Some(r.latency.p50))),
        ms(med(runs, |r| Some(r.latency.p99))),
        calls(med(runs, |r| r.server_calls.as_ref()?.per_msg())),
        calls(med(runs, |r| r.client_calls.as_ref()?.per_msg())),
    )
}

/// The figure columns; ⚠N after msgs/s: the client was the limit in N of the row's runs.
const FIGURES_HEAD: &str = "msgs/s | server µs/msg | nginx µs/msg | path µs/msg | client µs/msg | p50 | p99 | server calls/msg | client calls/msg";

/// Direct ws, direct wss and wss via nginx, per scenario family and server.
fn proxy_tables(out: &mut String, runs: &[&Run]) {
    if !runs
        .iter()
        .any(|r| topology(r) == "proxy" && r.workload != "hold")
    {
        return;
    }
    out.push_str(
        "### Direct vs through nginx\n\nws and wss served by the Rust server, and wss \
         terminated by nginx in front of the same server serving ws. *path µs/msg* = server + \
         nginx worker CPU per message: the whole server side (they share a core; see README). \
         CPU from each process's schedstat (ns), as the regression gate reads it. Medians of \
         the repeats.\n\n",
    );
    let candidates: Vec<&Run> = runs
        .iter()
        .copied()
        .filter(|r| matches!(topology(r), "loopback" | "proxy") && r.workload != "hold")
        .collect();
    for fam in distinct(candidates.iter().map(|r| family(r))) {
        let in_fam: Vec<&Run> = candidates
            .iter()
            .copied()
            .filter(|r| family(r) == fam)
            .collect();
        if !in_fam.iter().any(|r| topology(r) == "proxy") {
            continue;
        }
        let _ = writeln!(out, "#### {fam}\n");
        let _ = writeln!(out, "| server | path | {FIGURES_HEAD} |");
        let _ = writeln!(out, "|---|---|{}", "---:|".repeat(9));
        let mut verdicts = String::new();
        for server in distinct(in_fam.iter().map(|r| base_server(r))) {
            let pick = |topo: &str, scheme: &str| -> Vec<&Run> {
                in_fam
                    .iter()
                    .copied()
                    .filter(|r| {
                        base_server(r) == server && topology(r) == topo && r.scheme == scheme
                    })
                    .collect()
            };
            let rows = [
                ("ws direct", pick("loopback", "ws")),
                ("wss direct", pick("loopback", "wss")),
                ("wss via nginx", pick("proxy", "wss")),
            ];
            for (path, list) in &rows {
                if !list.is_empty() {
                    let _ = writeln!(out, "| {server} | {path} | {} |", figures_row(list));
                }
            }
            verdicts.push_str(&tls_verdict(&server, &rows[0].1, &rows[1].1, &rows[2].1));
        }
        let _ = writeln!(out, "\n{verdicts}");
    }
}

/// Where TLS is cheaper for one server: its cost in the Rust server (wss − ws) against its
/// cost through nginx (nginx + server − ws), and the latency nginx adds over direct wss.
fn tls_verdict(server: &str, ws: &[&Run], wss: &[&Run], proxied: &[&Run]) -> String {
    let (Some(plain), Some(direct), Some(via)) =
        (med(ws, path_us), med(wss, path_us), med(proxied, path_us))
    else {
        return String::new();
    };
    let (in_server, in_nginx) = (direct - plain, via - plain);
    let cheaper = if via < direct {
        format!(
            "**nginx** is cheaper here ({:.2}× the server-side CPU of direct wss)",
            via / direct
        )
    } else {
        format!(
            "**the Rust server** is cheaper here (nginx's path costs {:.2}× direct wss)",
            via / direct
        )
    };
    let lat = |f: fn(&Run) -> f64| {
        let a = median(wss.iter().map(|r| f(r)));
        let b = median(proxied.iter().map(|r| f(r)));
        a.zip(b).map(|(a, b)| b - a)
    };
    format!(
        "- {server}: TLS + framing over ws costs {in_server:+.2} µs/msg in the Rust server and \
         {in_nginx:+.2} µs/msg through nginx (nginx + server − ws): {cheaper}; nginx adds \
         {} at p50 and {} at p99 over direct wss.\n",
        signed_ms(lat(|r| r.latency.p50)),
        signed_ms(lat(|r| r.latency.p99)),
    )
}

fn signed_ms(ns: Option<f64>) -> String {
    match ns {
        Some(ns) if ns < 0.0 => format!("−{}", ms(Some(-ns))),
        Some(ns) => format!("+{}", ms(Some(ns))),
        None => "–".into(),
    }
}

/// Loopback vs veth vs shaped veth, per scenario and server.
fn link_tables(out: &mut String, runs: &[&Run]) {
    let linked = |r: &&Run| topology(r) != "proxy" && r.workload != "hold";
    if !runs.iter().any(|r| linked(r) && topology(r) != "loopback") {
        return;
    }
    out.push_str(
        "### Loopback vs veth vs shaped veth\n\nThe server in its own network namespace \
         behind a veth pair, the link shaped with tbf where named. *client share* = client CPU \
         ÷ (client + server) per message: on loopback the sender's `send` runs the receiver's \
         TCP input inline, so each side pays for both directions; across veth the receive work \
         is done in softirq, on whichever CPU raised it, and a qdisc (tbf) adds queueing and \
         its own timer wake-ups. System calls per message show whether a path changed how many \
         messages each wake-up finds.\n\n",
    );
    let candidates: Vec<&Run> = runs.iter().copied().filter(linked).collect();
    for scenario in distinct(candidates.iter().map(|r| r.scenario.clone())) {
        let in_sc: Vec<&Run> = candidates
            .iter()
            .copied()
            .filter(|r| r.scenario == scenario)
            .collect();
        if !in_sc.iter().any(|r| topology(r) != "loopback") {
            continue;
        }
        let _ = writeln!(out, "#### {scenario}\n");
        let _ = writeln!(out, "| server | path | {FIGURES_HEAD} | client share |");
        let _ = writeln!(out, "|---|---|{}", "---:|".repeat(10));
        for server in distinct(in_sc.iter().map(|r| base_server(r))) {
            for topo in distinct(in_sc.iter().map(|r| topology(r).to_owned())) {
                let list: Vec<&Run> = in_sc
                    .iter()
                    .copied()
                    .filter(|r| base_server(r) == server && topology(r) == topo)
                    .collect();
                if list.is_empty() {
                    continue;
                }
                let share = med(&list, |r| {
                    let (c, s) = (r.client_us_per_msg?, server_us(r)?);
                    (c + s > 0.0).then(|| 100.0 * c / (c + s))
                });
                let _ = writeln!(
                    out,
                    "| {server} | {topo} | {} | {} |",
                    figures_row(&list),
                    share.map_or("–".into(), |s| format!("{s:.0}%"))
                );
            }
        }
        out.push('\n');
    }
}

/// One ending of a run's `results.endings.by`.
fn ending<'a>(r: &'a Run, key: &str) -> Option<&'a Value> {
    r.doc["results"]["endings"]["by"]
        .as_array()?
        .iter()
        .find(|e| e["ending"] == key)
}

/// Connections a proxy cut: closed under them without a close frame (`eof`) or reset.
fn cut(r: &Run) -> (u64, Vec<u64>) {
    let mut n = 0;
    let mut after = Vec::new();
    for key in ["eof", "reset"] {
        if let Some(e) = ending(r, key) {
            n += e["count"].as_u64().unwrap_or(0);
            after.extend(e["after_open_ms"]["p50"].as_u64());
        }
    }
    (n, after)
}

/// The heartbeat cell: held through nginx, without and with pings.
fn heartbeat_table(out: &mut String, runs: &[&Run]) {
    let held: Vec<&Run> = runs
        .iter()
        .copied()
        .filter(|r| r.workload == "hold" && topology(r) == "proxy")
        .collect();
    if held.is_empty() {
        return;
    }
    let timeout = held[0].doc["path"]["proxy_read_timeout"]
        .as_str()
        .unwrap_or("?");
    let _ = writeln!(
        out,
        "### Heartbeat through nginx (proxy_read_timeout {timeout})\n\nIdle connections held \
         through nginx longer than its `proxy_read_timeout`. *cut by the proxy*: connections \
         that ended with TCP closed under them (no WebSocket close frame) or reset, and when \
         (median time from the upgrade, per run); *closed by the client*: lasted until the \
         client's own close handshake at the end. Counted per connection by wsport-bench \
         (`results.endings`), summed over the repeats.\n"
    );
    out.push_str("| server | pings | connections | cut by the proxy | cut after | closed by the client | other |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|\n");
    for server in distinct(held.iter().map(|r| base_server(r))) {
        for ping in distinct(held.iter().map(|r| pings(r))) {
            let list: Vec<&Run> = held
                .iter()
                .copied()
                .filter(|r| base_server(r) == server && pings(r) == ping)
                .collect();
            if !list.is_empty() {
                out.push_str(&heartbeat_row(&server, &ping, &list));
            }
        }
    }
    out.push('\n');
}

/// `off`, or the ping interval (`5s`).
fn pings(r: &Run) -> String {
    match &r.doc["flags"]["ping_interval"] {
        Value::String(s) => s.clone(),
        v => v.as_f64().map_or("?".into(), |s| format!("{s}s")),
    }
}

fn heartbeat_row(server: &str, ping: &str, list: &[&Run]) -> String {
    let total: u64 = list
        .iter()
        .map(|r| r.doc["results"]["endings"]["total"].as_u64().unwrap_or(0))
        .sum();
    let (mut n_cut, mut after) = (0, Vec::new());
    for r in list {
        let (n, a) = cut(r);
        n_cut += n;
        after.extend(a);
    }
    let clean: u64 = list
        .iter()
        .filter_map(|r| ending(r, "client_close")?["count"].as_u64())
        .sum();
    let pct = |n: u64| {
        if total > 0 {
            format!("{n} ({:.0}%)", 100.0 * n as f64 / total as f64)
        } else {
            "–".into()
        }
    };
    let at = median(after.iter().map(|&ms| ms as f64))
        .map_or("–".into(), |ms| format!("{:.1} s", ms / 1e3));
    format!(
        "| {server} | {ping} | {total} | {} | {at} | {} | {} |\n",
        pct(n_cut),
        pct(clean),
        total.saturating_sub(n_cut + clean)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;

    fn run(label: &str, scheme: &str, path: Value, results: Value) -> Run {
        let port = if scheme == "ws" { 8080 } else { 8443 };
        let doc = json!({
            "schema": "wsport-bench/1", "workload": "echo",
            "scenario": format!("echo-64B-100c-1t-{label}-{scheme}-{port}"),
            "flags": {"label": label}, "setup": {"sizes": [64], "connections": 100,
                "targets": [{"url": format!("{scheme}://127.0.0.1:{port}/")}]},
            "results": results, "path": path,
        });
        Run::parse(PathBuf::from("x"), doc).expect("parses")
    }

    fn results(server_us: f64, proxy_us: Option<f64>, p50: u64) -> Value {
        let mut r = json!({"msgs_per_sec": 1000.0, "latency_ns": {"p50": p50, "p99": p50 * 2},
            "server": {"cpu_us_per_msg": server_us}, "client": {"cpu_us_per_msg": 5.0}});
        if let Some(p) = proxy_us {
            r["proxy"] = json!({"cpu_us_per_msg": p});
        }
        r
    }

    #[test]
    fn the_verdict_adds_nginx_to_the_server_and_compares_with_direct_wss() {
        let lo = json!({"topology": "loopback"});
        let runs = [
            run("tokio", "ws", lo.clone(), results(10.0, None, 100_000)),
            run("tokio", "wss", lo, results(14.0, None, 120_000)),
            run(
                "tokio-nginx",
                "wss",
                json!({"topology": "proxy"}),
                results(9.0, Some(12.0), 300_000),
            ),
        ];
        let s = section(&runs);
        assert!(
            s.contains("| tokio | wss via nginx | 1000 | 9.00 | 12.00 | 21.00 |"),
            "{s}"
        );
        assert!(
            s.contains("+4.00 µs/msg in the Rust server and +11.00 µs/msg through nginx"),
            "{s}"
        );
        assert!(
            s.contains("**the Rust server** is cheaper here (nginx's path costs 1.50× direct wss)"),
            "{s}"
        );
        assert!(s.contains("nginx adds +180 µs at p50"), "{s}");
    }

    #[test]
    fn runs_without_a_path_leave_the_section_out() {
        let mut r = run("tokio", "ws", Value::Null, results(10.0, None, 1));
        r.doc.as_object_mut().unwrap().remove("path");
        assert_eq!(section(&[r]), "");
    }

    #[test]
    fn heartbeat_counts_cuts_and_clean_closes() {
        let endings = |key: &str, n: u64, ms: u64| json!({"total": n, "by": [{"ending": key, "count": n, "after_open_ms": {"min": ms, "p50": ms, "max": ms}}]});
        let hold = |ping: Value, e: Value| {
            let doc = json!({
                "schema": "wsport-bench/1", "workload": "hold",
                "scenario": "hold-100c-pingoff-1t-tokio-nginx-wss-443",
                "flags": {"label": "tokio-nginx", "ping_interval": ping},
                "setup": {"connections": 100, "targets": [{"url": "wss://127.0.0.1:443/"}]},
                "results": {"msgs_per_sec": 0.0, "latency_ns": {"p50": 0}, "endings": e},
                "path": {"topology": "proxy", "proxy_read_timeout": "10s"},
            });
            Run::parse(PathBuf::from("x"), doc).expect("parses")
        };
        let runs = [
            hold(json!("off"), endings("eof", 100, 10_003)),
            hold(json!(5.0), endings("client_close", 100, 15_000)),
        ];
        let s = section(&runs);
        assert!(
            s.contains("| tokio | off | 100 | 100 (100%) | 10.0 s | 0 (0%) | 0 |"),
            "{s}"
        );
        assert!(
            s.contains("| tokio | 5s | 100 | 0 (0%) | – | 100 (100%) | 0 |"),
            "{s}"
        );
    }
}
