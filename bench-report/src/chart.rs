//! The three kinds of chart the report draws, on [`crate::svg`]: grouped bars (one bar per
//! series in each group, with a whisker and a flag mark), latency-by-percentile lines on the
//! usual `1/(1-p)` logarithmic axis (as HdrHistogram's plotter draws them, so the tail gets as
//! much room as the median), and curves of a figure against the offered load (log axis).
//!
//! Each series is drawn inside `<g class="series" data-series="NAME">`, so a reader (or a
//! test) can tell the series of a chart apart without knowing how it was drawn.

use crate::svg::{self, Anchor, Svg, GRID, INK};

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 540.0;
const LEFT: f64 = 84.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 96.0;
const BOTTOM: f64 = 84.0;

/// One series: a name for the legend and its colour.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text and the `data-series` value.
    pub name: String,
    /// Fill or stroke colour.
    pub colour: &'static str,
}

/// One bar.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Its height.
    pub value: f64,
    /// The whisker, when there is one (`low..=high`).
    pub whisker: Option<(f64, f64)>,
    /// Marked with `*` (the note of the chart says what it means).
    pub flagged: bool,
    /// Shown on hover.
    pub tooltip: String,
}

/// `bars[series][group]`, `None` where a series has no figure in a group.
pub type Bars = Vec<Vec<Option<Bar>>>;

/// Grouped bars: `bars[series][group]`.
#[derive(Debug, Clone)]
pub struct BarChart {
    /// Heading.
    pub title: String,
    /// What the bars and whiskers are.
    pub subtitle: String,
    /// The y axis, with its unit.
    pub y_label: String,
    /// Group labels; a `\n` starts a second line.
    pub groups: Vec<String>,
    /// The series, in legend order.
    pub series: Vec<Series>,
    /// The bars.
    pub bars: Bars,
    /// What a `*` means, printed under the chart when any bar is flagged.
    pub flag_note: String,
}

/// One line of a percentile chart.
#[derive(Debug, Clone)]
pub struct Line {
    /// Index into the chart's series.
    pub series: usize,
    /// (quantile 0..1, value) pairs, quantiles increasing.
    pub points: Vec<(f64, f64)>,
    /// Dashed (a second line of the same series, e.g. uncorrected latency).
    pub dashed: bool,
}

/// Latency against percentile, one or two lines per series.
#[derive(Debug, Clone)]
pub struct PercentileChart {
    /// Heading.
    pub title: String,
    /// What is plotted.
    pub subtitle: String,
    /// The y axis, with its unit.
    pub y_label: String,
    /// The series, in legend order.
    pub series: Vec<Series>,
    /// The lines.
    pub lines: Vec<Line>,
    /// Legend text for dashed lines, when there are any.
    pub dashed_means: String,
}

/// The percentiles of the x axis: 50% to 99.99%.
pub const PERCENTILE_TICKS: [(f64, &str); 5] = [
    (0.5, "50%"),
    (0.9, "90%"),
    (0.99, "99%"),
    (0.999, "99.9%"),
    (0.9999, "99.99%"),
];

/// Position of quantile `q` on the percentile axis: `log10(1 / (1 - q))`, so that 90%, 99%,
/// 99.9% and 99.99% are evenly spaced.
pub fn percentile_axis(q: f64) -> f64 {
    (1.0 / (1.0 - q.min(0.999_999))).log10()
}

/// The plot area, and the mapping of y values into it.
struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    y_max: f64,
}

impl Frame {
    fn new(y_max: f64) -> Self {
        Self {
            x0: LEFT,
            x1: WIDTH - RIGHT,
            y0: TOP,
            y1: HEIGHT - BOTTOM,
            y_max,
        }
    }

    fn y(&self, value: f64) -> f64 {
        self.y1 - (value / self.y_max).clamp(0.0, 1.0) * (self.y1 - self.y0)
    }
}

/// Title, subtitle, y grid and axis, shared by both charts; returns the frame.
fn canvas(svg: &mut Svg, title: &str, subtitle: &str, y_label: &str, max: f64) -> Frame {
    svg.bold(LEFT, 28.0, title, Anchor::Start, 18.0);
    svg.text(LEFT, 48.0, subtitle, Anchor::Start, 12.0);
    let ticks = svg::ticks(0.0, max, 5);
    let frame = Frame::new(ticks.last().copied().unwrap_or(1.0).max(f64::MIN_POSITIVE));
    svg.group(&[("class", "y-axis")]);
    for t in &ticks {
        let y = frame.y(*t);
        svg.line((frame.x0, y), (frame.x1, y), GRID, 1.0);
        svg.text(
            frame.x0 - 8.0,
            y + 4.0,
            &svg::tick_label(*t),
            Anchor::End,
            12.0,
        );
    }
    svg.line((frame.x0, frame.y0), (frame.x0, frame.y1), INK, 1.0);
    svg.line((frame.x0, frame.y1), (frame.x1, frame.y1), INK, 1.0);
    svg.vertical_text(22.0, (frame.y0 + frame.y1) / 2.0, y_label, 13.0);
    svg.end_group();
    frame
}

/// The legend, in a row under the subtitle: a swatch (or line sample) and a name per series.
fn legend(svg: &mut Svg, series: &[Series], as_lines: bool, extra: Option<&str>) {
    svg.group(&[("class", "legend")]);
    let mut x = LEFT;
    let y = 72.0;
    for s in series {
        if as_lines {
            svg.line((x, y - 4.0), (x + 18.0, y - 4.0), s.colour, 3.0);
        } else {
            svg.rect(x, y - 11.0, 14.0, 14.0, s.colour, None);
        }
        svg.text(x + 22.0, y, &s.name, Anchor::Start, 13.0);
        x += 40.0 + 7.5 * s.name.chars().count() as f64;
    }
    if let Some(text) = extra {
        svg.polyline(&[(x, y - 4.0), (x + 18.0, y - 4.0)], INK, 2.0, Some("6 4"));
        svg.text(x + 22.0, y, text, Anchor::Start, 13.0);
    }
    svg.end_group();
}

/// Draw grouped bars.
pub fn bar_chart(chart: &BarChart) -> String {
    let mut svg = Svg::new(WIDTH, HEIGHT, &chart.title);
    let max = chart
        .bars
        .iter()
        .flatten()
        .flatten()
        .map(|b| b.whisker.map_or(b.value, |(_, high)| high.max(b.value)))
        .fold(0.0, f64::max);
    let frame = canvas(
        &mut svg,
        &chart.title,
        &chart.subtitle,
        &chart.y_label,
        max * 1.04,
    );
    legend(&mut svg, &chart.series, false, None);
    let groups = chart.groups.len().max(1) as f64;
    let group_width = (frame.x1 - frame.x0) / groups;
    let series_count = chart.series.len().max(1) as f64;
    // Wide bars read as blocks, not as figures: at most 90 px, centred in their group.
    let bar_width = (group_width * 0.8 / series_count).min(90.0);
    let bar_x = |group: usize, series: usize| {
        let inset = (group_width - bar_width * series_count) / 2.0;
        frame.x0 + group as f64 * group_width + inset + series as f64 * bar_width
    };
    let mut flagged = false;
    for (si, series) in chart.series.iter().enumerate() {
        svg.group(&[("class", "series"), ("data-series", &series.name)]);
        for (gi, bar) in chart.bars.get(si).into_iter().flatten().enumerate() {
            let Some(bar) = bar else { continue };
            let x = bar_x(gi, si);
            let top = frame.y(bar.value);
            svg.rect(
                x + 1.0,
                top,
                bar_width - 2.0,
                frame.y1 - top,
                series.colour,
                Some(&bar.tooltip),
            );
            let mut mark_at = top;
            if let Some((low, high)) = bar.whisker {
                let centre = x + bar_width / 2.0;
                let cap = (bar_width / 4.0).min(6.0);
                let (yl, yh) = (frame.y(low), frame.y(high));
                svg.line((centre, yl), (centre, yh), INK, 1.5);
                svg.line((centre - cap, yl), (centre + cap, yl), INK, 1.5);
                svg.line((centre - cap, yh), (centre + cap, yh), INK, 1.5);
                mark_at = mark_at.min(yh);
            }
            if bar.flagged {
                flagged = true;
                svg.bold(
                    x + bar_width / 2.0,
                    mark_at - 4.0,
                    "*",
                    Anchor::Middle,
                    16.0,
                );
            }
            // Few bars leave room to print each figure: just above the bar itself (not the
            // whisker, so it is not read as the whisker's value), haloed where a whisker
            // crosses it.
            if bar_width >= 44.0 {
                let label = svg::tick_label(bar.value);
                svg.halo_text(x + bar_width / 2.0, top - 5.0, &label, Anchor::Middle, 11.0);
            }
        }
        svg.end_group();
    }
    svg.group(&[("class", "x-axis")]);
    for (gi, label) in chart.groups.iter().enumerate() {
        let centre = frame.x0 + (gi as f64 + 0.5) * group_width;
        for (li, line) in label.lines().enumerate() {
            svg.text(
                centre,
                frame.y1 + 18.0 + 15.0 * li as f64,
                line,
                Anchor::Middle,
                12.0,
            );
        }
    }
    if flagged {
        svg.text(
            frame.x0,
            HEIGHT - 12.0,
            &chart.flag_note,
            Anchor::Start,
            12.0,
        );
    }
    svg.end_group();
    svg.finish()
}

/// Draw latency against percentile.
pub fn percentile_chart(chart: &PercentileChart) -> String {
    let mut svg = Svg::new(WIDTH, HEIGHT, &chart.title);
    let max = chart
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let frame = canvas(
        &mut svg,
        &chart.title,
        &chart.subtitle,
        &chart.y_label,
        max * 1.04,
    );
    let any_dashed = chart.lines.iter().any(|l| l.dashed);
    legend(
        &mut svg,
        &chart.series,
        true,
        any_dashed.then_some(chart.dashed_means.as_str()),
    );
    let (x_low, x_high) = (
        percentile_axis(PERCENTILE_TICKS[0].0),
        percentile_axis(PERCENTILE_TICKS[PERCENTILE_TICKS.len() - 1].0),
    );
    let x =
        |q: f64| frame.x0 + (percentile_axis(q) - x_low) / (x_high - x_low) * (frame.x1 - frame.x0);
    svg.group(&[("class", "x-axis")]);
    for (q, label) in PERCENTILE_TICKS {
        let at = x(q);
        svg.line((at, frame.y0), (at, frame.y1), GRID, 1.0);
        svg.line((at, frame.y1), (at, frame.y1 + 5.0), INK, 1.0);
        svg.text(at, frame.y1 + 20.0, label, Anchor::Middle, 12.0);
    }
    x_axis_title(&mut svg, &frame, "percentile (log scale of 1/(1-p))");
    svg.end_group();
    for (si, series) in chart.series.iter().enumerate() {
        svg.group(&[("class", "series"), ("data-series", &series.name)]);
        for line in chart.lines.iter().filter(|l| l.series == si) {
            let points: Vec<(f64, f64)> = line
                .points
                .iter()
                .filter(|(q, _)| *q >= PERCENTILE_TICKS[0].0 && *q <= 0.9999 + 1e-12)
                .map(|&(q, v)| (x(q), frame.y(v)))
                .collect();
            let dash = line.dashed.then_some("6 4");
            svg.polyline(&points, series.colour, 2.5, dash);
        }
        svg.end_group();
    }
    svg.finish()
}

/// One server's curve: (x, y) points, x increasing.
#[derive(Debug, Clone)]
pub struct Curve {
    /// Index into the chart's series.
    pub series: usize,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

/// A figure against a logarithmic x axis (the offered load), one line per series.
#[derive(Debug, Clone)]
pub struct CurveChart {
    /// Heading.
    pub title: String,
    /// What is plotted.
    pub subtitle: String,
    /// The x axis, with its unit.
    pub x_label: String,
    /// The y axis, with its unit.
    pub y_label: String,
    /// The series, in legend order.
    pub series: Vec<Series>,
    /// The curves.
    pub curves: Vec<Curve>,
}

/// Draw curves on a log10 x axis, ticked at every x that a point has.
pub fn curve_chart(chart: &CurveChart) -> String {
    let mut svg = Svg::new(WIDTH, HEIGHT, &chart.title);
    let points = || chart.curves.iter().flat_map(|c| c.points.iter());
    let max = points().map(|p| p.1).fold(0.0, f64::max);
    let frame = canvas(
        &mut svg,
        &chart.title,
        &chart.subtitle,
        &chart.y_label,
        max * 1.04,
    );
    legend(&mut svg, &chart.series, true, None);
    let mut xs: Vec<f64> = points().map(|p| p.0).filter(|x| *x > 0.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let (lo, hi) = match (xs.first(), xs.last()) {
        (Some(lo), Some(hi)) if hi > lo => (lo.log10(), hi.log10()),
        (Some(v), _) => (v.log10() - 0.5, v.log10() + 0.5),
        _ => (0.0, 1.0),
    };
    let pad = (hi - lo) * 0.04;
    let x = |v: f64| {
        frame.x0
            + (v.max(f64::MIN_POSITIVE).log10() - lo + pad) / (hi - lo + 2.0 * pad)
                * (frame.x1 - frame.x0)
    };
    svg.group(&[("class", "x-axis")]);
    for &v in &xs {
        let at = x(v);
        svg.line((at, frame.y0), (at, frame.y1), GRID, 1.0);
        svg.text(
            at,
            frame.y1 + 20.0,
            &svg::tick_label(v),
            Anchor::Middle,
            12.0,
        );
    }
    x_axis_title(&mut svg, &frame, &chart.x_label);
    svg.end_group();
    for (si, series) in chart.series.iter().enumerate() {
        svg.group(&[("class", "series"), ("data-series", &series.name)]);
        for curve in chart.curves.iter().filter(|c| c.series == si) {
            let drawn: Vec<(f64, f64)> = curve
                .points
                .iter()
                .map(|&(a, b)| (x(a), frame.y(b)))
                .collect();
            svg.polyline(&drawn, series.colour, 2.5, None);
        }
        svg.end_group();
    }
    svg.finish()
}

/// The x axis's title, centred under its tick labels.
fn x_axis_title(svg: &mut Svg, frame: &Frame, title: &str) {
    svg.text(
        (frame.x0 + frame.x1) / 2.0,
        frame.y1 + 44.0,
        title,
        Anchor::Middle,
        13.0,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_evenly_spaced() {
        let step = percentile_axis(0.99) - percentile_axis(0.9);
        assert!((step - 1.0).abs() < 1e-9);
        assert!((percentile_axis(0.9999) - percentile_axis(0.999) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn bars_are_grouped_by_series() {
        let bar = |v: f64| {
            Some(Bar {
                value: v,
                whisker: Some((v * 0.9, v * 1.1)),
                flagged: v > 2.0,
                tooltip: format!("{v}"),
            })
        };
        let chart = BarChart {
            title: "t".into(),
            subtitle: "s".into(),
            y_label: "y".into(),
            groups: vec!["64B\nws".into(), "1KiB\nws".into()],
            series: vec![
                Series {
                    name: "a".into(),
                    colour: svg::PALETTE[0],
                },
                Series {
                    name: "b".into(),
                    colour: svg::PALETTE[1],
                },
            ],
            bars: vec![vec![bar(1.0), bar(2.0)], vec![bar(3.0), None]],
            flag_note: "* flagged".into(),
        };
        let doc = bar_chart(&chart);
        assert_eq!(doc.matches(r#"data-series="a""#).count(), 1);
        assert_eq!(doc.matches(r#"data-series="b""#).count(), 1);
        assert_eq!(doc.matches("<title>").count(), 1 + 3, "{doc}");
        assert!(doc.contains("* flagged"));
    }
}
