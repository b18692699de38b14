//! `train-host fhe-noise`: the error each lookup of a model reads under real TFHE, measured on
//! real ciphertexts and set beside the noise model the simulator injects (`cifhe_core::fhe::measure`).
//!
//! A VGG image costs hours under TFHE, so the report runs the model's first lookup stages on a
//! centre crop of the image: the same weights, tables, rounding, parameters and encodings, on
//! fewer positions. Each lookup's noise depends only on the weights that feed it (a crop only
//! adds padding borders, which the per-element model accounts for), so the per-stage figures are
//! those of the whole image.
use crate::cifar::Dataset;
use cifhe_core::fhe::measure::{measure, LookupNoise};
use cifhe_core::fhe::plan::StagePlan;
use cifhe_core::fhe::{Bootstrap, ClientKey, Evaluator, ParamSet, Plan};
use cifhe_core::model::{weight_len, Linear, Shape, Stage};
use cifhe_core::Model;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Instant;

/// What to measure.
pub struct NoiseConfig {
    /// Parameter set.
    pub params: ParamSet,
    /// Bits kept before each lookup.
    pub rounding_bits: Option<u8>,
    /// Lookup stages of the model to run (from the first).
    pub lookup_stages: usize,
    /// Error probability target of the per-stage bootstrap choice ([`Plan::for_set`]).
    pub p_error: f64,
    /// Side of the centre crop of the image (`None`: the whole image).
    pub crop: Option<usize>,
    /// Test-set images to measure (their figures are summed).
    pub images: Vec<usize>,
}

/// The measured stages and what the run cost.
pub struct NoiseReport {
    /// Per lookup stage, summed over the images.
    pub stages: Vec<LookupNoise>,
    /// The model's stage list, to name the stages.
    pub stage_names: Vec<String>,
    /// The bootstrapping key of each lookup stage (`None` for linear stages).
    pub keys: Vec<Option<Bootstrap>>,
    /// Seconds of evaluation (all images).
    pub seconds: f64,
    /// Bootstraps run (all images).
    pub bootstraps: u64,
}

/// The first `lookup_stages` lookup stages of `model` (and the linear stages before them) on a
/// `crop × crop` input, closed by an all-zero linear layer so the result is a valid model file.
pub fn prefix_model(model: &Model<'_>, lookup_stages: usize, crop: Option<usize>) -> Result<Vec<u8>, String> {
    let mut file = model.file().clone();
    if let Some(side) = crop {
        let s = model.input_shape();
        if side == 0 || side > s.h || side > s.w {
            return Err(format!("--crop {side} does not fit the model's {}×{} input", s.h, s.w));
        }
        (file.input.height, file.input.width) = (side as u16, side as u16);
    }
    let lookups: Vec<usize> = model.stages().iter().enumerate().filter(|(_, s)| matches!(s, Stage::Lookup(_))).map(|(i, _)| i).collect();
    let Some(&last) = lookups.get(lookup_stages.max(1) - 1) else {
        return Err(format!("the model has {} lookup stages, fewer than the {lookup_stages} asked for", lookups.len()));
    };
    file.stages.truncate(last + 1);
    let shape = shape_after(&file)?;
    let classes = model.classes();
    let weights = vec![0u8; weight_len(classes, shape.c, shape.h, shape.w)];
    let mut closed: cifhe_core::ModelFile<'_> = file;
    closed.stages.push(Stage::Linear(Linear { out_features: classes as u16, weights: &weights })).expect("fewer stages than before");
    Ok(closed.to_bytes())
}

/// The output shape of `file`'s stages, or which stage a crop made too small.
fn shape_after(file: &cifhe_core::ModelFile<'_>) -> Result<Shape, String> {
    let s = &file.input;
    let mut shape = Shape { h: s.height as usize, w: s.width as usize, c: s.channels as usize };
    for (i, stage) in file.stages.iter().enumerate() {
        let (k, pad) = match stage {
            Stage::Conv(c) => (c.kernel_h.max(c.kernel_w) as usize, c.padding as usize),
            Stage::SumPool(p) => (p.kernel as usize, 0),
            Stage::Linear(_) | Stage::Lookup(_) => (1, 0),
        };
        if k > shape.h.min(shape.w) + 2 * pad {
            return Err(format!("stage {i} reads {k}×{k} windows of a {}×{} tensor: use a larger --crop", shape.h, shape.w));
        }
        if let Some(taps) = cifhe_core::kernels::reference::Taps::of_stage(stage, shape) {
            shape = taps.output();
        }
    }
    Ok(shape)
}

/// The centre `side × side` crop of an image stored as channel planes of `h × w`.
pub fn crop_image(image: &[u8], input: Shape, side: usize) -> Vec<u8> {
    let (y0, x0) = ((input.h - side) / 2, (input.w - side) / 2);
    (0..input.c)
        .flat_map(|c| (0..side).flat_map(move |y| (0..side).map(move |x| (c, y, x))))
        .map(|(c, y, x)| image[c * input.h * input.w + (y0 + y) * input.w + x0 + x])
        .collect()
}

/// Keygen, then every image through the prefix model with the meter attached.
pub fn run(model: &Model<'_>, data: &Dataset, cfg: &NoiseConfig, progress: bool) -> Result<NoiseReport, String> {
    let bytes = prefix_model(model, cfg.lookup_stages, cfg.crop)?;
    let prefix = Model::from_bytes(&bytes).map_err(|e| format!("the cropped prefix of the model is invalid: {e}"))?;
    let plan = Plan::for_set(&prefix, cfg.params, cfg.rounding_bits, cfg.p_error).map_err(|e| e.to_string())?;
    let keys = plan.stages.iter().map(|s| if let StagePlan::Lookup(l) = s { Some(l.bootstrap) } else { None }).collect();
    let bootstraps = plan.bootstraps(&prefix);
    if progress {
        eprintln!("{} lookup stages, {bootstraps} bootstraps per image under {}; generating keys…", cfg.lookup_stages, cfg.params);
    }
    let client = ClientKey::generate(cfg.params);
    let server = client.server_key(&plan).map_err(|e| e.to_string())?.expand();
    let eval = Evaluator::new(&server, &prefix, plan).map_err(|e| e.to_string())?;
    let bar = if progress { ProgressBar::new(bootstraps * cfg.images.len() as u64) } else { ProgressBar::hidden() };
    bar.set_style(ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} bootstraps, ETA {eta}").expect("valid template").progress_chars("=> "));
    // Bootstraps before each lookup stage, for one bar over every image.
    let mut offsets = Vec::new();
    let mut before_stage = 0u64;
    for (i, (stage, info)) in prefix.stages().iter().zip(prefix.info()).enumerate() {
        if matches!(stage, Stage::Lookup(_)) {
            offsets.push((i, before_stage));
            before_stage += info.output.len() as u64;
        }
    }
    let mut stages: Vec<LookupNoise> = Vec::new();
    let t = Instant::now();
    for (n, &index) in cfg.images.iter().enumerate() {
        let image = match cfg.crop {
            Some(side) => crop_image(data.image(index), model.input_shape(), side),
            None => data.image(index).to_vec(),
        };
        let before = n as u64 * bootstraps;
        let measured = measure(&client, &eval, &image, &|stage, k, _| {
            if let Some(&(_, first)) = offsets.iter().find(|(s, _)| *s == stage) {
                bar.set_position(before + first + k as u64);
                bar.set_message(format!("image {index}, stage {stage}"));
            }
        })
        .map_err(|e| e.to_string())?;
        for s in measured {
            match stages.iter_mut().find(|t| t.stage == s.stage) {
                Some(t) => t.merge(&s),
                None => stages.push(s),
            }
        }
    }
    bar.finish_and_clear();
    let stage_names = prefix.stages().iter().map(describe).collect();
    Ok(NoiseReport { stages, stage_names, keys, seconds: t.elapsed().as_secs_f64(), bootstraps: bootstraps * cfg.images.len() as u64 })
}

fn describe(stage: &Stage<'_>) -> String {
    match stage {
        Stage::Conv(c) => format!("conv {}×{} → {}", c.kernel_h, c.kernel_w, c.out_channels),
        Stage::SumPool(p) => format!("sum-pool {}×{}/{}", p.kernel, p.kernel, p.stride),
        Stage::Linear(l) => format!("linear → {}", l.out_features),
        Stage::Lookup(l) => format!("lookup ({}-bit accumulator)", l.acc_bits),
    }
}

/// The report as a markdown table.
pub fn markdown(report: &NoiseReport, model: &Model<'_>, cfg: &NoiseConfig, command: &str) -> String {
    let mut md = format!(
        "Model `{}`, parameters {}, rounding {}, fine bootstraps where the next lookup's p_error > {:.0e}; {} image(s){}; {} bootstraps in {:.0} s.\n\
         Produced by `{command}`.\n\n\
         | stage | after | lookups | its bootstrap | σ plan (steps) | σ model, per element (RMS) | σ measured (RMS) | off by one: measured | expected | bootstrap output σ: measured / formula (torus) | ms per lookup | whole image: lookups | whole image: seconds |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        model.file().name,
        cfg.params,
        cfg.rounding_bits.map_or("none".into(), |r| format!("{r} bits")),
        cfg.p_error,
        cfg.images.len(),
        cfg.crop.map_or(String::new(), |s| format!(", centre {s}×{s} crop")),
        report.bootstraps,
        report.seconds
    );
    let mut whole = 0.0;
    for s in &report.stages {
        // The stage's cost per lookup, linear stages before it included, times the whole image's lookups.
        let per_lookup = s.seconds / s.lookups.max(1) as f64;
        let full = model.info()[s.stage].output.len();
        whole += per_lookup * full as f64;
        md += &format!(
            "| {} | {} | {} | {} | {:.4} | {:.4} | {:.4} | {} | {:.1} | 2^{:.1} / 2^{:.1} | {:.2} | {full} | {:.0} |\n",
            s.stage,
            s.stage.checked_sub(1).map_or("input", |i| report.stage_names[i].as_str()),
            s.lookups,
            report.keys[s.stage].map_or("–", Bootstrap::name),
            s.plan_sigma,
            s.model_sigma(),
            s.measured_sigma(),
            s.off,
            s.expected_off,
            0.5 * s.output_variance().log2(),
            0.5 * s.output_model_variance.log2(),
            1e3 * per_lookup,
            per_lookup * full as f64
        );
    }
    md += &format!(
        "\nThese {} stages would take {:.1} min on the whole {}×{} image at the measured cost per lookup \
         ({} threads).\n",
        report.stages.len(),
        whole / 60.0,
        model.input_shape().h,
        model.input_shape().w,
        rayon::current_num_threads()
    );
    md
}
