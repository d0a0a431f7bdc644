//! The report's charts, drawn by plotters' SVG backend: its text is SVG
//! `<text>` (the browser lays it out), so no font file is read and the
//! page needs none. Each chart is drawn twice on the same coordinates: the
//! frame (axes, grid, labels) and the marks (the data), so the marks can
//! be grouped (`<g class="marks">`) and each given a `<title>` (the hover
//! text plotters cannot write); both come from plotters.

use maud::{html, Markup, PreEscaped};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Chart width in SVG units (the page scales it to the screen).
const WIDTH: u32 = 960;
const FONT: (&str, u32) = ("sans-serif", 13);

/// The colours of the report: one name per meaning, shared by the charts
/// and the legends beside them.
// Latency, Median and Band paint the bench's traffic page only.
#[cfg_attr(not(feature = "bench"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paint {
    Migrate,
    Checks,
    Snapshot,
    Rollback,
    Compare,
    Reapply,
    Seed,
    /// The probes of a state (docs/probes.md).
    Probes,
    Failed,
    /// A lock that blocks writers.
    Writers,
    /// A lock that blocks readers (and writers).
    Readers,
    /// A lock that blocks nobody.
    Nobody,
    Latency,
    Median,
    Limit,
    /// A stage of a traffic run, shaded in turn.
    Band(usize),
}

impl Paint {
    fn rgb(self) -> (u8, u8, u8) {
        match self {
            Paint::Migrate => (37, 99, 235),
            Paint::Checks => (124, 58, 237),
            Paint::Snapshot => (148, 163, 184),
            Paint::Rollback => (234, 88, 12),
            Paint::Compare => (13, 148, 136),
            Paint::Reapply => (22, 163, 74),
            Paint::Seed => (202, 138, 4),
            Paint::Probes => (219, 39, 119),
            Paint::Failed => (220, 38, 38),
            Paint::Writers => (234, 88, 12),
            Paint::Readers => (185, 28, 28),
            Paint::Nobody => (148, 163, 184),
            Paint::Latency => (220, 38, 38),
            Paint::Median => (37, 99, 235),
            Paint::Limit => (17, 24, 39),
            Paint::Band(i) if i % 2 == 0 => (226, 232, 240),
            Paint::Band(_) => (241, 245, 249),
        }
    }

    /// `#2563eb`, for legends.
    pub fn hex(self) -> String {
        let (r, g, b) = self.rgb();
        format!("#{r:02x}{g:02x}{b:02x}")
    }

    fn color(self) -> RGBColor {
        let (r, g, b) = self.rgb();
        RGBColor(r, g, b)
    }
}

/// A swatch and its meaning, under a chart.
pub fn legend(items: &[(Paint, &str)]) -> Markup {
    html! {
        ul.legend {
            @for (p, what) in items {
                li { span.swatch style=(format!("background:{}", p.hex())) {} (what) }
            }
        }
    }
}

/// One horizontal bar: on row `row`, from `from` to `to` on the x axis.
#[derive(Debug, Clone)]
pub struct Bar {
    pub row: usize,
    pub from: f64,
    pub to: f64,
    pub paint: Paint,
    /// Shown on hover.
    pub tip: String,
}

/// Rows of horizontal bars on one x axis: a timeline (bars from start to
/// end) or a bar chart (bars from 0), with an optional limit line.
pub struct Bars<'a> {
    /// What the chart shows, for screen readers.
    pub label: &'a str,
    pub rows: Vec<String>,
    pub bars: Vec<Bar>,
    pub x_desc: &'a str,
    /// A vertical line at this x, with its hover text.
    pub limit: Option<(f64, String)>,
}

/// A value plotters can place: NaN and infinities become 0.
fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// The horizontal bar chart `b` as inline SVG.
pub fn bars(b: &Bars) -> Markup {
    let n = b.rows.len().max(1);
    let xmax = b.bars.iter().map(|x| finite(x.to)).chain(b.limit.as_ref().map(|l| finite(l.0) * 1.1)).fold(0.0f64, f64::max);
    let xmax = if xmax > 0.0 { xmax * 1.02 } else { 1.0 };
    let row_px = if n > 60 { 13 } else { 18 };
    let height = n as u32 * row_px + 64;
    let label_px = (b.rows.iter().map(|r| r.chars().count()).max().unwrap_or(4) as u32 * 7 + 12).clamp(60, 320);
    let min_len = xmax / 900.0;
    let ylabel = |v: &f64| row_label(&b.rows, *v);
    let frame = draw(height, |root| {
        let mut chart = area(root, label_px).build_cartesian_2d(0f64..xmax, (n as f64 - 0.5)..-0.5f64)?;
        chart.configure_mesh().disable_y_mesh().y_labels(n).y_label_formatter(&ylabel).x_desc(b.x_desc).label_style(FONT).axis_desc_style(FONT).draw()?;
        Ok(())
    });
    let mut tips = Vec::new();
    let marks = draw(height, |root| {
        let mut chart = area(root, label_px).build_cartesian_2d(0f64..xmax, (n as f64 - 0.5)..-0.5f64)?;
        let half = 0.36;
        chart.draw_series(b.bars.iter().map(|x| {
            let (from, to) = (finite(x.from), finite(x.to).max(finite(x.from) + min_len));
            Rectangle::new([(from, x.row as f64 - half), (to, x.row as f64 + half)], x.paint.color().filled())
        }))?;
        tips.extend(b.bars.iter().map(|x| Some(x.tip.clone())));
        if let Some((at, tip)) = &b.limit {
            chart.draw_series(std::iter::once(PathElement::new(vec![(*at, -0.5), (*at, n as f64 - 0.5)], Paint::Limit.color().stroke_width(2))))?;
            tips.push(Some(tip.clone()));
        }
        Ok(())
    });
    merge(frame, marks, &tips, b.label)
}

/// The label of the row at `v` (the labels sit on whole numbers).
fn row_label(rows: &[String], v: f64) -> String {
    let i = v.round();
    if (v - i).abs() > 1e-6 || i < 0.0 {
        return String::new();
    }
    rows.get(i as usize).cloned().unwrap_or_default()
}

/// One line of a series chart (the bench's traffic page draws them).
#[cfg(feature = "bench")]
pub struct Line {
    pub paint: Paint,
    /// Shown on hover.
    pub tip: String,
    /// (x, y), in order of x.
    pub points: Vec<(f64, f64)>,
}

/// A time series chart: lines over bands (stages) on a logarithmic y axis.
#[cfg(feature = "bench")]
pub struct Lines<'a> {
    pub label: &'a str,
    pub lines: Vec<Line>,
    /// Shaded spans of the x axis, numbered from 1 on the chart: (from, to, hover text).
    pub bands: Vec<(f64, f64, String)>,
    /// A horizontal line at this y, with its hover text.
    pub target: Option<(f64, String)>,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
}

/// The series chart `l` as inline SVG.
#[cfg(feature = "bench")]
pub fn lines(l: &Lines) -> Markup {
    let points = l.lines.iter().flat_map(|x| x.points.iter());
    let xmax = points.clone().map(|p| finite(p.0)).chain(l.bands.iter().map(|b| finite(b.1))).fold(0.0f64, f64::max).max(1e-3);
    let ymax = points.map(|p| finite(p.1)).chain(l.target.as_ref().map(|t| finite(t.0))).fold(0.0f64, f64::max).max(1.0) * 1.5;
    let ymin = 0.1;
    let height = 340;
    let frame = draw(height, |root| {
        let mut chart = area(root, 64).build_cartesian_2d(0f64..xmax, (ymin..ymax).log_scale())?;
        chart.configure_mesh().x_desc(l.x_desc).y_desc(l.y_desc).label_style(FONT).axis_desc_style(FONT).draw()?;
        Ok(())
    });
    let mut tips = Vec::new();
    let marks = draw(height, |root| {
        let mut chart = area(root, 64).build_cartesian_2d(0f64..xmax, (ymin..ymax).log_scale())?;
        for (i, (from, to, tip)) in l.bands.iter().enumerate() {
            let (from, to) = (finite(*from), finite(*to).max(finite(*from) + xmax / 900.0));
            chart.draw_series(std::iter::once(Rectangle::new([(from, ymin), (to, ymax)], Paint::Band(i).color().filled())))?;
            tips.push(Some(tip.clone()));
            let ink = Paint::Limit.color();
            let style = TextStyle::from(FONT).color(&ink);
            chart.draw_series(std::iter::once(Text::new(format!("{}", i + 1), (from, ymax / 1.15), style)))?;
        }
        if let Some((y, tip)) = &l.target {
            chart.draw_series(std::iter::once(PathElement::new(vec![(0.0, *y), (xmax, *y)], Paint::Limit.color().stroke_width(1))))?;
            tips.push(Some(tip.clone()));
        }
        for line in &l.lines {
            let pts: Vec<(f64, f64)> = line.points.iter().map(|p| (finite(p.0), finite(p.1).max(ymin))).collect();
            chart.draw_series(std::iter::once(PathElement::new(pts, line.paint.color().stroke_width(2))))?;
            tips.push(Some(line.tip.clone()));
        }
        Ok(())
    });
    merge(frame, marks, &tips, l.label)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Drawn = Result<(), Box<dyn std::error::Error + 'static>>;

/// The chart's layout: the same for the frame and the marks.
fn area<'a, 'b>(root: &'a Area<'b>, y_label_px: u32) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut b = ChartBuilder::on(root);
    b.margin(10).x_label_area_size(44).y_label_area_size(y_label_px);
    b
}

/// An SVG of `height` drawn by `f`; the error text when drawing failed.
fn draw(height: u32, f: impl FnOnce(&Area) -> Drawn) -> Result<String, String> {
    let mut svg = String::new();
    let res = {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        f(&root).and_then(|()| root.present().map_err(|e| e.to_string().into()))
    };
    res.map(|()| svg).map_err(|e| e.to_string())
}

/// The frame with the marks inside `<g class="marks">`, each shape given
/// its hover text (`tips`, in drawing order; text elements take none).
fn merge(frame: Result<String, String>, marks: Result<String, String>, tips: &[Option<String>], label: &str) -> Markup {
    let (frame, marks) = match (frame, marks) {
        (Ok(f), Ok(m)) => (f, m),
        (Err(e), _) | (_, Err(e)) => return html! { p.note { "chart not drawn: " (e) } },
    };
    let (open, frame_inner) = split_svg(&frame);
    let (_, marks_inner) = split_svg(&marks);
    let mut out = String::with_capacity(frame.len() + marks.len() + 64 * tips.len());
    out.push_str(open);
    out.push_str(" class=\"chart\" role=\"img\" aria-label=\"");
    out.push_str(&html! { (label) }.into_string());
    out.push_str("\">");
    out.push_str(frame_inner);
    out.push_str("<g class=\"marks\">\n");
    let mut tips = tips.iter();
    for line in marks_inner.lines() {
        let shape = ["<rect ", "<polyline ", "<path ", "<circle ", "<line ", "<polygon "].iter().find(|t| line.starts_with(**t));
        match (shape, line.strip_suffix("/>")) {
            (Some(tag), Some(body)) => {
                let name = &tag[1..tag.len() - 1];
                match tips.next().cloned().flatten() {
                    Some(t) => out.push_str(&format!("{body} class=\"mark\"><title>{}</title></{name}>\n", html! { (t) }.into_string())),
                    None => out.push_str(&format!("{body} class=\"mark\"/>\n")),
                }
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.push_str("</g></svg>");
    PreEscaped(out)
}

/// `<svg ...` without its `>`, and what is between the tags.
fn split_svg(svg: &str) -> (&str, &str) {
    let open_end = svg.find('>').unwrap_or(0);
    let close = svg.rfind("</svg>").unwrap_or(svg.len());
    (&svg[..open_end], &svg[(open_end + 1).min(close)..close])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bar_is_a_mark_with_its_escaped_hover_text() {
        let b = Bars {
            label: "locks <b>",
            rows: vec!["<script>alert(1)</script>".into(), "V2 file.sql:3".into()],
            bars: vec![
                Bar { row: 0, from: 0.0, to: 12.0, paint: Paint::Writers, tip: "held <12 ms>".into() },
                Bar { row: 1, from: 0.0, to: f64::NAN, paint: Paint::Nobody, tip: "nothing".into() },
            ],
            x_desc: "ms",
            limit: Some((10.0, "limit 10 ms".into())),
        };
        let svg = bars(&b).into_string();
        assert_eq!(svg.matches("class=\"mark\"").count(), 3, "{svg}");
        assert!(svg.contains("<title>held &lt;12 ms&gt;</title></rect>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !svg.contains("<script>"), "{svg}");
        assert!(svg.starts_with("<svg ") && svg.contains("aria-label=\"locks &lt;b&gt;\""), "{svg}");
    }

    #[cfg(feature = "bench")]
    #[test]
    fn a_series_chart_numbers_its_bands_and_keeps_text_out_of_the_marks_count() {
        let l = Lines {
            label: "latency",
            lines: vec![Line { paint: Paint::Latency, tip: "max".into(), points: vec![(0.0, 1.0), (1.0, 150.0), (2.0, 0.0)] }],
            bands: vec![(0.2, 0.8, "migrate phase 1".into()), (1.0, 1.5, "rollback phase 1".into())],
            target: Some((100.0, "target".into())),
            x_desc: "s",
            y_desc: "ms",
        };
        let svg = lines(&l).into_string();
        assert_eq!(svg.matches("class=\"mark\"").count(), 4, "{svg}");
        assert!(svg.contains("<title>rollback phase 1</title>"), "{svg}");
    }
}
