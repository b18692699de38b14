//! The trainable network (burn): any [`Arch`] as data, float or quantization-aware.
//!
//! Quantization-aware mode mirrors the integer circuit `compile` produces, operation for
//! operation: the input is quantized with the same scale as the input table; weights are signed,
//! symmetric, narrow-range codes with one scale per tensor or per output channel; every lookup site (after each
//! convolution and its ReLU, after each non-identity pool) quantizes with a learned scale; with a
//! [`Rounding`], each lookup first reads its integer accumulator with the low bits dropped, as the
//! TFHE lookups will (rounding-aware training). Rounding uses a straight-through estimator, so
//! gradients reach the weights and the scales.
use crate::arch::{shapes, Arch, FloatNet, Layer, Params};
use crate::widths::{act_codes, weight_qmax, Widths};
use burn::module::RunningState;
use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::activation::relu;
use burn::tensor::module::{avg_pool2d, conv2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions};
use burn::tensor::{Device, Distribution, FloatDType, Tensor, TensorData};

/// Parameters of the network; the architecture is kept beside them.
#[derive(Module, Debug)]
pub struct Net {
    /// Weights of the convolutions and of the final linear layer, in layer order.
    weights: Vec<Param<Tensor<4>>>,
    /// Their biases.
    biases: Vec<Param<Tensor<1>>>,
    /// Natural log of each lookup site's quantization scale (learned during QAT).
    log_scales: Param<Tensor<1>>,
    /// Batch normalisation after each convolution, during float training only (empty otherwise):
    /// it is folded into the convolutions before QAT, so the circuit never sees it.
    norms: Vec<BatchNorm>,
    /// The precision of the convolutions in float mode (`F32`, or `BF16` like PyTorch's autocast:
    /// inputs and weights rounded to bfloat16, products accumulated by the backend, outputs and
    /// everything else — batch norm, loss, gradients' accumulation, the optimizer — in f32).
    /// QAT always runs in f32: its accumulators must be the circuit's.
    #[module(skip)]
    conv_dtype: FloatDType,
}

/// A batch normalisation's parameters and running statistics, for checkpoints.
pub type NormState = [Vec<f32>; 4];

/// How to run the network.
#[derive(Debug, Clone, PartialEq)]
pub struct Quant {
    /// Bits of the weight codes, per layer with weights.
    pub weight_bits: Widths,
    /// One weight scale per output channel (else one per tensor). Free in the circuit: each
    /// channel's scale folds into that channel's lookup table.
    pub per_channel_weights: bool,
    /// Bits of the activation codes: the input's, then each lookup site's.
    pub act_bits: Widths,
    /// Scale of the input codes (fixed: it is folded into the input table).
    pub input_scale: f32,
    /// The rounding of the accumulators before each lookup (`None`: exact accumulators), as the
    /// circuit rounds them: rounding-aware training sees the accumulators TFHE's lookups will see.
    pub rounding: Option<Rounding>,
}

/// Rounding of every lookup site's accumulator to `bits` bits.
#[derive(Debug, Clone, PartialEq)]
pub struct Rounding {
    /// Bits kept.
    pub bits: u32,
    /// Each site's accumulator width, calibrated as the compiler does (`acc_bits`): the rounding
    /// drops `acc_bits − bits` low bits.
    pub acc_bits: Vec<u32>,
    /// Each site's centre, subtracted before rounding (the lookups' `centre`; all 0 unless the
    /// accumulators are centred).
    pub centres: Vec<i32>,
    /// Standard deviation, in rounded steps, of the Gaussian noise added to every rounded lookup
    /// input (0: none). TFHE removes the low bits in its modulus switch, which keeps their
    /// fraction and adds its noise: the lookup reads `floor(x + ε + 1/2)` for `x` the accumulator
    /// in rounded steps (see [`cifhe_core::noise`]). Training with it teaches the network the
    /// off-by-one inputs TFHE gives it; without it this is the circuit's exact rounding.
    pub noise: f32,
}

impl Rounding {
    /// The rounding a compiled model applies at `bits` bits (its lookups' widths, in order).
    pub fn of_model(m: &cifhe_core::Model<'_>, bits: u32) -> Rounding {
        use cifhe_core::model::Stage;
        let (acc_bits, centres) =
            m.stages().iter().filter_map(|s| if let Stage::Lookup(l) = s { Some((u32::from(l.acc_bits), l.centre)) } else { None }).unzip();
        Rounding { bits, acc_bits, centres, noise: 0.0 }
    }
}

impl Quant {
    /// The same quantization with the lookups reading accumulators rounded as `rounding` says.
    pub fn with_rounding(self, rounding: Option<Rounding>) -> Quant {
        Quant { rounding, ..self }
    }

    /// The same quantization with noise of `sigma` rounded steps at every rounded lookup input
    /// ([`Rounding::noise`]).
    pub fn with_noise(self, sigma: f32) -> Quant {
        Quant { rounding: self.rounding.map(|r| Rounding { noise: sigma, ..r }), ..self }
    }
}

/// What a forward pass observed at the lookup sites, in order.
#[derive(Debug, Default)]
pub struct Probe {
    /// The float value at each site (after bias and ReLU, before quantization).
    pub values: Vec<Tensor<4>>,
    /// In quantized mode: the range of the integer accumulator each site's lookup reads.
    pub acc_ranges: Vec<(i64, i64)>,
}

/// A lookup site: after a convolution (and its ReLU) or after a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    /// Whether the values there are never negative (after ReLU, or a pool of such values).
    pub nonneg: bool,
    /// Index of the convolution or pool in the architecture's layers.
    pub layer: usize,
}

/// The lookup sites of `arch`, in circuit order.
pub fn sites(arch: &Arch) -> Vec<Site> {
    let mut nonneg = false;
    let mut v = Vec::new();
    for (i, l) in arch.layers.iter().enumerate() {
        match l {
            Layer::Conv { .. } => {
                nonneg = matches!(arch.layers.get(i + 1), Some(Layer::Relu));
                v.push(Site { nonneg, layer: i });
            }
            Layer::AvgPool { k: 1, stride: 1 } => {}
            Layer::AvgPool { .. } => v.push(Site { nonneg, layer: i }),
            _ => {}
        }
    }
    v
}

/// Straight-through fake quantization: `s · clamp(round(x / s), lo, hi)`, gradient of the identity
/// through the rounding (and LSQ-style gradient to `s`).
fn fake_quant<const D: usize>(x: Tensor<D>, s: Tensor<D>, lo: f32, hi: f32) -> Tensor<D> {
    let y = x / s.clone();
    let rounded = y.clone() + (y.clone().round() - y).detach();
    rounded.clamp(lo, hi) * s
}

/// The range of the integer accumulator `acc` whose step is worth `unit`.
fn acc_range(acc: Tensor<4>, unit: Tensor<4>) -> (i64, i64) {
    let codes = acc / unit;
    (codes.clone().min().into_scalar::<f32>().round() as i64, codes.max().into_scalar::<f32>().round() as i64)
}

/// The accumulator `acc` (real value `unit` per integer step; `unit` carries no gradient) with
/// `lsbs` low bits dropped, rounding half up as the circuit does, or, with `noise` > 0, as TFHE's
/// modulus switch does ([`Rounding::noise`]; a site that drops no bits gets none: TFHE errs there
/// only as on exactly rounded inputs, about once in a thousand lookups); the gradient passes
/// straight through.
fn round_accumulator(acc: Tensor<4>, unit: Tensor<4>, lsbs: u32, centre: i32, noise: f32) -> Tensor<4> {
    if lsbs == 0 {
        return acc;
    }
    let codes = acc / unit.clone();
    // The accumulator is an integer: snap it first, so float error cannot move it across a
    // rounding boundary (an accumulator exactly half a step away from two neighbours is common).
    // TFHE's encoding puts it half a unit above that integer, off every rounding point, so that
    // without noise the floor below is the circuit's round-half-up.
    let (step, centre) = ((1u32 << lsbs) as f32, centre as f32);
    let mut position = (codes.clone().round() - centre + 0.5) / step + 0.5;
    if noise > 0.0 {
        position = position.clone() + Tensor::random(position.shape(), Distribution::Normal(0.0, f64::from(noise)), &position.device());
    }
    let rounded = (position.floor() * step + centre).detach();
    (codes.clone() + (rounded - codes).detach()) * unit
}

fn scalar_as<const D: usize>(t: Tensor<1>) -> Tensor<D> {
    t.reshape([1; D])
}

impl Net {
    /// A network of `arch` with the parameters of `float` (scales initialised to 1).
    pub fn from_float(float: &FloatNet, device: &Device) -> Net {
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        let mut shape_in = float.input;
        for ((layer, p), out) in float.arch.layers.iter().zip(&float.params).zip(shapes(&float.arch, float.input)) {
            if let Some(p) = p {
                let dims = match *layer {
                    Layer::Conv { out, k, .. } => [out, shape_in.0, k, k],
                    Layer::Linear { out } => [out, shape_in.0, shape_in.1, shape_in.2],
                    _ => unreachable!("only convolutions and linear layers have parameters"),
                };
                weights.push(Param::from_tensor(Tensor::from_data(TensorData::new(p.weight.clone(), dims), device)));
                biases.push(Param::from_tensor(Tensor::from_data(TensorData::new(p.bias.clone(), [p.bias.len()]), device)));
            }
            shape_in = out;
        }
        let n = sites(&float.arch).len().max(1);
        let log_scales = Param::from_tensor(Tensor::from_data(TensorData::new(vec![0f32; n], [n]), device));
        Net { weights, biases, log_scales, norms: Vec::new(), conv_dtype: FloatDType::F32 }
    }

    /// The same network, its float-mode convolutions computed in `dtype`.
    pub fn with_conv_dtype(self, dtype: FloatDType) -> Net {
        Net { conv_dtype: dtype, ..self }
    }

    /// Adds batch normalisation after every convolution, fresh or from checkpointed `states`.
    pub fn with_norms(self, states: Option<&[NormState]>, device: &Device) -> Net {
        let t = |v: &Vec<f32>| Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), device);
        let convs = self.weights.len() - 1;
        let norms = (0..convs)
            .map(|p| {
                let c = self.weights[p].dims()[0];
                let bn = BatchNormConfig::new(c).init(device);
                match states.and_then(|s| s.get(p)) {
                    Some([g, b, m, v]) => BatchNorm {
                        gamma: Param::from_tensor(t(g)),
                        beta: Param::from_tensor(t(b)),
                        running_mean: RunningState::new(t(m)),
                        running_var: RunningState::new(t(v)),
                        ..bn
                    },
                    None => bn,
                }
            })
            .collect();
        Net { norms, ..self }
    }

    /// The batch normalisations' state (empty without them). Its running statistics are synced
    /// first: burn's `RunningState::value` leaves the last batch's update aside until then, and a
    /// checkpoint within an epoch must hold every batch seen.
    pub fn norm_states(&self) -> Vec<NormState> {
        self.norms
            .iter()
            .map(|bn| [to_vec(bn.gamma.val()), to_vec(bn.beta.val()), to_vec(bn.running_mean.value_sync()), to_vec(bn.running_var.value_sync())])
            .collect()
    }

    /// Folds each batch normalisation (running statistics) into its convolution:
    /// `w' = w · γ / √(σ² + ε)`, `b' = (b − μ) · γ / √(σ² + ε) + β`.
    pub fn fold_norms(self, arch: &Arch, device: &Device) -> Net {
        if self.norms.is_empty() {
            return self;
        }
        let states = self.norm_states();
        let eps: Vec<f64> = self.norms.iter().map(|bn| bn.epsilon).collect();
        let mut float = self.to_float(arch, (3, 32, 32));
        let convs = float.params.iter_mut().flatten().take(states.len());
        for ((p, [g, b, m, v]), eps) in convs.zip(&states).zip(eps) {
            let per_out = p.weight.len() / p.bias.len();
            for o in 0..p.bias.len() {
                let k = g[o] / (v[o] + eps as f32).sqrt();
                p.weight[o * per_out..(o + 1) * per_out].iter_mut().for_each(|w| *w *= k);
                p.bias[o] = (p.bias[o] - m[o]) * k + b[o];
            }
        }
        let scales = self.scales();
        Net::from_float(&float, device).set_scales(&scales, device)
    }

    /// The parameters back as a float network of `arch`.
    pub fn to_float(&self, arch: &Arch, input: (usize, usize, usize)) -> FloatNet {
        let mut k = 0;
        let params = arch
            .layers
            .iter()
            .map(|l| match l {
                Layer::Conv { .. } | Layer::Linear { .. } => {
                    let p = Params { weight: to_vec(self.weights[k].val()), bias: to_vec(self.biases[k].val()) };
                    k += 1;
                    Some(p)
                }
                _ => None,
            })
            .collect();
        FloatNet { arch: arch.clone(), input, params }
    }

    /// The classifier's parameters (the final linear layer's): what the first stage of a
    /// two-stage float training updates.
    pub fn head_params(&self) -> Vec<ParamId> {
        let last = self.weights.len() - 1;
        vec![self.weights[last].id, self.biases[last].id]
    }

    /// The device (backend) the parameters live on: batches for this network are made there.
    pub fn device(&self) -> Device {
        self.log_scales.val().device()
    }

    /// The learned scale of each lookup site.
    pub fn scales(&self) -> Vec<f32> {
        to_vec(self.log_scales.val().exp())
    }

    /// Sets the scales (QAT starts from calibrated ones).
    pub fn set_scales(self, scales: &[f32], device: &Device) -> Net {
        self.set_log_scales(scales.iter().map(|s| s.max(1e-8).ln()).collect(), device)
    }

    /// The natural logs of the scales, as learned: what a checkpoint keeps to resume exactly
    /// (the scales' logarithms do not give them back to the bit).
    pub fn log_scales(&self) -> Vec<f32> {
        to_vec(self.log_scales.val())
    }

    /// Sets the scales by their natural logs.
    pub fn set_log_scales(self, logs: Vec<f32>, device: &Device) -> Net {
        let n = logs.len();
        Net { log_scales: Param::from_tensor(Tensor::from_data(TensorData::new(logs, [n]), device)), ..self }
    }

    /// The same network with its parameters numbered 0, 1, … in order. The optimizer keys its
    /// state by parameter id: numbered alike, a network rebuilt from a checkpoint takes back the
    /// optimizer state saved with it.
    pub fn numbered(self) -> Net {
        struct Numbering(u64);
        impl ModuleMapper for Numbering {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                let (_, value, mapper) = param.consume();
                self.0 += 1;
                Param::from_mapped_value(ParamId::from(self.0 - 1), value, mapper)
            }
        }
        self.map(&mut Numbering(0))
    }

    /// Logits of a batch `[n, 3, h, w]` of normalised images. With `quant`, the forward pass of
    /// the quantized circuit; `probe` receives what the lookup sites saw.
    pub fn forward(&self, x: Tensor<4>, arch: &Arch, quant: Option<&Quant>, mut probe: Option<&mut Probe>) -> Tensor<2> {
        let device = x.device();
        let constant = |v: f32| Tensor::<4>::from_data(TensorData::new(vec![v], [1, 1, 1, 1]), &device);
        // Real value of one step of the codes `x` holds (quantized mode only).
        let mut x_scale = quant.map(|q| constant(q.input_scale));
        let mut x = match (quant, &x_scale) {
            (Some(q), Some(s)) => {
                let (lo, hi) = act_codes(q.act_bits.at(0), false);
                fake_quant(x, s.clone(), lo as f32, hi as f32)
            }
            _ => x,
        };
        let site_kinds = sites(arch);
        let (mut p, mut site) = (0, 0);
        let want_ranges = probe.is_some();
        let mut quantize_site = |x: Tensor<4>, site: usize, x_scale: &mut Option<Tensor<4>>| -> Tensor<4> {
            if let Some(p) = probe.as_deref_mut() {
                p.values.push(x.clone().detach());
            }
            match quant {
                Some(q) => {
                    let s = scalar_as(self.log_scales.val().slice(site..site + 1).exp());
                    *x_scale = Some(s.clone().detach());
                    let (lo, hi) = act_codes(q.act_bits.at(site + 1), site_kinds[site].nonneg);
                    fake_quant(x, s, lo as f32, hi as f32)
                }
                None => x,
            }
        };
        // The (fake-quantized) weights of layer `p`, and the real value of one weight step of each
        // output channel, shaped `[1, out, 1, 1]` like the layer's output.
        let weight = |p: usize| -> (Tensor<4>, Option<Tensor<4>>) {
            let w = self.weights[p].val();
            let Some(q) = quant else { return (w, None) };
            let qmax = weight_qmax(q.weight_bits.at(p)) as f32;
            let max = if q.per_channel_weights { w.clone().abs().max_dim(1).max_dim(2).max_dim(3) } else { scalar_as::<4>(w.clone().abs().max().reshape([1])) };
            let s = (max.detach() / qmax).clamp_min(1e-12);
            let wq = fake_quant(w, s.clone(), -qmax, qmax);
            (wq, Some(s.swap_dims(0, 1)))
        };
        // The accumulator of `site`'s lookup (integer step worth `unit`), rounded when the lookups round.
        let mut acc_ranges = Vec::new();
        let mut round = |acc: Tensor<4>, unit: Option<Tensor<4>>, site: usize| {
            let Some(unit) = unit else { return acc };
            if want_ranges {
                acc_ranges.push(acc_range(acc.clone(), unit.clone()));
            }
            match quant.and_then(|q| q.rounding.as_ref()) {
                Some(r) => round_accumulator(acc, unit, r.acc_bits[site].saturating_sub(r.bits), r.centres[site], r.noise),
                None => acc,
            }
        };
        for (i, layer) in arch.layers.iter().enumerate() {
            match *layer {
                Layer::Conv { out, stride, pad, .. } => {
                    let (w, w_scale) = weight(p);
                    let options = ConvOptions::new([stride; 2], [pad; 2], [1, 1], 1);
                    let acc = if quant.is_none() && self.conv_dtype != FloatDType::F32 {
                        conv2d(x.cast(self.conv_dtype), w.cast(self.conv_dtype), None, options).cast(FloatDType::F32)
                    } else {
                        conv2d(x, w, None, options)
                    };
                    let unit = w_scale.zip(x_scale.clone()).map(|(a, b)| a * b);
                    x = round(acc, unit, site) + self.biases[p].val().reshape([1, out, 1, 1]);
                    if let Some(bn) = self.norms.get(p) {
                        x = bn.forward(x);
                    }
                    p += 1;
                    if matches!(arch.layers.get(i + 1), Some(Layer::Relu)) {
                        x = relu(x);
                    }
                    x = quantize_site(x, site, &mut x_scale);
                    site += 1;
                }
                Layer::Relu | Layer::AvgPool { k: 1, stride: 1 } => {}
                Layer::AvgPool { k, stride } => {
                    // The circuit sums the k² codes; the lookup divides.
                    let unit = x_scale.clone().map(|s| s / (k * k) as f32);
                    x = round(avg_pool2d(x, AvgPoolOptions::new([k; 2]).with_stride([stride; 2])), unit, site);
                    x = quantize_site(x, site, &mut x_scale);
                    site += 1;
                }
                Layer::Linear { out } => {
                    let [n, c, h, w] = x.dims();
                    let flat = x.clone().reshape([n, c * h * w]);
                    let wt = weight(p).0.reshape([out, c * h * w]).transpose();
                    if let Some(probe) = probe {
                        probe.acc_ranges = acc_ranges;
                    }
                    return flat.matmul(wt) + self.biases[p].val().reshape([1, out]);
                }
            }
        }
        unreachable!("architectures end with a linear layer")
    }
}

/// The float values of a tensor.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("float tensor")
}

/// Held by the tests that draw from the backend's random generator, which is global: the
/// lookup noise of [`round_accumulator`] is reproducible from its seed only while no other
/// thread draws (true of a `train` process, not of tests running side by side).
#[cfg(test)]
pub(crate) static RANDOM_DRAWS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qat_rounds_an_accumulator_as_the_circuit_does_about_any_centre() {
        use cifhe_core::rounding::StageRounding;
        let device = Device::flex();
        let accs: Vec<f32> = (-40..40).map(|a| a as f32).collect();
        // A unit of 0.25: the accumulators are the codes times 0.25, as QAT holds them.
        let unit = Tensor::<4>::from_data(TensorData::new(vec![0.25f32], [1, 1, 1, 1]), &device);
        let x = Tensor::<4>::from_data(TensorData::new(accs.iter().map(|a| a * 0.25).collect::<Vec<_>>(), [1, 1, 1, accs.len()]), &device);
        for centre in [0, 1, 3, -6] {
            let rounding = StageRounding::new(8, centre, Some(5));
            let got = to_vec(round_accumulator(x.clone(), unit.clone(), rounding.lsbs, centre, 0.0));
            for (acc, v) in accs.iter().zip(got) {
                let want = (rounding.round(*acc as i32) << rounding.lsbs) + centre;
                assert_eq!(v, want as f32 * 0.25, "accumulator {acc}, centre {centre}");
            }
        }
    }

    #[test]
    fn noisy_rounding_moves_inputs_as_the_simulators_noise_model_says() {
        use cifhe_core::rounding::StageRounding;
        use cifhe_core::NoiseModel;
        let _draws = RANDOM_DRAWS.lock().unwrap_or_else(|e| e.into_inner());
        let device = Device::flex();
        device.seed(3);
        let (lsbs, centre, sigma, n) = (3, 5, 0.3f32, 20_000);
        let noise = NoiseModel::from_sigma(f64::from(sigma));
        let rounding = StageRounding::new(10, centre, Some(7));
        assert_eq!(rounding.lsbs, lsbs);
        let unit = Tensor::<4>::from_data(TensorData::new(vec![1f32], [1, 1, 1, 1]), &device);
        // Accumulators at every fraction of a rounded step, each drawn n times.
        for acc in 0..8 {
            let x = Tensor::<4>::from_data(TensorData::new(vec![acc as f32; n], [1, 1, 1, n]), &device);
            let r = rounding.round(acc);
            let f = (rounding.low_bits(acc) as f64 + 0.5) / 8.0 - 0.5;
            let got = to_vec(round_accumulator(x, unit.clone(), lsbs, centre, sigma));
            for j in -1..=1 {
                let seen = got.iter().filter(|&&v| v == (((r + j) << lsbs) + centre) as f32).count() as f64 / n as f64;
                let want = noise.p_offset(f, j);
                let tolerance = 5.0 * (want * (1.0 - want) / n as f64).sqrt() + 1e-3;
                assert!((seen - want).abs() < tolerance, "accumulator {acc}, offset {j}: {seen} against {want}");
            }
        }
    }

    #[test]
    fn bf16_convolutions_round_the_float_forward_only() {
        let arch = Arch::by_name("tiny", 10, 1.0).unwrap();
        let device = Device::flex();
        let net = Net::from_float(&FloatNet::random(arch.clone(), (3, 32, 32), 1), &device);
        let bf16 = net.clone().with_conv_dtype(FloatDType::BF16);
        let pixels: Vec<f32> = (0..4 * 3 * 32 * 32).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
        let x = Tensor::<4>::from_data(TensorData::new(pixels, [4, 3, 32, 32]), &device);
        let logits = |net: &Net, quant: Option<&Quant>| to_vec(net.forward(x.clone(), &arch, quant, None));
        let (exact, rounded) = (logits(&net, None), logits(&bf16, None));
        let largest = exact.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = exact.iter().zip(&rounded).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        // bfloat16 keeps 8 significant bits: the logits move, a little.
        assert!(worst > 0.0 && worst < 0.05 * largest, "largest logit {largest}, worst difference {worst}");
        let quant = Quant { weight_bits: Widths::uniform(5), per_channel_weights: false, act_bits: Widths::uniform(5), input_scale: 0.05, rounding: None };
        assert_eq!(logits(&net, Some(&quant)), logits(&bf16, Some(&quant)), "QAT must compute the circuit's accumulators");
    }

    #[test]
    fn bf16_training_steps_keep_gradients_and_running_statistics_in_f32() {
        let arch = Arch::by_name("tiny", 10, 1.0).unwrap();
        let device = Device::flex().autodiff();
        let float = FloatNet::random(arch.clone(), (3, 32, 32), 1);
        let net = |dtype| Net::from_float(&float, &device).with_norms(None, &device).with_conv_dtype(dtype);
        let (f32_net, bf16_net) = (net(FloatDType::F32), net(FloatDType::BF16));
        let pixels: Vec<f32> = (0..4 * 3 * 32 * 32).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
        let x = Tensor::<4>::from_data(TensorData::new(pixels, [4, 3, 32, 32]), &device);
        let grads = |net: &Net| {
            let grads = net.forward(x.clone(), &arch, None, None).powi_scalar(2).mean().backward();
            let g = net.weights[0].grad(&grads).expect("the first convolution's weights get a gradient");
            assert_eq!(g.dtype(), burn::tensor::DType::F32, "gradients reach the f32 parameters as f32");
            to_vec(g)
        };
        let (exact, rounded) = (grads(&f32_net), grads(&bf16_net));
        let norm = |v: &mut dyn Iterator<Item = f32>| v.map(|a| a * a).sum::<f32>().sqrt();
        let error = norm(&mut exact.iter().zip(&rounded).map(|(a, b)| a - b)) / norm(&mut exact.iter().copied());
        // bfloat16 convolutions move this gradient by 6% (relative 2-norm); batch norms computed in
        // bfloat16 too moved it by 17%, which is why they stay f32.
        assert!(error > 0.0 && error < 0.1, "relative error of the bf16 gradient {error}");
        // Both batch norms saw the same batch and moved their running statistics alike, in f32.
        assert_eq!(bf16_net.norms[0].running_mean.value().dtype(), burn::tensor::DType::F32);
        for (a, b) in f32_net.norm_states().iter().zip(bf16_net.norm_states()) {
            for (u, v) in a[2].iter().chain(&a[3]).zip(b[2].iter().chain(&b[3])) {
                assert!((u - v).abs() <= 0.02 * u.abs().max(0.1), "running statistics {u} (f32) and {v} (bf16)");
            }
        }
    }
}
