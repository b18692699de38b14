//! Line charts as standalone SVG (no plotting dependency): accuracy in percent against a numeric
//! x axis, for the report's accuracy-by-rounding plot and the training curves.
use std::fmt::Write;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text (none: no legend entry).
    pub name: Option<String>,
    /// Stroke colour.
    pub color: &'static str,
    /// Points `(x, percent)`, in order.
    pub points: Vec<(f64, f64)>,
    /// Print each point's value above it.
    pub values: bool,
}

/// A chart with a 0–100% y axis.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// Caption of the x axis.
    pub x_label: String,
    /// Tick positions and their labels, which also set the x range (first to last).
    pub x_ticks: Vec<(f64, String)>,
    /// Lines to draw.
    pub series: Vec<Series>,
    /// Dashed horizontal references `(percent, label)`.
    pub h_marks: Vec<(f64, String)>,
    /// Dotted vertical markers `(x, label)`, e.g. where a training phase starts.
    pub v_marks: Vec<(f64, String)>,
}

impl Chart {
    /// The chart as an SVG document.
    pub fn svg(&self) -> String {
        let (w, h, m) = (640.0, 400.0, 60.0);
        let lo = self.x_ticks.iter().map(|t| t.0).fold(f64::INFINITY, f64::min);
        let hi = self.x_ticks.iter().map(|t| t.0).fold(f64::NEG_INFINITY, f64::max);
        let span = if hi > lo { hi - lo } else { 1.0 };
        let x = |v: f64| m + (v - lo) / span * (w - 2.0 * m);
        let y = |v: f64| h - m - v / 100.0 * (h - 2.0 * m);
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"13\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">{}</text>\n",
            w / 2.0,
            escape(&self.title)
        );
        for t in (0..=100).step_by(20) {
            let yy = y(t as f64);
            let _ = writeln!(
                s,
                "<line x1=\"{m}\" x2=\"{}\" y1=\"{yy}\" y2=\"{yy}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{t}%</text>",
                w - m,
                m - 8.0,
                yy + 4.0
            );
        }
        for (v, label) in &self.x_ticks {
            let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>", x(*v), h - m + 20.0, escape(label));
        }
        let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>", w / 2.0, h - 15.0, escape(&self.x_label));
        for (v, label) in &self.h_marks {
            let yy = y(*v);
            let _ = writeln!(
                s,
                "<line x1=\"{m}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#888\" stroke-dasharray=\"6 4\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"start\" fill=\"#555\">{}</text>",
                w - m,
                m + 6.0,
                yy - 6.0,
                escape(label)
            );
        }
        for (v, label) in &self.v_marks {
            let xx = x(*v);
            // The label sits above the plot, where no line can run through it.
            let _ = writeln!(
                s,
                "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{}\" y2=\"{}\" stroke=\"#888\" stroke-dasharray=\"2 3\"/><text x=\"{:.1}\" y=\"{}\" fill=\"#555\">{}</text>",
                m - 14.0,
                h - m,
                xx + 4.0,
                m - 4.0,
                escape(label)
            );
        }
        for (k, series) in self.series.iter().enumerate() {
            let path: Vec<String> = series.points.iter().map(|&(a, b)| format!("{:.1},{:.1}", x(a), y(b))).collect();
            let _ = writeln!(s, "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2.5\"/>", path.join(" "), series.color);
            for &(a, b) in &series.points {
                let _ = write!(s, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{}\"/>", x(a), y(b), series.color);
                if series.values {
                    let _ = write!(s, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{b:.1}</text>", x(a), y(b) - 10.0);
                }
                s.push('\n');
            }
            if let Some(name) = &series.name {
                let ly = h - m - 12.0 - 18.0 * k as f64;
                let _ = writeln!(
                    s,
                    "<line x1=\"{}\" x2=\"{}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{}\" stroke-width=\"2.5\"/><text x=\"{}\" y=\"{}\">{}</text>",
                    w - m - 150.0,
                    w - m - 126.0,
                    series.color,
                    w - m - 120.0,
                    ly + 4.0,
                    escape(name)
                );
            }
        }
        s.push_str("</svg>\n");
        s
    }
}

/// Text made safe for SVG.
fn escape(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_place_points_and_escape_text() {
        let chart = Chart {
            title: "a < b".into(),
            x_label: "epoch".into(),
            x_ticks: vec![(1.0, "1".into()), (3.0, "3".into())],
            series: vec![Series { name: Some("test".into()), color: "#123456", points: vec![(1.0, 0.0), (3.0, 100.0)], values: true }],
            h_marks: vec![(50.0, "half".into())],
            v_marks: vec![(2.0, "QAT".into())],
        };
        let svg = chart.svg();
        // x from 1 to 3 spans the plot (60..580), y from 0% (340) to 100% (60).
        assert!(svg.contains("<polyline points=\"60.0,340.0 580.0,60.0\""), "{svg}");
        assert!(svg.contains("a &lt; b") && svg.contains(">QAT<") && svg.contains(">half<") && svg.contains(">test<"));
        assert!(svg.contains(">100.0<"), "values are printed");
        assert!(svg.contains("y=\"56\" fill=\"#555\">QAT<"), "a marker's label sits above the plot (top 60), clear of the lines: {svg}");
    }
}
