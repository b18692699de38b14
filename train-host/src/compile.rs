//! Compiling a float network into the integer circuit: quantize the weights, calibrate each
//! lookup's output scale and accumulator width on real images, and fold scale, bias, ReLU, the
//! pools' 1/k² and the requantization into one monotone table per channel.
//!
//! Calibration runs the circuit compiled so far (the simulator itself, exact, no noise), so every
//! lookup is fitted to the accumulators the integer circuit really produces.
use crate::arch::{shapes, FloatNet, Layer};
use crate::widths::{act_codes, weight_qmax, Widths};
use cifhe_core::analysis::declared_width;
use cifhe_core::builder::ModelBuilder;
use cifhe_core::model::{round_up, Shape};
use cifhe_core::{Model, NoiseModel, RunConfig, Simulator};
use rayon::prelude::*;
use std::ops::ControlFlow;

/// Quantization settings.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantConfig {
    /// Bits of the signed, symmetric, narrow-range weight codes, per layer with weights.
    pub weight_bits: Widths,
    /// One weight scale per output channel (else one per tensor).
    pub per_channel_weights: bool,
    /// Bits of the activation codes: the input's, then each lookup's.
    pub act_bits: Widths,
    /// Percentile of |activation| that sets each activation quantizer's threshold.
    pub percentile: f64,
    /// Rounding the model asks for by default.
    pub rounding_bits: Option<u8>,
    /// Each lookup's accumulator declared about the centre of its calibrated range
    /// ([`cifhe_core::analysis::centring`]), else about zero.
    pub centre: bool,
}

impl Default for QuantConfig {
    fn default() -> Self {
        QuantConfig {
            weight_bits: Widths::uniform(5),
            per_channel_weights: false,
            act_bits: Widths::uniform(5),
            percentile: 99.99,
            rounding_bits: Some(6),
            centre: false,
        }
    }
}

/// Per-channel affine map from accumulator to real value, then an optional ReLU.
#[derive(Debug, Clone)]
struct Affine {
    scale: Vec<f64>,
    bias: Vec<f64>,
    relu: bool,
}

impl Affine {
    fn real(&self, ch: usize, acc: i64) -> f64 {
        let y = acc as f64 * self.scale[ch] + self.bias[ch];
        if self.relu {
            y.max(0.0)
        } else {
            y
        }
    }
}

/// `code(acc) = clamp(round_half_even(real(acc) / s_out), lo, hi)`, as thresholds: for each code
/// above `lo`, the smallest accumulator reaching it (found analytically, then checked exactly).
fn thresholds(aff: &Affine, ch: usize, s_out: f64, lo: i32, hi: i32) -> Vec<i32> {
    let code = |acc: i64| ((aff.real(ch, acc) / s_out).round_ties_even() as i64).clamp(lo as i64, hi as i64) as i32;
    let (min, max) = (i32::MIN as i64, i32::MAX as i64);
    (lo + 1..=hi)
        .map(|k| {
            let a = aff.scale[ch];
            if a.is_nan() || a <= 0.0 {
                return if code(0) >= k { i32::MIN } else { i32::MAX };
            }
            let guess = (((k as f64 - 0.5) * s_out - aff.bias[ch]) / a).ceil();
            let mut t = guess.clamp(min as f64, max as f64) as i64;
            while t > min && code(t - 1) >= k {
                t -= 1;
            }
            while t < max && code(t) < k {
                t += 1;
            }
            t as i32
        })
        .collect()
}

/// The `bits`-bit weight codes of a layer with `out` output channels (weights in
/// output-channel-major order), and the real value of one code step of each output channel: one
/// scale for the whole tensor, or one per channel.
fn quantize_weights(w: &[f32], out: usize, bits: u32, per_channel: bool) -> (Vec<i8>, Vec<f64>) {
    let qmax = weight_qmax(bits) as f64;
    let scale = |w: &[f32]| {
        let m = w.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
        if m > 0.0 {
            m / qmax
        } else {
            1.0
        }
    };
    let per_out = w.len() / out;
    let scales = if per_channel { w.chunks(per_out).map(scale).collect() } else { vec![scale(w); out] };
    let codes = w.iter().enumerate().map(|(i, &v)| ((v as f64 / scales[i / per_out]).round_ties_even().clamp(-qmax, qmax)) as i8).collect();
    (codes, scales)
}

/// A lookup still to calibrate. Its accumulator's real scale in channel `c` is `factor[c]` times
/// the scale of the codes it reads, which is known only once the lookup before it is calibrated.
struct Pending {
    stage: usize,
    factor: Vec<f64>,
    bias: Vec<f64>,
    relu: bool,
    /// Output codes are never negative (see [`crate::net::sites`]).
    nonneg: bool,
}

/// What calibration saw of one linear stage's accumulators.
struct Observed {
    min: i32,
    max: i32,
    samples: Vec<f64>,
}

/// Scale of the input codes: the whole normalised pixel range maps onto the signed codes, so the
/// input quantizer never clips. Shared by the compiler and the quantization-aware network.
pub fn input_scale(mean: [f32; 3], std: [f32; 3], act_bits: u32) -> f64 {
    let half = -act_codes(act_bits, false).0 as f64;
    (0..3).map(|ch| ((0.0 - mean[ch]) / std[ch]).abs().max(((1.0 - mean[ch]) / std[ch]).abs())).fold(0f32, f32::max) as f64 / half
}

/// Compiles `net` (inputs normalised by `mean`/`std`) using `calib` images (channel planes).
/// `scales` are the output scales of the lookup sites learned by quantization-aware training;
/// without them each site's scale is set from the `percentile` of its calibration values.
#[allow(clippy::too_many_arguments)]
pub fn compile(
    net: &FloatNet,
    mean: [f32; 3],
    std: [f32; 3],
    cfg: QuantConfig,
    calib: &[u8],
    scales: Option<&[f32]>,
    name: &str,
    description: &str,
    labels: &[String],
    progress: &dyn Fn(&str),
) -> Result<Vec<u8>, String> {
    let (c, h, w) = net.input;
    if c != 3 || calib.is_empty() || !calib.len().is_multiple_of(c * h * w) {
        return Err("compile needs 3-channel calibration images".into());
    }
    crate::widths::fit(&net.arch, &cfg.weight_bits, &cfg.act_bits)?;
    // Input: normalisation folded into a table.
    let s_in = input_scale(mean, std, cfg.act_bits.at(0));
    let (in_lo, in_hi) = act_codes(cfg.act_bits.at(0), false);
    let table: Vec<[i8; 256]> = (0..3)
        .map(|ch| {
            std::array::from_fn(|p| {
                let x = ((p as f64 / 255.0) - mean[ch] as f64) / std[ch] as f64;
                ((x / s_in).round_ties_even() as i32).clamp(in_lo, in_hi) as i8
            })
        })
        .collect();
    let mut b = ModelBuilder::new(name, Shape { h, w, c }, &table);
    b.description(description).labels(labels).rounding_bits(cfg.rounding_bits);

    let mut pending = Vec::new();
    let mut sites = crate::net::sites(&net.arch).into_iter();
    let mut nonneg = || sites.next().is_some_and(|s| s.nonneg);
    let mut final_linear = None;
    // Layers with weights seen so far: the index of the next one's weight width.
    let mut weighted = 0;
    let layer_shapes = shapes(&net.arch, net.input);
    let mut shape_in = net.input;
    let layers = &net.arch.layers;
    for (i, layer) in layers.iter().enumerate() {
        let relu = matches!(layers.get(i + 1), Some(Layer::Relu));
        match (*layer, &net.params[i]) {
            (Layer::Conv { out, k, stride, pad }, Some(p)) => {
                let (q, s_w) = quantize_weights(&p.weight, out, cfg.weight_bits.at(weighted), cfg.per_channel_weights);
                weighted += 1;
                b.conv(&q, out, shape_in.0, k, k, stride, pad);
                pending.push(Pending { stage: b.len(), factor: s_w, bias: p.bias.iter().map(|&v| v as f64).collect(), relu, nonneg: nonneg() });
                b.lookup(31, 0, 0, &vec![vec![]; out], (0, 0));
            }
            (Layer::AvgPool { k: 1, stride: 1 }, _) | (Layer::Relu, _) => {}
            (Layer::AvgPool { k, stride }, _) => {
                b.sum_pool(k, stride);
                pending.push(Pending {
                    stage: b.len(),
                    factor: vec![1.0 / (k * k) as f64; shape_in.0],
                    bias: vec![0.0; shape_in.0],
                    relu: false,
                    nonneg: nonneg(),
                });
                b.lookup(31, 0, 0, &vec![vec![]; shape_in.0], (0, 0));
            }
            (Layer::Linear { out }, Some(p)) => {
                if i + 1 != layers.len() {
                    return Err("a linear layer is supported only as the last layer".into());
                }
                let (q, s_w) = quantize_weights(&p.weight, out, cfg.weight_bits.at(weighted), cfg.per_channel_weights);
                b.linear(&q, out, Shape { c: shape_in.0, h: shape_in.1, w: shape_in.2 });
                final_linear = Some((s_w, p.bias.clone()));
            }
            (l, None) => return Err(format!("layer {i} ({l:?}) has no parameters")),
        }
        shape_in = layer_shapes[i];
    }
    let (s_w_final, bias_final) = final_linear.ok_or("the network must end with a linear layer")?;
    b.output(&vec![1.0; bias_final.len()], &bias_final);
    // Calibrate the lookups in order: each sees the accumulators of the circuit before it.
    let mut s_x = s_in;
    for (n, p) in pending.iter().enumerate() {
        progress(&format!("calibrating lookup {}/{}", n + 1, pending.len()));
        let affine = Affine { scale: p.factor.iter().map(|f| s_x * f).collect(), bias: p.bias.clone(), relu: p.relu };
        let obs = observe(&b, p.stage - 1, calib, &affine)?;
        let (lo, hi) = act_codes(cfg.act_bits.at(n + 1), p.nonneg);
        let s_out = match scales {
            Some(s) => *s.get(n).ok_or("fewer learned scales than lookup sites")? as f64,
            None => {
                let mut mags: Vec<f64> = obs.samples.iter().map(|v| v.abs()).collect();
                let idx = ((cfg.percentile / 100.0) * mags.len().saturating_sub(1) as f64).round() as usize;
                let threshold = if mags.is_empty() { 0.0 } else { *mags.select_nth_unstable_by(idx, f64::total_cmp).1 };
                if threshold > 0.0 {
                    threshold / hi as f64
                } else {
                    1.0
                }
            }
        };
        let t: Vec<Vec<i32>> = (0..p.bias.len()).map(|c| thresholds(&affine, c, s_out, lo, hi)).collect();
        let (centre, bits) = declared_width(obs.min as i64, obs.max as i64, cfg.centre);
        b.set_lookup(p.stage, bits as u8, lo as i8, hi as i8, &t, (obs.min, obs.max));
        b.centre(p.stage, centre, bits as u8);
        s_x = s_out;
    }
    b.output(&s_w_final.iter().map(|s| (s_x * s) as f32).collect::<Vec<_>>(), &bias_final);
    let bytes = b.to_bytes();
    Model::from_bytes(&bytes).map_err(|e| format!("compiled model is invalid: {e}"))?;
    Ok(bytes)
}

/// Runs the circuit built so far on the calibration images up to linear stage `stage` and
/// gathers its accumulators: exact range, and a subsample of real values for the percentile.
fn observe(b: &ModelBuilder, stage: usize, calib: &[u8], affine: &Affine) -> Result<Observed, String> {
    let bytes = b.to_bytes();
    let model = Model::from_bytes(&bytes).map_err(|e| format!("calibration model is invalid: {e}"))?;
    let cfg = RunConfig { rounding_bits: None, noise: NoiseModel::NONE.into(), ..RunConfig::new(&model) };
    let sim = Simulator::new(&model, cfg).map_err(|e| e.to_string())?;
    let (words, classes) = (model.scratch_words(), model.classes());
    let ch = affine.scale.len();
    let per_image = calib.chunks(model.image_len()).enumerate().par_bridge().map_init(
        || (vec![0u64; words], vec![0i32; classes]),
        |(scratch, out), (k, image)| {
            let mut o = Observed { min: i32::MAX, max: i32::MIN, samples: Vec::new() };
            sim.run_traced(image, k as u64, scratch, out, |i, info, acc| {
                if i < stage {
                    return ControlFlow::Continue(());
                }
                let stride = round_up(info.output.c, 16);
                let n = info.output.h * info.output.w * ch;
                let step = (n / 2048).max(1);
                for p in 0..info.output.h * info.output.w {
                    for (c, &a) in acc[p * stride..][..ch].iter().enumerate() {
                        o.min = o.min.min(a);
                        o.max = o.max.max(a);
                        if (p * ch + c).is_multiple_of(step) {
                            o.samples.push(affine.real(c, a as i64));
                        }
                    }
                }
                ControlFlow::Break(())
            })
            .map(|_| o)
        },
    );
    let all: Result<Vec<Observed>, _> = per_image.collect();
    let all = all.map_err(|e| e.to_string())?;
    Ok(all.into_iter().fold(Observed { min: i32::MAX, max: i32::MIN, samples: Vec::new() }, |mut a, o| {
        a.min = a.min.min(o.min);
        a.max = a.max.max(o.max);
        a.samples.extend(o.samples);
        a
    }))
}
