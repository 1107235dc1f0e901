//! The "Scale" section of `summary.md`: memory per connection as a fitted slope over the hold
//! runs' connection counts (user space and kernel apart, then summed), its extrapolation to
//! 100,000 connections, and the `hold --max` runs with the limit that set their count.
//!
//! One point (RSS at N connections / N) mixes the per-connection cost with whatever the
//! allocator grabbed in chunks on the way; the least-squares slope of the total against N
//! over 1k, 5k, 10k and the maximum is the cost of one more connection, and its intercept
//! shows the chunking. The kernel figure is the server's end of each connection
//! ([`crate::kernel_mem`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::chart::{self, Curve, CurveChart, Series};
use crate::plot::{file_name, Plot};
use crate::runs::{Run, ServerOrder};
use crate::svg::PALETTE;

/// The count the section extrapolates to.
pub const EXTRAPOLATE_TO: f64 = 100_000.0;

/// A least-squares line `y = intercept + slope × x`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Bytes per connection.
    pub slope: f64,
    /// Bytes at no connection.
    pub intercept: f64,
}

impl Fit {
    /// The line's value at `x`.
    pub fn at(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }
}

/// Fit `points` (x, y) by least squares; `None` with fewer than two distinct x.
pub fn fit(points: &[(f64, f64)]) -> Option<Fit> {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if points.len() < 2 || sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let slope = sxy / sxx;
    Some(Fit {
        slope,
        intercept: mean_y - slope * mean_x,
    })
}

/// One hold run's memory: connections, user bytes and kernel bytes (the server's end).
struct Point {
    connections: f64,
    user: Option<f64>,
    kernel: Option<f64>,
}

fn point(run: &Run) -> Point {
    let n = run.connections as f64;
    let kernel = &run.doc["results"]["kernel_memory"]["server_bytes_per_connection"];
    Point {
        connections: n,
        user: run.memory_per_connection.map(|m| m * n),
        kernel: kernel.as_f64().map(|k| k * n),
    }
}

/// A plotted figure: file prefix, title, y axis, and the value of a run.
type Figure = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Run) -> Option<f64>,
);

/// Per scheme and total rate: server CPU per message and p99 against the connection count, a
/// curve per server (medians are not needed: the scale cells run once per count).
pub fn plots(runs: &[Run], order: &ServerOrder) -> Vec<Plot> {
    let mut families: BTreeMap<(String, u64), Vec<&Run>> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.workload == "rate") {
        if let Some(rate) = r.target_rate {
            families
                .entry((r.scheme.clone(), rate as u64))
                .or_default()
                .push(r);
        }
    }
    let figures: [Figure; 2] = [
        (
            "scale-cpu",
            "Server CPU per message",
            "server CPU µs per message",
            |r| r.server_us_per_msg,
        ),
        (
            "scale-p99",
            "Corrected p99",
            "p99 from the intended send time, µs",
            |r| Some(r.latency.p99 / 1e3),
        ),
    ];
    let mut out = Vec::new();
    for ((scheme, rate), list) in families {
        let mut servers: Vec<&str> = list.iter().map(|r| r.server.as_str()).collect();
        servers.sort_by_key(|s| order.rank(s));
        servers.dedup();
        let counts = list
            .iter()
            .map(|r| r.connections)
            .collect::<std::collections::BTreeSet<_>>();
        if counts.len() < 2 {
            continue;
        }
        let series: Vec<Series> = servers
            .iter()
            .map(|s| Series {
                name: (*s).to_owned(),
                colour: PALETTE[order.rank(s) % PALETTE.len()],
            })
            .collect();
        for (prefix, title, y_label, figure) in figures {
            let curves = servers
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let mut points: Vec<(f64, f64)> = list
                        .iter()
                        .filter(|r| r.server == *s)
                        .filter_map(|r| figure(r).map(|y| (r.connections as f64, y)))
                        .collect();
                    points.sort_by(|a, b| a.0.total_cmp(&b.0));
                    Curve { series: i, points }
                })
                .collect();
            let family = format!("rate-{rate}ps-{scheme}");
            let title =
                format!("{title} against the connections: {rate} msgs/s in total, {scheme}");
            let svg = chart::curve_chart(&CurveChart {
                title: title.clone(),
                subtitle: "open loop, one total rate spread over more connections".into(),
                x_label: "connections (log scale)".into(),
                y_label: y_label.into(),
                series: series.clone(),
                curves,
            });
            out.push(Plot {
                file: file_name(prefix, &family),
                title,
                scenario: None,
                svg,
            });
        }
    }
    out
}

/// The section, or nothing when the runs hold fewer than two connection counts per server.
pub fn section(runs: &[Run]) -> String {
    let mut groups: BTreeMap<(String, String), Vec<&Run>> = BTreeMap::new();
    for run in runs.iter().filter(|r| r.workload == "hold") {
        groups
            .entry((run.server.clone(), run.scheme.clone()))
            .or_default()
            .push(run);
    }
    let mut out = String::new();
    fitted_table(&mut out, &groups);
    max_table(&mut out, runs);
    cost_table(&mut out, runs);
    out
}

/// `rate` runs at one total rate over several connection counts: server CPU per message and
/// p99 per count, a row per server, scheme and rate.
fn cost_table(out: &mut String, runs: &[Run]) {
    // (server, scheme, rate) -> connections -> (server µs per message, p99 ns, client-bound)
    type Key = (String, String, u64);
    type Cell = (Option<f64>, f64, bool);
    let mut rows: BTreeMap<Key, BTreeMap<u64, Cell>> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.workload == "rate") {
        let Some(rate) = r.target_rate else { continue };
        let key = (r.server.clone(), r.scheme.clone(), rate as u64);
        let flagged = r.client_bound.is_some();
        rows.entry(key)
            .or_default()
            .insert(r.connections, (r.server_us_per_msg, r.latency.p99, flagged));
    }
    rows.retain(|_, counts| counts.len() >= 2);
    if rows.is_empty() {
        return;
    }
    out.push_str(
        "## Scale: cost per message as connections grow (one total rate)

",
    );
    out.push_str(
        "| server | scheme | msgs/s | connections: server CPU µs per message, p99 |
|---|---|---:|---|
",
    );
    for ((server, scheme, rate), counts) in rows {
        let cells: Vec<String> = counts
            .iter()
            .map(|(c, (cpu, p99, flagged))| {
                format!(
                    "{c}: {}, {:.2} ms{}",
                    cpu.map_or("–".into(), |v| format!("{v:.2}")),
                    p99 / 1e6,
                    if *flagged { " ⚠" } else { "" }
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "| {server} | {scheme} | {rate} | {} |",
            cells.join(" · ")
        );
    }
    out.push_str(
        "\nThe same total rate spread over more connections: each connection sends less often, \
         so each wake-up of the server finds fewer messages and the cost per message shows \
         what the runtime pays per connection. ⚠: the client limited that run (see above).\n\n",
    );
}

fn fitted_table(out: &mut String, groups: &BTreeMap<(String, String), Vec<&Run>>) {
    let mut rows = String::new();
    for ((server, scheme), list) in groups {
        let points: Vec<Point> = list.iter().map(|r| point(r)).collect();
        let line = |f: fn(&Point) -> Option<f64>| {
            let xy: Vec<(f64, f64)> = points
                .iter()
                .filter_map(|p| f(p).map(|y| (p.connections, y)))
                .collect();
            fit(&xy)
        };
        let (Some(user), kernel) = (line(|p| p.user), line(|p| p.kernel)) else {
            continue;
        };
        let mut counts: Vec<u64> = list.iter().map(|r| r.connections).collect();
        counts.sort_unstable();
        counts.dedup();
        let total = user.slope + kernel.map_or(0.0, |k| k.slope);
        let at = user.at(EXTRAPOLATE_TO) + kernel.map_or(0.0, |k| k.at(EXTRAPOLATE_TO));
        let _ = writeln!(
            rows,
            "| {server} | {scheme} | {} | {} ({}) | {} | {} | {:.0} MiB |",
            counts
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            kib(user.slope),
            signed_mib(user.intercept),
            kernel.map_or("–".into(), |k| kib(k.slope)),
            kib(total),
            at / (1 << 20) as f64,
        );
    }
    if rows.is_empty() {
        return;
    }
    out.push_str("## Scale: memory per connection, fitted over the connection counts\n\n");
    out.push_str(
        "| server | scheme | connections | user space per connection (intercept) | kernel per connection | total | at 100,000 (extrapolated) |\n|---|---|---|---:|---:|---:|---:|\n",
    );
    out.push_str(&rows);
    out.push_str(
        "\nEach figure is the least-squares slope of the bytes held against the connection \
         count over the hold runs: user space from the server's RSS (with the connections \
         open − before connecting), kernel the server's end of each connection (half the \
         pair's sockstat TCP memory and socket slab objects: `tcp_sock`, socket inode, file, \
         epoll item; both ends are on this host). The last column is the fitted line at \
         100,000 connections, user and kernel summed: an extrapolation, not a measurement.\n\n",
    );
}

fn max_table(out: &mut String, runs: &[Run]) {
    let max_runs: Vec<&Run> = runs
        .iter()
        .filter(|r| r.workload == "hold" && !r.doc["setup"]["max"].is_null())
        .collect();
    if max_runs.is_empty() {
        return;
    }
    out.push_str("## Scale: the host's most connections (`hold --max`)\n\n");
    out.push_str("| server | scheme | connections | set by | errors | pongs/s | user per connection | kernel per connection |\n|---|---|---:|---|---:|---:|---:|---:|\n");
    for r in max_runs {
        let max = &r.doc["setup"]["max"];
        let errors: u64 = r.doc["results"]["errors"]
            .as_object()
            .map_or(0, |m| m.values().filter_map(|e| e["count"].as_u64()).sum());
        let kernel = r.doc["results"]["kernel_memory"]["server_bytes_per_connection"].as_f64();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {errors} | {:.0} | {} | {} |",
            r.server,
            r.scheme,
            r.connections,
            max["set_by"].as_str().unwrap_or("?"),
            r.msgs_per_sec,
            r.memory_per_connection.map_or("–".into(), kib),
            kernel.map_or("–".into(), kib),
        );
    }
    out.push('\n');
}

fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}

fn signed_mib(bytes: f64) -> String {
    format!("{:+.1} MiB", bytes / (1 << 20) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_a_line_exactly_and_least_squares_otherwise() {
        let f = fit(&[(1000.0, 3e6), (5000.0, 11e6), (10_000.0, 21e6)]).unwrap();
        assert!((f.slope - 2000.0).abs() < 1e-6, "{f:?}");
        assert!((f.intercept - 1e6).abs() < 1e-3, "{f:?}");
        assert!((f.at(100_000.0) - 201e6).abs() < 1e-2);

        // Noise around slope 1: the fit lies between the points' own slopes.
        let f = fit(&[(0.0, 0.0), (1.0, 1.5), (2.0, 1.5), (3.0, 3.0)]).unwrap();
        assert!((f.slope - 0.9).abs() < 1e-9, "{f:?}");
        assert!((f.intercept - 0.15).abs() < 1e-9, "{f:?}");

        assert!(fit(&[(5.0, 1.0)]).is_none());
        assert!(
            fit(&[(5.0, 1.0), (5.0, 2.0)]).is_none(),
            "one count is no slope"
        );
        assert!(fit(&[]).is_none());
    }
}
