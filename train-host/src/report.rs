//! `train-host report`: the reference's accuracy table for one compiled model — float and QAT
//! (from the training log, when the run folder is given), integer circuit, FHE simulation at
//! several roundings — with per-stage accumulator widths and PBS counts, as markdown and as an
//! SVG plot of accuracy against rounding bits.
use crate::cifar::Dataset;
use crate::eval::evaluate;
use cifhe_core::analysis::analyze;
use cifhe_core::fhe::plan::DEFAULT_P_ERROR_TARGET;
use cifhe_core::fhe::{ParamSet, Plan};
use cifhe_core::{Model, NoiseModel, RoundingMode, RunConfig};
use std::fmt::Write;

/// One measured row.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub runtime: String,
    /// Rounding bits, if this row is a simulation at a rounding.
    pub bits: Option<u8>,
    /// Top-1 accuracy.
    pub accuracy: f64,
}

/// Rounding bits of the table and the plot.
pub const ROUNDINGS: [u8; 6] = [8, 7, 6, 5, 4, 3];

/// Measures every row on `data` (float and QAT rows come from `log`, the run's `log.tsv`).
pub fn measure(model: &Model<'_>, data: &Dataset, log: Option<&str>, progress: &dyn Fn(&str)) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    if let Some(log) = log {
        for phase in ["float", "qat"] {
            let last = log.lines().rfind(|l| l.starts_with(&format!("{phase}\t")));
            if let Some(acc) = last.and_then(|l| l.split('\t').nth(4)).and_then(|v| v.parse::<f64>().ok()) {
                let name = if phase == "float" {
                    "float (burn), last float epoch, from the run log"
                } else {
                    "QAT fake-quant (burn; rounded if the run was rounding-aware), last epoch, from the run log"
                };
                rows.push(Row { runtime: name.into(), bits: None, accuracy: acc });
            }
        }
    }
    let base = RunConfig { noise: NoiseModel::NONE.into(), ..RunConfig::new(model) };
    let mut run = |label: String, bits: Option<u8>, cfg: RunConfig| -> Result<(), String> {
        progress(&label);
        let r = evaluate(model, data, cfg, false)?;
        rows.push(Row { runtime: label, bits, accuracy: r.accuracy });
        Ok(())
    };
    run("integer circuit, no rounding".into(), None, RunConfig { rounding_bits: None, ..base })?;
    let p = RunConfig::new(model).noise;
    for bits in ROUNDINGS {
        run(format!("FHE simulation, {bits}-bit exact rounding, p_error 2^-40"), Some(bits), RunConfig { rounding_bits: Some(bits), noise: p, ..base })?;
    }
    let cfg = RunConfig { rounding_bits: Some(6), noise: p, mode: RoundingMode::Approximate, ..base };
    run("FHE simulation, 6-bit approximate rounding, p_error 2^-40".into(), None, cfg)?;
    // What TFHE itself will give: the noise of the parameters `fhe` and `serve` use, per stage.
    let (set, target) = (ParamSet::M2C2, DEFAULT_P_ERROR_TARGET);
    let plan = Plan::for_set(model, set, model.rounding_bits(), target).map_err(|e| e.to_string())?;
    let label = format!("FHE simulation, TFHE {set} noise (per-stage bootstraps, p_error target {target}), model's rounding, approximate");
    run(label, None, plan.simulation(RunConfig { rounding_bits: model.rounding_bits(), ..base }))?;
    Ok(rows)
}

/// The markdown report.
pub fn markdown(model: &Model<'_>, data: &Dataset, rows: &[Row], plot: Option<&str>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Report: `{}`\n\n{}\n", model.file().name, model.file().description);
    let _ = writeln!(s, "Accuracy on {} {:?} test images.\n", data.len(), data.kind);
    let _ = writeln!(s, "| runtime | top-1 accuracy |\n|---|---|");
    for r in rows {
        let _ = writeln!(s, "| {} | {:.2}% |", r.runtime, 100.0 * r.accuracy);
    }
    if let Some(p) = plot {
        let _ = writeln!(s, "\n![accuracy against rounding bits]({p})");
    }
    let _ = writeln!(s, "\n| stage | kind | output | PBS | worst-case accumulator | calibrated accumulator |\n|---|---|---|---|---|---|");
    let mut pbs = 0;
    for (i, r) in analyze(model).iter().enumerate() {
        let o = r.output;
        let bound = r.bound.map_or(String::new(), |(_, b)| format!("{b} bits"));
        let cal = r.calibrated.map_or(String::new(), |((lo, hi), b)| format!("[{lo}, {hi}], {b} bits"));
        let _ = writeln!(s, "| {i} | {} | {}×{}×{} | {} | {bound} | {cal} |", r.kind, o.h, o.w, o.c, r.pbs);
        pbs += r.pbs;
    }
    let _ = writeln!(s, "\n{pbs} PBS per image.");
    s
}

/// An SVG line chart of simulated accuracy against rounding bits.
pub fn svg(rows: &[Row], title: &str) -> String {
    let pts: Vec<(f64, f64)> = rows.iter().filter_map(|r| r.bits.map(|b| (b as f64, 100.0 * r.accuracy))).collect();
    let (w, h, m) = (640.0, 400.0, 60.0);
    let (x0, x1) = (ROUNDINGS[ROUNDINGS.len() - 1] as f64, ROUNDINGS[0] as f64);
    let x = |v: f64| m + (v - x0) / (x1 - x0) * (w - 2.0 * m);
    let y = |v: f64| h - m - v / 100.0 * (h - 2.0 * m);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"13\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">{title}</text>\n",
        w / 2.0
    );
    for t in (0..=100).step_by(20) {
        let _ = writeln!(
            s,
            "<line x1=\"{m}\" x2=\"{}\" y1=\"{yy}\" y2=\"{yy}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{t}%</text>",
            w - m,
            m - 8.0,
            y(t as f64) + 4.0,
            yy = y(t as f64)
        );
    }
    for b in ROUNDINGS {
        let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{b}</text>", x(b as f64), h - m + 20.0);
    }
    let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">bits kept before each lookup</text>", w / 2.0, h - 15.0);
    if let Some(r) = rows.iter().find(|r| r.runtime.starts_with("integer circuit")) {
        let _ = writeln!(
            s,
            "<line x1=\"{m}\" x2=\"{}\" y1=\"{yy}\" y2=\"{yy}\" stroke=\"#888\" stroke-dasharray=\"6 4\"/><text x=\"{}\" y=\"{}\" text-anchor=\"start\" fill=\"#555\">no rounding {:.1}%</text>",
            w - m,
            m + 6.0,
            y(100.0 * r.accuracy) - 6.0,
            100.0 * r.accuracy,
            yy = y(100.0 * r.accuracy)
        );
    }
    let path: Vec<String> = pts.iter().map(|&(b, a)| format!("{:.1},{:.1}", x(b), y(a))).collect();
    let _ = writeln!(s, "<polyline points=\"{}\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2.5\"/>", path.join(" "));
    for (b, a) in pts {
        let _ = writeln!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"#1f77b4\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{a:.1}</text>",
            x(b),
            y(a),
            x(b),
            y(a) - 10.0
        );
    }
    s.push_str("</svg>\n");
    s
}
