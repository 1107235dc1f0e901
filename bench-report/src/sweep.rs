//! The load axis. The same open-loop scenario run at several rates (`run-bench.sh --scenarios
//! sweep`) is a curve per server: server CPU per message and corrected p99 against the offered
//! rate. A server's cost per message falls as load rises (more messages per wake-up), and not
//! by the same amount for every runtime, so a ranking measured at one load can turn over at
//! another; this module finds where, per pair of servers, and draws the curves.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::chart::{self, Curve, CurveChart, Series};
use crate::plot::{file_name, Plot, PLOTS_DIR};
use crate::runs::{median, spread, ClientLimit, Run, ServerOrder};
use crate::svg::PALETTE;
use crate::verdict::{order, Order, MIN_REPEATS};

/// Fewest distinct rates that make a curve.
const MIN_RATES: usize = 3;

/// One server at one rate: medians and range of the repeats.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    /// Offered rate, msgs/s.
    pub rate: f64,
    /// Server CPU µs per message: (median, min, max).
    pub cpu: (f64, f64, f64),
    /// How many runs the figures come from.
    pub runs: usize,
    /// Corrected p99 latency, ns (median).
    pub p99_ns: f64,
    /// Some run at this rate had a client that sent late: its server figures describe the
    /// client's bursts, not the offered rate, so no ranking is drawn from this point.
    pub client_late: bool,
}

/// The curves of one scenario family (a rate scenario without its rate).
#[derive(Debug, Clone)]
pub struct Sweep {
    /// e.g. `rate-64B-100c-1t-ws`.
    pub family: String,
    /// Per server, its points by increasing rate.
    pub servers: Vec<(String, Vec<Point>)>,
}

/// `rate-10000ps-64B-100c-1t-ws` → `rate-64B-100c-1t-ws`.
fn family_of(run: &Run) -> String {
    let mut parts: Vec<&str> = run.scenario.split('-').collect();
    if let Some(i) = parts.iter().position(|p| {
        p.strip_suffix("ps")
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    }) {
        parts.remove(i);
    }
    parts.join("-")
}

/// Every family of rate runs with at least [`MIN_RATES`] rates, servers in `order`.
pub fn sweeps(runs: &[Run], order: &ServerOrder) -> Vec<Sweep> {
    type ByRate<'a> = BTreeMap<u64, Vec<&'a Run>>;
    let mut families: BTreeMap<String, BTreeMap<String, ByRate>> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.workload == "rate") {
        let Some(rate) = r.target_rate else { continue };
        families
            .entry(family_of(r))
            .or_default()
            .entry(r.server.clone())
            .or_default()
            .entry(rate as u64)
            .or_default()
            .push(r);
    }
    let mut out = Vec::new();
    for (family, servers) in families {
        let rates = servers
            .values()
            .flat_map(|m| m.keys())
            .collect::<std::collections::BTreeSet<_>>();
        if rates.len() < MIN_RATES {
            continue;
        }
        let mut curves: Vec<(String, Vec<Point>)> = servers
            .into_iter()
            .map(|(server, by_rate)| (server, points(&by_rate)))
            .collect();
        curves.sort_by_key(|(s, _)| order.rank(s));
        out.push(Sweep {
            family,
            servers: curves,
        });
    }
    out
}

fn points(by_rate: &BTreeMap<u64, Vec<&Run>>) -> Vec<Point> {
    by_rate
        .iter()
        .filter_map(|(rate, runs)| {
            Some(Point {
                rate: *rate as f64,
                cpu: spread(runs.iter().filter_map(|r| r.server_us_per_msg))?,
                runs: runs.len(),
                p99_ns: median(runs.iter().map(|r| r.latency.p99))?,
                client_late: runs
                    .iter()
                    .any(|r| r.client_bound == Some(ClientLimit::Late)),
            })
        })
        .collect()
}

/// Where the cheaper of two servers changes along the load axis, in words.
pub fn crossover(a: &str, pa: &[Point], b: &str, pb: &[Point]) -> String {
    let mut segments: Vec<(Order, f64, f64)> = Vec::new();
    for p in pa {
        let Some(q) = pb.iter().find(|q| q.rate == p.rate) else {
            continue;
        };
        if p.client_late || q.client_late || p.runs.min(q.runs) < MIN_REPEATS {
            continue;
        }
        let o = order(p.cpu, q.cpu);
        if o == Order::Overlap {
            continue;
        }
        match segments.last_mut() {
            Some((last, _, to)) if *last == o => *to = p.rate,
            _ => segments.push((o, p.rate, p.rate)),
        }
    }
    let cheaper = |o: Order| if o == Order::Less { a } else { b };
    match segments.as_slice() {
        [] => format!(
            "{a} vs {b}: not separated at any rate (the repeats overlap, a server ran once, or the \
             client sent late)"
        ),
        [(o, from, to)] => format!(
            "{a} vs {b}: {} costs less wherever they are apart ({}–{} msgs/s): no crossover",
            cheaper(*o),
            rate(*from),
            rate(*to)
        ),
        many => {
            let parts: Vec<String> = many
                .iter()
                .map(|(o, from, to)| {
                    format!(
                        "{} cheaper at {}–{} msgs/s",
                        cheaper(*o),
                        rate(*from),
                        rate(*to)
                    )
                })
                .collect();
            format!("{a} vs {b}: **crosses over**: {}", parts.join(", then "))
        }
    }
}

fn rate(r: f64) -> String {
    crate::svg::tick_label(r)
}

/// The summary section: per family, the crossovers of every pair and links to the curves.
pub fn section(runs: &[Run], order: &ServerOrder) -> String {
    let mut out = String::new();
    for sweep in sweeps(runs, order) {
        if out.is_empty() {
            out.push_str(SECTION_HEAD);
        }
        let _ = writeln!(out, "### {}\n", sweep.family);
        let s = &sweep.servers;
        for (i, (a, pa)) in s.iter().enumerate() {
            for (b, pb) in &s[i + 1..] {
                let _ = writeln!(out, "- {}", crossover(a, pa, b, pb));
            }
        }
        for (prefix, what) in [
            ("sweep-cpu", "server CPU per message"),
            ("sweep-p99", "p99"),
        ] {
            let _ = writeln!(
                out,
                "\n[{what} against the offered rate]({PLOTS_DIR}/{})",
                file_name(prefix, &sweep.family)
            );
        }
        out.push('\n');
    }
    out
}

const SECTION_HEAD: &str = "## Load sweep: where does the ranking turn over?\n\n\
The same open-loop scenario at rising rates. Two servers are compared by server CPU per message \
at each rate where their repeats (two or more each) are apart; a crossover is where the cheaper one changes. A rate \
at which the client sent late (⚠ in its rate table) is left out: the server then saw the \
client's bursts, not the offered rate.\n\n";

/// A curve's file prefix, title, y label and figure.
type Figure = (&'static str, &'static str, &'static str, fn(&Point) -> f64);

/// The two curves of each sweep: server CPU per message, and corrected p99.
pub fn plots(runs: &[Run], order: &ServerOrder) -> Vec<Plot> {
    let mut out = Vec::new();
    for sweep in sweeps(runs, order) {
        let series: Vec<Series> = sweep
            .servers
            .iter()
            .map(|(name, _)| Series {
                name: name.clone(),
                colour: PALETTE[order.rank(name) % PALETTE.len()],
            })
            .collect();
        let figures: [Figure; 2] = [
            (
                "sweep-cpu",
                "Server CPU per message",
                "server CPU µs per message",
                |p| p.cpu.0,
            ),
            (
                "sweep-p99",
                "Corrected p99",
                "p99 from the intended send time, µs",
                |p| p.p99_ns / 1e3,
            ),
        ];
        for (prefix, title, y_label, figure) in figures {
            let curves = sweep
                .servers
                .iter()
                .enumerate()
                .map(|(i, (_, points))| Curve {
                    series: i,
                    points: points.iter().map(|p| (p.rate, figure(p))).collect(),
                })
                .collect();
            let title = format!("{title} against the offered rate: {}", sweep.family);
            let svg = chart::curve_chart(&CurveChart {
                title: title.clone(),
                subtitle: "open loop, medians of the repeats".into(),
                x_label: "offered rate, msgs/s (log scale)".into(),
                y_label: y_label.into(),
                series: series.clone(),
                curves,
            });
            out.push(Plot {
                file: file_name(prefix, &sweep.family),
                title,
                scenario: None,
                svg,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(rate: f64, cpu: f64) -> Point {
        Point {
            rate,
            cpu: (cpu, cpu * 0.99, cpu * 1.01),
            runs: 3,
            p99_ns: 1e5,
            client_late: false,
        }
    }

    #[test]
    fn a_rate_run_once_ranks_nothing() {
        let a = [point(5e3, 10.0), point(1e4, 8.0)];
        let mut b = [point(5e3, 12.0), point(1e4, 6.0)];
        b[1].runs = 1;
        assert!(crossover("a", &a, "b", &b).contains("a costs less wherever"));
        b[0].runs = 1;
        assert!(crossover("a", &a, "b", &b).contains("not separated"));
    }

    #[test]
    fn rates_at_which_the_client_sent_late_rank_nothing() {
        let a = [point(5e3, 10.0), point(1e4, 8.0)];
        let mut b = [point(5e3, 12.0), point(1e4, 6.0)];
        assert!(crossover("a", &a, "b", &b).contains("crosses over"));
        b[1].client_late = true;
        assert!(crossover("a", &a, "b", &b).contains("a costs less wherever"));
        b[0].client_late = true;
        assert!(crossover("a", &a, "b", &b).contains("not separated"));
    }

    #[test]
    fn finds_where_the_cheaper_server_changes() {
        let tokio = [
            point(5e3, 20.0),
            point(1e4, 14.0),
            point(2e4, 10.0),
            point(4e4, 8.0),
        ];
        let monoio = [
            point(5e3, 25.0),
            point(1e4, 14.05),
            point(2e4, 9.0),
            point(4e4, 6.5),
        ];
        assert_eq!(
            crossover("tokio", &tokio, "monoio", &monoio),
            "tokio vs monoio: **crosses over**: tokio cheaper at 5000–5000 msgs/s, then monoio cheaper at 20k–40k msgs/s"
        );
        let cheaper = [point(5e3, 10.0), point(1e4, 9.0), point(2e4, 8.0)];
        assert!(crossover("a", &cheaper, "tokio", &tokio).contains("a costs less wherever"));
        assert!(crossover("a", &tokio, "b", &tokio).contains("not separated"));
    }

    fn run(server: &str, rate: u64, cpu: f64) -> Run {
        let doc = serde_json::json!({
            "schema": "wsport-bench/1", "workload": "rate",
            "scenario": format!("rate-{rate}ps-64B-100c-1t-{server}-ws-1"),
            "flags": {"label": server},
            "setup": {"threads": 1, "pacing": {"rate": rate},
                      "targets": [{"url": "ws://127.0.0.1:1/"}]},
            "results": {"msgs_per_sec": rate as f64, "latency_ns": {"p50": 1, "p99": 50_000},
                        "server": {"cpu_us_per_msg": cpu}}
        });
        Run::parse("x.json".into(), doc).unwrap()
    }

    #[test]
    fn the_family_drops_the_rate() {
        assert_eq!(family_of(&run("tokio", 10_000, 1.0)), "rate-64B-100c-1t-ws");
    }

    #[test]
    fn three_rates_make_a_curve_per_server() {
        let mut runs = Vec::new();
        for (rate, a, b) in [
            (5_000, 20.0, 25.0),
            (10_000, 14.0, 14.0),
            (20_000, 10.0, 9.0),
        ] {
            for repeat in [0.0, 0.01] {
                runs.push(run("tokio", rate, a + repeat));
                runs.push(run("monoio", rate, b + repeat));
            }
        }
        let order = ServerOrder::of(&runs, "tokio");
        let text = section(&runs, &order);
        assert!(
            text.contains("tokio vs monoio: **crosses over**: tokio cheaper at 5000–5000 msgs/s, then monoio cheaper at 20k–20k msgs/s"),
            "{text}"
        );
        let drawn = plots(&runs, &order);
        assert_eq!(drawn.len(), 2);
        for p in &drawn {
            let xml = roxmltree::Document::parse(&p.svg).expect("well-formed SVG");
            let series: Vec<&str> = xml
                .descendants()
                .filter_map(|n| n.attribute("data-series"))
                .collect();
            assert_eq!(series, ["tokio", "monoio"], "{}", p.file);
        }
        assert!(
            sweeps(&runs[..8], &order).is_empty(),
            "two rates are no curve"
        );
    }
}
