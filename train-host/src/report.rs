//! `train-host report`: the reference's accuracy table for one compiled model — float and QAT
//! (from the training log, when the run folder is given), integer circuit, FHE simulation at
//! several roundings — with per-stage accumulator widths and PBS counts, as markdown and as an
//! SVG plot of accuracy against rounding bits; and, from a run's log, its training curves.
use crate::cifar::Dataset;
use crate::eval::evaluate;
use crate::plot::{Chart, Series};
use cifhe_core::analysis::analyze;
use cifhe_core::fhe::plan::DEFAULT_P_ERROR_TARGET;
use cifhe_core::fhe::{Bootstrap, ParamSet, Plan};
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

/// Noise seeds of the TFHE rows. The noise moves borderline images from class to class, so one
/// seed's accuracy is one draw (the VGG11's spread by a few tenths of a point); their mean is the
/// figure to quote.
pub const NOISE_SEEDS: [u64; 3] = [0, 1, 2];

/// Measures every row on `data` (float and QAT rows come from `log`, the run's `log.tsv`), saying
/// each row's name to `progress` before measuring it, with a progress bar over the images (a VGG11
/// row takes about 40 s here); the TFHE rows once per noise seed, then their mean.
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
        let r = evaluate(model, data, cfg, true)?;
        rows.push(Row { runtime: label, bits, accuracy: r.accuracy });
        Ok(())
    };
    run("integer circuit, no rounding".into(), None, RunConfig { rounding_bits: None, ..base })?;
    let p = RunConfig::new(model).noise;
    for bits in ROUNDINGS {
        run(format!("FHE simulation, {bits}-bit exact rounding, p_error 2^-40"), Some(bits), RunConfig { rounding_bits: Some(bits), noise: p, ..base })?;
    }
    // TFHE rounds by its modulus switch (approximately), at the model's rounding.
    if let Some(bits) = model.rounding_bits() {
        let cfg = RunConfig { rounding_bits: Some(bits), noise: p, mode: RoundingMode::Approximate, ..base };
        run(format!("FHE simulation, {bits}-bit approximate rounding (the model's), p_error 2^-40"), None, cfg)?;
    }
    // What TFHE itself will give: the noise of the parameters `fhe` and `serve` use, per stage.
    let (set, target) = (ParamSet::M2C2, DEFAULT_P_ERROR_TARGET);
    let plan = Plan::for_set(model, set, model.rounding_bits(), target).map_err(|e| e.to_string())?;
    let label = format!(
        "FHE simulation, TFHE {set} noise ({} standard + {} fine bootstraps per image, chosen for p_error ≤ {target}), model's rounding, approximate",
        plan.bootstraps_of(model, Bootstrap::Standard),
        plan.bootstraps_of(model, Bootstrap::Fine)
    );
    for seed in NOISE_SEEDS {
        run(format!("{label}, noise seed {seed}"), None, plan.simulation(RunConfig { rounding_bits: model.rounding_bits(), seed, ..base }))?;
    }
    let seeds = &rows[rows.len() - NOISE_SEEDS.len()..];
    let mean = seeds.iter().map(|r| r.accuracy).sum::<f64>() / seeds.len() as f64;
    rows.push(Row { runtime: format!("**{label}, mean of the {} noise seeds**", seeds.len()), bits: None, accuracy: mean });
    Ok(rows)
}

/// The markdown report, with `plots` (alt text, file name) under the accuracy table.
pub fn markdown(model: &Model<'_>, data: &Dataset, rows: &[Row], plots: &[(&str, String)]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Report: `{}`\n\n{}\n", model.file().name, model.file().description);
    let _ = writeln!(s, "Accuracy on {} {} test images.\n", data.len(), data.kind);
    let _ = writeln!(s, "| runtime | top-1 accuracy |\n|---|---|");
    for r in rows {
        let _ = writeln!(s, "| {} | {:.2}% |", r.runtime, 100.0 * r.accuracy);
    }
    for (alt, file) in plots {
        let _ = writeln!(s, "\n![{alt}]({file})");
    }
    let _ = writeln!(s, "\n| stage | kind | output | PBS | worst-case accumulator | calibrated accumulator, declared width |\n|---|---|---|---|---|---|");
    let mut pbs = 0;
    for (i, r) in analyze(model).iter().enumerate() {
        let o = r.output;
        let bound = r.bound.map_or(String::new(), |(_, b)| format!("{b} bits"));
        let cal = r.calibrated.zip(r.acc_bits).map_or(String::new(), |(((lo, hi), _), (b, c))| {
            if c == 0 {
                format!("[{lo}, {hi}], {b} bits")
            } else {
                format!("[{lo}, {hi}], {b} bits about {c}")
            }
        });
        let _ = writeln!(s, "| {i} | {} | {}×{}×{} | {} | {bound} | {cal} |", r.kind, o.h, o.w, o.c, r.pbs);
        pbs += r.pbs;
    }
    let _ = writeln!(s, "\n{pbs} PBS per image.");
    s
}

/// An SVG line chart of simulated accuracy against rounding bits.
pub fn svg(rows: &[Row], title: &str) -> String {
    let points = rows.iter().filter_map(|r| r.bits.map(|b| (b as f64, 100.0 * r.accuracy))).collect();
    let h_marks = rows
        .iter()
        .find(|r| r.runtime.starts_with("integer circuit"))
        .map(|r| (100.0 * r.accuracy, format!("no rounding {:.1}%", 100.0 * r.accuracy)))
        .into_iter()
        .collect();
    Chart {
        title: title.into(),
        x_label: "bits kept before each lookup".into(),
        x_ticks: ROUNDINGS.iter().map(|&b| (b as f64, b.to_string())).collect(),
        series: vec![Series { name: None, color: "#1f77b4", points, values: true }],
        h_marks,
        v_marks: Vec::new(),
    }
    .svg()
}

/// An SVG chart of a run's training and test accuracy per epoch, from its `log.tsv`, with the
/// start of each phase (all layers after the classifier-only stage, QAT) marked; `None` for a
/// log without epochs.
pub fn training_svg(log: &str, title: &str) -> Option<String> {
    let epochs: Vec<(&str, f64, f64)> = log
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Some((*f.first()?, f.get(3)?.parse().ok()?, f.get(4)?.parse().ok()?))
        })
        .collect();
    let last = epochs.last()?;
    let n = epochs.len();
    let along = |k: usize| (k + 1) as f64;
    let series = |name: &str, color, pick: fn(&(&str, f64, f64)) -> f64| Series {
        name: Some(name.into()),
        color,
        points: epochs.iter().enumerate().map(|(k, e)| (along(k), 100.0 * pick(e))).collect(),
        values: false,
    };
    let v_marks = (1..n)
        .filter(|&k| epochs[k].0 != epochs[k - 1].0)
        .map(|k| (along(k) - 0.5, if epochs[k].0 == "qat" { "QAT".to_string() } else { "all layers".to_string() }))
        .collect();
    let step = n.div_ceil(20);
    Some(
        Chart {
            title: title.into(),
            x_label: "epoch".into(),
            x_ticks: (0..n).filter(|k| k % step == 0 || k + 1 == n).map(|k| (along(k), (k + 1).to_string())).collect(),
            series: vec![series("test", "#1f77b4", |e| e.2), series("training (augmented)", "#ff7f0e", |e| e.1)],
            h_marks: vec![(100.0 * last.2, format!("last test accuracy {:.2}%", 100.0 * last.2))],
            v_marks,
        }
        .svg(),
    )
}

/// `6-bit rounding`, or `no rounding`.
pub fn rounding_words(bits: Option<u8>) -> String {
    bits.map_or("no rounding".into(), |b| format!("{b}-bit rounding"))
}
