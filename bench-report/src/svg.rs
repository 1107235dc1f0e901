//! A small SVG writer: just the elements the report's charts draw (rectangles, lines,
//! polylines, text, groups, tooltips), every text and attribute value escaped, so that the
//! output is well-formed XML whatever a server is called. The documents are self-contained:
//! no external style sheet, font or script, so they render the same on GitHub, in a browser
//! and in `rsvg-convert`.

use std::fmt::Write as _;

/// Colours for series, in order: the Okabe–Ito palette (distinguishable with the common colour
/// vision deficiencies, and in greyscale by lightness), without its yellow, which is unreadable
/// on white.
pub const PALETTE: [&str; 7] = [
    "#0072B2", // blue
    "#E69F00", // orange
    "#009E73", // bluish green
    "#CC79A7", // reddish purple
    "#D55E00", // vermillion
    "#56B4E9", // sky blue
    "#000000", // black
];

/// Text colour, and the grey of the grid.
pub const INK: &str = "#222222";
/// Grid lines.
pub const GRID: &str = "#dddddd";

/// How text is anchored at its x.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// x is the text's start.
    Start,
    /// x is its middle.
    Middle,
    /// x is its end.
    End,
}

impl Anchor {
    fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Middle => "middle",
            Self::End => "end",
        }
    }
}

/// An SVG document being drawn. Coordinates are user units, y downwards.
#[derive(Debug)]
pub struct Svg {
    width: f64,
    height: f64,
    body: String,
    depth: usize,
}

impl Svg {
    /// An empty white canvas of `width` x `height` with a `title` (shown as the tooltip of
    /// the whole image and read by screen readers).
    pub fn new(width: f64, height: f64, title: &str) -> Self {
        let mut svg = Self {
            width,
            height,
            body: String::new(),
            depth: 0,
        };
        let _ = writeln!(svg.body, "<title>{}</title>", escape(title));
        svg.rect(0.0, 0.0, width, height, "#ffffff", None);
        svg
    }

    /// A filled rectangle; `tooltip` becomes its `<title>`.
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, tooltip: Option<&str>) {
        let _ = write!(
            self.body,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}""#,
            w.max(0.0),
            h.max(0.0),
            escape(fill)
        );
        match tooltip {
            Some(t) => {
                let _ = writeln!(self.body, "><title>{}</title></rect>", escape(t));
            }
            None => self.body.push_str("/>\n"),
        }
    }

    /// A straight line.
    pub fn line(&mut self, from: (f64, f64), to: (f64, f64), stroke: &str, width: f64) {
        let _ = writeln!(
            self.body,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="{width}"/>"#,
            from.0,
            from.1,
            to.0,
            to.1,
            escape(stroke)
        );
    }

    /// A line through `points`; `dash` is a `stroke-dasharray` (`"6 4"`), `None` for solid.
    pub fn polyline(
        &mut self,
        points: &[(f64, f64)],
        stroke: &str,
        width: f64,
        dash: Option<&str>,
    ) {
        let mut coords = String::new();
        for (x, y) in points {
            let _ = write!(coords, "{x:.1},{y:.1} ");
        }
        let dash = dash
            .map(|d| format!(r#" stroke-dasharray="{}""#, escape(d)))
            .unwrap_or_default();
        let _ = writeln!(
            self.body,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="{width}" stroke-linejoin="round"{dash}/>"#,
            coords.trim_end(),
            escape(stroke)
        );
    }

    /// Text at (x, y) (y is the baseline), `size` px, sans-serif.
    pub fn text(&mut self, x: f64, y: f64, text: &str, anchor: Anchor, size: f64) {
        self.text_styled(x, y, text, anchor, size, "");
    }

    /// Bold text.
    pub fn bold(&mut self, x: f64, y: f64, text: &str, anchor: Anchor, size: f64) {
        self.text_styled(x, y, text, anchor, size, r#" font-weight="bold""#);
    }

    /// Text with a white outline, readable across lines it overlaps.
    pub fn halo_text(&mut self, x: f64, y: f64, text: &str, anchor: Anchor, size: f64) {
        let halo = r##" stroke="#ffffff" stroke-width="3" paint-order="stroke""##;
        self.text_styled(x, y, text, anchor, size, halo);
    }

    /// Text turned 90° anticlockwise around (x, y), for a vertical axis title.
    pub fn vertical_text(&mut self, x: f64, y: f64, text: &str, size: f64) {
        let rotate = format!(r#" transform="rotate(-90 {x:.1} {y:.1})""#);
        self.text_styled(x, y, text, Anchor::Middle, size, &rotate);
    }

    fn text_styled(&mut self, x: f64, y: f64, text: &str, anchor: Anchor, size: f64, extra: &str) {
        let _ = writeln!(
            self.body,
            r#"<text x="{x:.1}" y="{y:.1}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="{size}" fill="{INK}" text-anchor="{}"{extra}>{}</text>"#,
            anchor.as_str(),
            escape(text)
        );
    }

    /// Open a group with the given attributes (`name`, `value`; values are escaped); close it
    /// with [`Svg::end_group`].
    pub fn group(&mut self, attributes: &[(&str, &str)]) {
        self.body.push_str("<g");
        for (name, value) in attributes {
            let _ = write!(self.body, r#" {name}="{}""#, escape(value));
        }
        self.body.push_str(">\n");
        self.depth += 1;
    }

    /// Close the innermost group.
    pub fn end_group(&mut self) {
        if self.depth > 0 {
            self.body.push_str("</g>\n");
            self.depth -= 1;
        }
    }

    /// The document.
    pub fn finish(mut self) -> String {
        while self.depth > 0 {
            self.end_group();
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\n{}</svg>\n",
            self.body,
            w = self.width,
            h = self.height
        )
    }
}

/// `text` with the five XML special characters escaped, for text and attribute values alike.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// About `count` round tick values (1, 2 or 5 times a power of ten apart) covering
/// `0..=max` (or `min..=max` when `min` is below 0), the last one at or above `max`.
pub fn ticks(min: f64, max: f64, count: usize) -> Vec<f64> {
    let low = min.min(0.0);
    let high = if max > low { max } else { low + 1.0 };
    let raw = (high - low) / count.max(1) as f64;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power);
    let first = (low / step).floor();
    let last = (high / step).ceil();
    (first as i64..=last as i64)
        .map(|i| i as f64 * step)
        .collect()
}

/// A tick label: `0`, `0.5`, `12`, `150k`, `1.2M`.
pub fn tick_label(value: f64) -> String {
    let abs = value.abs();
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    if abs >= 1e6 {
        format!("{}M", trim(format!("{:.2}", value / 1e6)))
    } else if abs >= 1e4 {
        format!("{}k", trim(format!("{:.1}", value / 1e3)))
    } else if abs >= 100.0 || abs == 0.0 {
        format!("{value:.0}")
    } else {
        trim(format!("{value:.2}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 9.3, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(
            ticks(0.0, 140_000.0, 5),
            vec![0.0, 50_000.0, 100_000.0, 150_000.0]
        );
        assert_eq!(ticks(0.0, 7.7, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0]);
        // An empty range still gets an axis.
        assert_eq!(ticks(0.0, 0.0, 5).len(), 6);
    }

    #[test]
    fn labels_are_short() {
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(0.5), "0.5");
        assert_eq!(tick_label(7.25), "7.25");
        assert_eq!(tick_label(150_000.0), "150k");
        assert_eq!(tick_label(1_200_000.0), "1.2M");
    }

    #[test]
    fn everything_is_escaped() {
        let mut svg = Svg::new(10.0, 10.0, "a<b & \"c\"");
        svg.group(&[("data-series", "x\"><script>")]);
        svg.text(1.0, 1.0, "</svg>", Anchor::Start, 10.0);
        let doc = svg.finish();
        assert!(!doc.contains("<script>"), "{doc}");
        assert!(doc.contains("&lt;/svg&gt;"), "{doc}");
        assert!(doc.contains("</g>\n</svg>"), "{doc}");
    }
}
