//! Which plots a result directory gets, and from which runs: each is drawn only when the
//! runs it needs exist.
//!
//! | file | from | shows |
//! |---|---|---|
//! | `throughput.svg` | echo | msgs/s per server, grouped by payload, scheme, connections |
//! | `cpu-per-message.svg` | echo | server CPU µs per message, same groups |
//! | `latency-<scenario>.svg` | echo, rate, broadcast | latency by percentile, one line per server (broadcast: publish to each delivery) |
//! | `handshake-<scenario>.svg` | connect | TCP, TLS, upgrade and total, ws beside wss |
//! | `memory-per-connection.svg` | hold | server memory per idle connection |
//!
//! Every bar is the median of a scenario's repeats with their min–max as whisker (except the
//! handshake plot, whose whisker reaches the p99), and a server has the same colour in every
//! plot of a directory.

use hdrhistogram::Histogram;

use crate::chart::{self, Bar, BarChart, Bars, Line, PercentileChart, Series};
use crate::runs::{self, by_server, decode_histogram, scenarios, spread, Run, ServerOrder};
use crate::svg::PALETTE;
use wsport_bench_record::format_size;

/// The folder of a result directory the plots go to.
pub const PLOTS_DIR: &str = "plots";

/// A drawn plot.
#[derive(Debug, Clone)]
pub struct Plot {
    /// File name inside [`PLOTS_DIR`].
    pub file: String,
    /// Its title (the link text in summary.md).
    pub title: String,
    /// The scenario it belongs to, for plots of one scenario.
    pub scenario: Option<String>,
    /// The SVG document.
    pub svg: String,
}

/// What a `*` on a bar means.
const CLIENT_FLAG: &str =
    "* the client was the bottleneck in at least one repeat (rule in summary.md): that bar is the client's limit";

/// The echo, rate, connect and hold plots that `runs` support (the load sweep's are
/// [`crate::sweep::plots`], which [`crate::publish`] adds after these).
pub fn plots(runs: &[Run], order: &ServerOrder) -> Vec<Plot> {
    let mut out = Vec::new();
    let echo = scenarios(runs, "echo");
    out.extend(throughput(&echo, order));
    out.extend(cpu_per_message(&echo, order));
    let scheduled = [scenarios(runs, "rate"), scenarios(runs, "broadcast")].concat();
    for (scenario, list) in echo.iter().chain(scheduled.iter()) {
        out.extend(latency(scenario, list, order));
    }
    let connect = scenarios(runs, "connect");
    let mut families: Vec<&str> = Vec::new();
    for (_, list) in &connect {
        if !families.contains(&list[0].family()) {
            families.push(list[0].family());
        }
    }
    for family in families {
        let list: Vec<&Run> = connect
            .iter()
            .flat_map(|(_, l)| l.iter().copied())
            .filter(|r| r.family() == family)
            .collect();
        out.extend(handshake(family, &list, order));
    }
    out.extend(memory(&scenarios(runs, "hold"), order));
    out
}

/// A file name from a scenario: the characters a URL and a shell take as they are.
pub fn file_name(prefix: &str, scenario: &str) -> String {
    let safe: String = scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}-{safe}.svg")
}

fn series_of(servers: &[(&str, Vec<&Run>)], order: &ServerOrder) -> Vec<Series> {
    servers
        .iter()
        .map(|(name, _)| Series {
            name: (*name).to_owned(),
            colour: PALETTE[order.rank(name) % PALETTE.len()],
        })
        .collect()
}

/// `64B` / `ws 100c d4 2t`: what tells echo scenarios apart, on two lines.
fn echo_group_label(run: &Run) -> String {
    let sizes: Vec<String> = run.sizes.iter().map(|&s| format_size(s as usize)).collect();
    let mut second = format!("{} {}c", run.scheme, run.connections);
    if run.depth > 1 {
        second.push_str(&format!(" d{}", run.depth));
    }
    if run.threads > 1 {
        second.push_str(&format!(" {}t", run.threads));
    }
    format!("{}\n{second}", sizes.join("+"))
}

/// Bars of one figure per (server, scenario), grouped by scenario.
fn per_scenario_bars(
    groups: &[(&str, Vec<&Run>)],
    order: &ServerOrder,
    figure: impl Fn(&Run) -> Option<f64>,
    flag: impl Fn(&Run) -> bool,
    describe: impl Fn(&str, f64, f64, f64, usize) -> String,
) -> Option<(Vec<Series>, Bars)> {
    let all: Vec<&Run> = groups.iter().flat_map(|(_, l)| l.iter().copied()).collect();
    let servers: Vec<(&str, Vec<&Run>)> = by_server(&all, order)
        .into_iter()
        .filter(|(_, l)| l.iter().any(|r| figure(r).is_some()))
        .collect();
    if servers.is_empty() {
        return None;
    }
    let bars = servers
        .iter()
        .map(|(server, _)| {
            groups
                .iter()
                .map(|(scenario, list)| {
                    let mine: Vec<&Run> = list
                        .iter()
                        .copied()
                        .filter(|r| r.server == *server)
                        .collect();
                    let (m, lo, hi) = spread(mine.iter().filter_map(|r| figure(r)))?;
                    Some(Bar {
                        value: m,
                        whisker: (mine.len() > 1).then_some((lo, hi)),
                        flagged: mine.iter().any(|r| flag(r)),
                        tooltip: format!(
                            "{server}, {scenario}: {}",
                            describe(server, m, lo, hi, mine.len())
                        ),
                    })
                })
                .collect()
        })
        .collect();
    Some((series_of(&servers, order), bars))
}

fn throughput(echo: &[(&str, Vec<&Run>)], order: &ServerOrder) -> Option<Plot> {
    let (series, bars) = per_scenario_bars(
        echo,
        order,
        |r| Some(r.msgs_per_sec),
        |r| r.client_bound.is_some(),
        |_, m, lo, hi, n| format!("{m:.0} msgs/s, median of {n} ({lo:.0}–{hi:.0})"),
    )?;
    let title = "Echo throughput by server and payload".to_owned();
    let svg = chart::bar_chart(&BarChart {
        title: title.clone(),
        subtitle:
            "closed loop: messages echoed per second, median of the repeats; whisker: min–max"
                .into(),
        y_label: "messages per second".into(),
        groups: echo.iter().map(|(_, l)| echo_group_label(l[0])).collect(),
        series,
        bars,
        flag_note: CLIENT_FLAG.into(),
    });
    Some(Plot {
        file: "throughput.svg".into(),
        title,
        scenario: None,
        svg,
    })
}

fn cpu_per_message(echo: &[(&str, Vec<&Run>)], order: &ServerOrder) -> Option<Plot> {
    let (series, bars) = per_scenario_bars(
        echo,
        order,
        |r| r.server_us_per_msg,
        |_| false,
        |_, m, lo, hi, n| format!("{m:.2} µs/msg, median of {n} ({lo:.2}–{hi:.2})"),
    )?;
    let title = "Server CPU per echoed message".to_owned();
    let svg = chart::bar_chart(&BarChart {
        title: title.clone(),
        subtitle:
            "server user+system CPU time per message (lower is better), median of the repeats; whisker: min–max"
                .into(),
        y_label: "server CPU µs per message".into(),
        groups: echo.iter().map(|(_, l)| echo_group_label(l[0])).collect(),
        series,
        bars,
        flag_note: String::new(),
    });
    Some(Plot {
        file: "cpu-per-message.svg".into(),
        title,
        scenario: None,
        svg,
    })
}

/// 200_000_000 -> `200ms`, 1_000_000_000 -> `1s`: as the scenario names write intervals.
fn interval(ns: u64) -> String {
    if ns % 1_000_000_000 == 0 {
        format!("{}s", ns / 1_000_000_000)
    } else if ns % 1_000_000 == 0 {
        format!("{}ms", ns / 1_000_000)
    } else {
        format!("{}µs", ns / 1_000)
    }
}

/// Display unit for nanosecond values up to `max_ns`: (divisor, unit).
fn time_unit(max_ns: f64) -> (f64, &'static str) {
    if max_ns >= 2e6 {
        (1e6, "ms")
    } else {
        (1e3, "µs")
    }
}

/// The repeats' histograms merged into one (every sample of every repeat).
fn merged(runs: &[&Run], data: impl Fn(&Run) -> Option<&str>) -> Option<Histogram<u64>> {
    let mut total: Option<Histogram<u64>> = None;
    for h in runs
        .iter()
        .filter_map(|r| data(r))
        .filter_map(decode_histogram)
    {
        match &mut total {
            None => total = Some(h),
            Some(t) => t.add(&h).ok()?,
        }
    }
    total.filter(|h| !h.is_empty())
}

/// Quantiles to sample a histogram at: evenly spaced on the percentile axis, 50% to 99.99%.
fn quantiles() -> Vec<f64> {
    let (low, high) = (chart::percentile_axis(0.5), chart::percentile_axis(0.9999));
    let steps = 160;
    (0..=steps)
        .map(|i| 1.0 - 10f64.powf(-(low + (high - low) * i as f64 / steps as f64)))
        .collect()
}

fn latency(scenario: &str, list: &[&Run], order: &ServerOrder) -> Option<Plot> {
    let servers = by_server(list, order);
    let mut lines = Vec::new();
    let mut series = Vec::new();
    for (server, runs) in &servers {
        let corrected = merged(runs, |r| r.histogram.as_deref());
        let uncorrected = merged(runs, |r| r.histogram_uncorrected.as_deref());
        if corrected.is_none() {
            continue;
        }
        for (h, dashed) in [(corrected, false), (uncorrected, true)] {
            let Some(h) = h else { continue };
            lines.push(Line {
                series: series.len(),
                points: quantiles()
                    .into_iter()
                    .map(|q| (q, h.value_at_quantile(q) as f64))
                    .collect(),
                dashed,
            });
        }
        series.push(Series {
            name: (*server).to_owned(),
            colour: PALETTE[order.rank(server) % PALETTE.len()],
        });
    }
    if lines.is_empty() {
        return None;
    }
    let max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let (divisor, unit) = time_unit(max);
    for line in &mut lines {
        for point in &mut line.points {
            point.1 /= divisor;
        }
    }
    let (subtitle, what) = match list[0].workload.as_str() {
        "rate" => ("open loop: from each message's intended send time (coordinated-omission corrected); repeats merged", "Latency"),
        "broadcast" => ("from each message's intended publish time to its arrival at each subscriber; repeats merged", "Delivery latency"),
        _ => ("closed loop: round trip of every echo in the window; the repeats' histograms merged", "Latency"),
    };
    let title = format!("{what} by percentile: {scenario}");
    let svg = chart::percentile_chart(&PercentileChart {
        title: title.clone(),
        subtitle: subtitle.into(),
        y_label: format!("latency ({unit})"),
        series,
        lines,
        dashed_means: "as sent (uncorrected)".into(),
    });
    Some(Plot {
        file: file_name("latency", scenario),
        title,
        scenario: Some(scenario.to_owned()),
        svg,
    })
}

/// The phases of a handshake, and how to read each from a run.
type Phase = (&'static str, fn(&Run) -> Option<runs::Percentiles>);

const PHASES: [Phase; 4] = [
    ("TCP", |r| r.phases.map(|p| p.tcp)),
    ("TLS", |r| r.phases.and_then(|p| p.tls)),
    ("upgrade", |r| r.phases.map(|p| p.upgrade)),
    ("total", |r| Some(r.latency)),
];

fn handshake(family: &str, list: &[&Run], order: &ServerOrder) -> Option<Plot> {
    let mut schemes: Vec<&str> = list.iter().map(|r| r.scheme.as_str()).collect();
    schemes.sort_unstable();
    schemes.dedup();
    // Groups: each phase of each scheme (TLS only where there is TLS).
    let mut groups: Vec<(String, &str, &Phase)> = Vec::new();
    for scheme in &schemes {
        for phase in &PHASES {
            let present = list
                .iter()
                .any(|r| r.scheme == *scheme && (phase.1)(r).is_some_and(|p| p.p50 > 0.0));
            if present {
                groups.push((format!("{scheme}\n{}", phase.0), scheme, phase));
            }
        }
    }
    let servers = by_server(list, order);
    let mut max: f64 = 0.0;
    // Figures in ns first; scaled to the display unit once the largest is known.
    let mut bars: Bars = Vec::new();
    for (server, runs) in &servers {
        let row = groups
            .iter()
            .map(|(label, scheme, phase)| {
                let mine: Vec<&Run> = runs
                    .iter()
                    .copied()
                    .filter(|r| r.scheme == *scheme)
                    .collect();
                let p50 = runs::median(mine.iter().filter_map(|r| (phase.1)(r)).map(|p| p.p50))?;
                let p99 = runs::median(mine.iter().filter_map(|r| (phase.1)(r)).map(|p| p.p99))?;
                max = max.max(p99);
                let what = label.replace('\n', " ");
                Some(Bar {
                    value: p50,
                    whisker: Some((p50, p99)),
                    flagged: mine.iter().any(|r| r.client_bound.is_some()),
                    tooltip: format!(
                        "{server}, {what}: p50 {}, p99 {} (medians of {} runs)",
                        wsport_bench_record::format_ns(p50 as u64),
                        wsport_bench_record::format_ns(p99 as u64),
                        mine.len()
                    ),
                })
            })
            .collect();
        bars.push(row);
    }
    if groups.is_empty() || max <= 0.0 {
        return None;
    }
    let (divisor, unit) = time_unit(max);
    for bar in bars.iter_mut().flatten().flatten() {
        bar.value /= divisor;
        bar.whisker = bar
            .whisker
            .map(|(low, high)| (low / divisor, high / divisor));
    }
    let title = format!("Handshake latency, ws vs wss: {family}");
    let svg = chart::bar_chart(&BarChart {
        title: title.clone(),
        subtitle: "connection storm: bar p50, whisker up to p99 (medians of the repeats); total = TCP + TLS + upgrade"
            .into(),
        y_label: format!("time to open a connection ({unit})"),
        groups: groups.iter().map(|g| g.0.clone()).collect(),
        series: series_of(&servers, order),
        bars,
        flag_note: CLIENT_FLAG.into(),
    });
    Some(Plot {
        file: file_name("handshake", family),
        title,
        scenario: Some(family.to_owned()),
        svg,
    })
}

fn memory(hold: &[(&str, Vec<&Run>)], order: &ServerOrder) -> Option<Plot> {
    let (series, bars) = per_scenario_bars(
        hold,
        order,
        |r| r.memory_per_connection.map(|b| b / 1024.0),
        |_| false,
        |_, m, lo, hi, n| format!("{m:.1} KiB per connection, median of {n} ({lo:.1}–{hi:.1})"),
    )?;
    let title = "Server memory per idle connection".to_owned();
    let label = |r: &Run| {
        let ping = r
            .ping_interval_ns
            .map(|ns| format!("ping every {}", interval(ns)))
            .unwrap_or_default();
        format!("{} {}c\n{ping}", r.scheme, r.connections)
    };
    let svg = chart::bar_chart(&BarChart {
        title: title.clone(),
        subtitle: "(server RSS with the connections open − before connecting) / connections; median, whisker: min–max"
            .into(),
        y_label: "server memory per connection (KiB)".into(),
        groups: hold.iter().map(|(_, l)| label(l[0])).collect(),
        series,
        bars,
        flag_note: String::new(),
    });
    Some(Plot {
        file: "memory-per-connection.svg".into(),
        title,
        scenario: None,
        svg,
    })
}
