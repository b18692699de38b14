//! The compiled circuit: what the trainer writes and every executor (simulator, TFHE, browser) runs.
//!
//! [`ModelFile`] is the wire form (postcard payload, weights borrowed zero-copy from the bytes);
//! [`Model`] is a `ModelFile` that passed [`Model::from_bytes`]'s validation, together with the
//! shape and code range of every stage, so that executors never re-derive or re-check them.
//!
//! Layouts (fixed by the format, chosen so the fast kernels read the bytes in place):
//! - images enter as channel planes of `height × width` u8 pixels (CIFAR's own order);
//! - convolution and linear weights are `i8` codes in *blocked* order
//!   `[out / 16][ky][kx][in / 4][16][4]`, with the output channels padded to a multiple of 16 and
//!   the input channels to a multiple of 4 by zeros (see [`weight_index`]). A linear stage is a
//!   convolution whose kernel covers its whole input, flattened in (y, x, channel) order;
//! - lookup thresholds are `i32` little endian in `[level][channel]` order (see [`Lookup`]).
use crate::error::ModelError;
use crate::format;
use serde::{Deserialize, Serialize};

/// Most stages a model may have.
pub const MAX_STAGES: usize = 48;
/// Most channels (or features) of any tensor.
pub const MAX_CHANNELS: usize = 4096;
/// Output channels per weight block: one 512-bit register of i32 accumulators.
pub const BLOCK_OUT: usize = 16;
/// Input channels per weight group: one i32 lane of a VNNI dot product.
pub const GROUP_IN: usize = 4;
/// Stage index used in errors about the model as a whole.
const WHOLE: usize = usize::MAX;

/// Rounds `n` up to a multiple of `m`.
pub const fn round_up(n: usize, m: usize) -> usize {
    n.div_ceil(m) * m
}

/// Index of weight `(o, c, ky, kx)` in the blocked layout of a `kh × kw` kernel over `in_c` channels.
pub fn weight_index(o: usize, c: usize, ky: usize, kx: usize, in_c: usize, kh: usize, kw: usize) -> usize {
    let c4 = round_up(in_c, GROUP_IN);
    let block = o / BLOCK_OUT;
    let tap = ky * kw + kx;
    (((block * kh * kw + tap) * (c4 / GROUP_IN) + c / GROUP_IN) * BLOCK_OUT + o % BLOCK_OUT) * GROUP_IN + c % GROUP_IN
}

/// Bytes of a blocked weight tensor.
pub fn weight_len(out_c: usize, in_c: usize, kh: usize, kw: usize) -> usize {
    round_up(out_c, BLOCK_OUT) * kh * kw * round_up(in_c, GROUP_IN)
}

/// The wire form of a compiled model: the postcard payload of a model file.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ModelFile<'a> {
    /// Short name, e.g. `vgg11-cifar10`.
    pub name: &'a str,
    /// Provenance: how the model was made (command, data, hours), shown by the tools.
    pub description: &'a str,
    /// Class names, one per line (may be empty).
    pub labels: &'a str,
    /// Quantization of the clear image into input codes.
    #[serde(borrow)]
    pub input: InputQuant<'a>,
    /// The circuit, in order.
    #[serde(borrow)]
    pub stages: heapless::Vec<Stage<'a>, MAX_STAGES>,
    /// Bits kept by the rounding before each lookup; `None` keeps the whole accumulator.
    pub rounding_bits: Option<u8>,
    /// Dequantization of the last accumulators into logits (in the clear, after decryption).
    #[serde(borrow)]
    pub output: Dequant<'a>,
}

/// Input quantization with the per-channel normalisation folded in: a 256-entry table per channel.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct InputQuant<'a> {
    /// Image channels.
    pub channels: u16,
    /// Image height.
    pub height: u16,
    /// Image width.
    pub width: u16,
    /// `table[c * 256 + pixel]` is the input code (an `i8`) of that pixel value in channel `c`.
    pub table: &'a [u8],
}

/// One stage of the circuit.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum Stage<'a> {
    /// 2-D convolution of codes into accumulators.
    Conv(#[serde(borrow)] Conv<'a>),
    /// Sum over windows (an average pool without its 1/k², which goes into the next lookup).
    SumPool(SumPool),
    /// Dense layer over the whole input, flattened as (y, x, channel).
    Linear(#[serde(borrow)] Linear<'a>),
    /// One monotone table per channel on the rounded accumulator: a PBS per element in TFHE.
    Lookup(#[serde(borrow)] Lookup<'a>),
}

/// A 2-D convolution: any kernel, stride and zero padding; weights in the blocked layout.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Conv<'a> {
    /// Output channels.
    pub out_channels: u16,
    /// Kernel height.
    pub kernel_h: u8,
    /// Kernel width.
    pub kernel_w: u8,
    /// Stride, both directions.
    pub stride: u8,
    /// Zero padding (of the input *codes*, i.e. real value zero), both directions.
    pub padding: u8,
    /// `i8` weight codes, blocked layout.
    pub weights: &'a [u8],
}

/// Window sum with no padding.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct SumPool {
    /// Window side.
    pub kernel: u8,
    /// Stride.
    pub stride: u8,
}

/// Dense layer; weights as a convolution whose kernel is the whole input.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Linear<'a> {
    /// Output features.
    pub out_features: u16,
    /// `i8` weight codes, blocked layout with `kernel = input height × width`.
    pub weights: &'a [u8],
}

/// A lookup: `code = out_lo + #{ l : thresholds[l][ch] <= acc }`, read after rounding `acc − centre`
/// (see [`crate::rounding`]).
///
/// Every lookup of a quantized network (rescale, bias, ReLU, 1/k², requantize) is a non-decreasing
/// step function of the accumulator, so it is stored exactly by the accumulator values where the
/// output code steps up. That keeps it exact for *any* rounding chosen at run time: after rounding
/// away `lsbs` bits the table a PBS needs is `T[r] = f((r << lsbs) + centre)`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Lookup<'a> {
    /// Declared signed width of the accumulator about its centre: values lie in
    /// `centre + [-2^(b-1), 2^(b-1))`. Rounding to `R` bits drops `acc_bits - R` low bits.
    pub acc_bits: u8,
    /// Subtracted from the accumulator before rounding, so that the width covers the
    /// accumulator's span rather than twice its larger side (format version 2; 0 in version 1).
    pub centre: i32,
    /// Smallest output code.
    pub out_lo: i8,
    /// Largest output code.
    pub out_hi: i8,
    /// `(out_hi - out_lo) × channels` thresholds, `i32` little endian, `[level][channel]`,
    /// non-decreasing along the levels of each channel.
    pub thresholds: &'a [u8],
    /// Accumulator range observed on the calibration set (min, max).
    pub calibrated: (i32, i32),
}

/// Dequantization of the final accumulators: `logit[k] = acc[k] * scale[k] + offset[k]`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Dequant<'a> {
    /// `f32` little endian per class.
    pub scale: &'a [u8],
    /// `f32` little endian per class.
    pub offset: &'a [u8],
}

impl Conv<'_> {
    /// The weights as signed codes.
    pub fn weights(&self) -> &[i8] {
        bytemuck::cast_slice(self.weights)
    }
}

impl Linear<'_> {
    /// The weights as signed codes.
    pub fn weights(&self) -> &[i8] {
        bytemuck::cast_slice(self.weights)
    }
}

impl Lookup<'_> {
    /// Number of thresholds per channel (output levels minus one).
    pub fn levels(&self) -> usize {
        (self.out_hi as i16 - self.out_lo as i16) as usize
    }

    /// Threshold `level` of channel `ch` among `channels`.
    pub fn threshold(&self, level: usize, ch: usize, channels: usize) -> i32 {
        let i = 4 * (level * channels + ch);
        i32::from_le_bytes([self.thresholds[i], self.thresholds[i + 1], self.thresholds[i + 2], self.thresholds[i + 3]])
    }

    /// The output code of channel `ch` for accumulator value `acc` (no rounding): the lookup's meaning.
    pub fn apply(&self, acc: i32, ch: usize, channels: usize) -> i8 {
        let steps = (0..self.levels()).filter(|&l| self.threshold(l, ch, channels) <= acc).count();
        (self.out_lo as i16 + steps as i16) as i8
    }
}

impl Dequant<'_> {
    /// The logit of class `k` for its final accumulator.
    pub fn logit(&self, k: usize, acc: i32) -> f32 {
        let f = |b: &[u8]| f32::from_le_bytes([b[4 * k], b[4 * k + 1], b[4 * k + 2], b[4 * k + 3]]);
        acc as f32 * f(self.scale) + f(self.offset)
    }

    /// Class probabilities (the softmax of the logits) for the final accumulators `acc`, into
    /// `probs` (one per class; extra entries are left alone).
    pub fn probabilities(&self, acc: &[i32], probs: &mut [f32]) {
        let probs = &mut probs[..acc.len()];
        for (k, (p, &a)) in probs.iter_mut().zip(acc).enumerate() {
            *p = self.logit(k, a);
        }
        let max = probs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for p in probs.iter_mut() {
            *p = libm::expf(*p - max);
            sum += *p;
        }
        probs.iter_mut().for_each(|p| *p /= sum);
    }
}

/// Height, width and channels of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// Channels.
    pub c: usize,
}

impl Shape {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.h * self.w * self.c
    }
    /// Whether the tensor is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Range of the codes a tensor of codes holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CodeRange {
    /// Smallest code.
    pub lo: i32,
    /// Largest code.
    pub hi: i32,
}

impl CodeRange {
    /// Offset added to codes so that they are stored as `u8` (the unsigned operand of the kernels).
    pub fn zero_point(&self) -> i32 {
        (-self.lo).max(0)
    }
}

/// What validation derived for one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StageInfo {
    /// Shape of the stage's input.
    pub input: Shape,
    /// Shape of the stage's output.
    pub output: Shape,
    /// For linear stages: the range of the input codes. For lookups: the range of the output codes.
    pub codes: CodeRange,
    /// For convolutions and linear stages: the largest weight magnitude (it decides which kernels are exact).
    pub max_abs_weight: i32,
}

/// A validated model: the wire form plus derived shapes. Cheap to copy around by reference.
#[derive(Debug, Clone)]
pub struct Model<'a> {
    file: ModelFile<'a>,
    info: heapless::Vec<StageInfo, MAX_STAGES>,
    input_codes: CodeRange,
}

impl<'a> ModelFile<'a> {
    /// The same circuit with every lookup's accumulator declared about the centre of its
    /// calibrated range ([`crate::analysis::centring`]): a bit narrower where the range is
    /// one-sided, so rounding to `R` bits keeps a finer step. Unrounded, nothing changes.
    pub fn with_centred_lookups(mut self) -> Self {
        for stage in self.stages.iter_mut() {
            if let Stage::Lookup(l) = stage {
                let (lo, hi) = l.calibrated;
                let (centre, bits) = crate::analysis::centring(lo as i64, hi as i64);
                (l.centre, l.acc_bits) = (centre, bits as u8);
            }
        }
        self
    }

    /// Encodes the model (header and payload) into `buf`, returning the bytes written. No allocator.
    pub fn encode_into<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], ModelError> {
        if buf.len() < format::HEADER_LEN {
            return Err(ModelError::BufferTooSmall);
        }
        let (header, body) = buf.split_at_mut(format::HEADER_LEN);
        let n = postcard::to_slice(self, body).map_err(|_| ModelError::BufferTooSmall)?.len();
        format::write_header(&body[..n], header)?;
        Ok(&mut buf[..format::HEADER_LEN + n])
    }

    /// Encodes the model (header and payload) into a new vector.
    #[cfg(feature = "std")]
    pub fn to_bytes(&self) -> Vec<u8> {
        let payload = postcard::to_stdvec(self).expect("serializing into a Vec cannot fail");
        let mut out = vec![0u8; format::HEADER_LEN];
        format::write_header(&payload, &mut out).expect("header fits");
        out.extend_from_slice(&payload);
        out
    }
}

impl<'a> Model<'a> {
    /// Checks the envelope, decodes the payload zero-copy and validates the circuit.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, ModelError> {
        let (version, payload) = format::open(bytes)?;
        let (file, rest) = match version {
            1 => postcard::take_from_bytes::<v1::ModelFile<'a>>(payload).map(|(f, rest)| (f.into(), rest)),
            _ => postcard::take_from_bytes::<ModelFile<'a>>(payload),
        }
        .map_err(|_| ModelError::Decode)?;
        if !rest.is_empty() {
            return Err(ModelError::invalid(WHOLE, "trailing bytes after the model payload"));
        }
        Self::new(file)
    }

    /// Validates a model built in memory (as the trainer does before writing it).
    pub fn new(file: ModelFile<'a>) -> Result<Self, ModelError> {
        let inq = &file.input;
        let shape = Shape { h: inq.height as usize, w: inq.width as usize, c: inq.channels as usize };
        if shape.is_empty() || shape.c > MAX_CHANNELS {
            return Err(ModelError::invalid(WHOLE, "input shape is empty or has too many channels"));
        }
        if inq.table.len() != shape.c * 256 {
            return Err(ModelError::invalid(WHOLE, "input table must have 256 entries per channel"));
        }
        let codes: &[i8] = bytemuck::cast_slice(inq.table);
        let input_codes = CodeRange { lo: codes.iter().copied().min().unwrap_or(0) as i32, hi: codes.iter().copied().max().unwrap_or(0) as i32 };
        let mut info = heapless::Vec::new();
        let mut cur = shape;
        let mut cur_codes = Some(input_codes);
        for (i, stage) in file.stages.iter().enumerate() {
            let (out, codes) = Self::check_stage(i, stage, cur, cur_codes)?;
            let max_abs_weight = match stage {
                Stage::Conv(c) => max_abs(c.weights()),
                Stage::Linear(l) => max_abs(l.weights()),
                _ => 0,
            };
            let codes = codes.unwrap_or(cur_codes.unwrap_or_default());
            let record = StageInfo { input: cur, output: out, codes, max_abs_weight };
            info.push(record).map_err(|_| ModelError::invalid(i, "too many stages"))?;
            cur_codes = if matches!(stage, Stage::Lookup(_)) { Some(codes) } else { None };
            cur = out;
        }
        match file.stages.last() {
            Some(Stage::Conv(_) | Stage::Linear(_) | Stage::SumPool(_)) => {}
            _ => return Err(ModelError::invalid(WHOLE, "the last stage must be a linear stage (its accumulators are the output)")),
        }
        if cur.h != 1 || cur.w != 1 {
            return Err(ModelError::invalid(WHOLE, "the output must be 1×1 spatially (one accumulator per class)"));
        }
        if file.output.scale.len() != 4 * cur.c || file.output.offset.len() != 4 * cur.c {
            return Err(ModelError::invalid(WHOLE, "dequantization needs one f32 scale and offset per class"));
        }
        if !file.labels.is_empty() && file.labels.lines().count() != cur.c {
            return Err(ModelError::invalid(WHOLE, "the number of labels differs from the number of classes"));
        }
        if let Some(r) = file.rounding_bits {
            if r == 0 || r > 24 {
                return Err(ModelError::invalid(WHOLE, "rounding bits must be between 1 and 24"));
            }
        }
        Ok(Model { file, info, input_codes })
    }

    /// Checks one stage against its input; returns its output shape and (for lookups) output codes.
    fn check_stage(i: usize, stage: &Stage<'_>, inp: Shape, in_codes: Option<CodeRange>) -> Result<(Shape, Option<CodeRange>), ModelError> {
        let needs_codes =
            |codes: Option<CodeRange>| codes.ok_or(ModelError::invalid(i, "a linear stage must read codes (the output of a lookup or the input)"));
        match stage {
            Stage::Conv(c) => {
                needs_codes(in_codes)?;
                let (kh, kw, s, p) = (c.kernel_h as usize, c.kernel_w as usize, c.stride as usize, c.padding as usize);
                if kh == 0 || kw == 0 || s == 0 {
                    return Err(ModelError::invalid(i, "kernel and stride must be positive"));
                }
                if inp.h + 2 * p < kh || inp.w + 2 * p < kw {
                    return Err(ModelError::invalid(i, "kernel larger than the padded input"));
                }
                let out = Shape { h: (inp.h + 2 * p - kh) / s + 1, w: (inp.w + 2 * p - kw) / s + 1, c: c.out_channels as usize };
                check_weights(i, c.weights(), out.c, inp.c, kh, kw)?;
                Ok((out, None))
            }
            Stage::Linear(l) => {
                needs_codes(in_codes)?;
                let out = Shape { h: 1, w: 1, c: l.out_features as usize };
                check_weights(i, l.weights(), out.c, inp.c, inp.h, inp.w)?;
                Ok((out, None))
            }
            Stage::SumPool(p) => {
                needs_codes(in_codes)?;
                let (k, s) = (p.kernel as usize, p.stride as usize);
                if k == 0 || s == 0 || k > inp.h || k > inp.w {
                    return Err(ModelError::invalid(i, "pool window must be positive and fit the input"));
                }
                Ok((Shape { h: (inp.h - k) / s + 1, w: (inp.w - k) / s + 1, c: inp.c }, None))
            }
            Stage::Lookup(l) => {
                if in_codes.is_some() {
                    return Err(ModelError::invalid(i, "a lookup must read the accumulators of a linear stage"));
                }
                if l.out_hi < l.out_lo {
                    return Err(ModelError::invalid(i, "lookup output range is empty"));
                }
                if l.acc_bits == 0 || l.acc_bits > 31 {
                    return Err(ModelError::invalid(i, "accumulator width must be between 1 and 31 bits"));
                }
                if l.thresholds.len() != 4 * l.levels() * inp.c {
                    return Err(ModelError::invalid(i, "lookup needs (out_hi - out_lo) thresholds per channel"));
                }
                for ch in 0..inp.c {
                    for lv in 1..l.levels() {
                        if l.threshold(lv, ch, inp.c) < l.threshold(lv - 1, ch, inp.c) {
                            return Err(ModelError::invalid(i, "lookup thresholds must be non-decreasing"));
                        }
                    }
                }
                Ok((inp, Some(CodeRange { lo: l.out_lo as i32, hi: l.out_hi as i32 })))
            }
        }
        .and_then(|(out, codes)| {
            if out.c == 0 || out.c > MAX_CHANNELS {
                return Err(ModelError::invalid(i, "channel count must be between 1 and 4096"));
            }
            if let (Some(c), false) = (in_codes, matches!(stage, Stage::Lookup(_))) {
                // Unsigned operands of the kernels: code + zero point must fit a u8, and the exact
                // i32 accumulator must not overflow: K · 255 · 128 < 2^31 holds for K < 65 793.
                if c.hi + c.zero_point() > 255 {
                    return Err(ModelError::invalid(i, "input codes span more than 8 bits"));
                }
                if inp.c * inp.h.max(1) * inp.w.max(1) > 65_000 && matches!(stage, Stage::Linear(_)) {
                    return Err(ModelError::invalid(i, "dot products longer than 65,000 terms could overflow i32"));
                }
            }
            Ok((out, codes))
        })
    }

    /// The wire form.
    pub fn file(&self) -> &ModelFile<'a> {
        &self.file
    }
    /// The stages.
    pub fn stages(&self) -> &[Stage<'a>] {
        &self.file.stages
    }
    /// What validation derived for each stage.
    pub fn info(&self) -> &[StageInfo] {
        &self.info
    }
    /// Range of the input codes.
    pub fn input_codes(&self) -> CodeRange {
        self.input_codes
    }
    /// Input shape (channels, height, width of the image).
    pub fn input_shape(&self) -> Shape {
        let i = &self.file.input;
        Shape { h: i.height as usize, w: i.width as usize, c: i.channels as usize }
    }
    /// Bytes of one input image (channel planes).
    pub fn image_len(&self) -> usize {
        self.input_shape().len()
    }
    /// Number of classes (final accumulators).
    pub fn classes(&self) -> usize {
        self.info.last().map_or(0, |s| s.output.c)
    }
    /// Class name of `k`, if the model carries labels.
    pub fn label(&self, k: usize) -> Option<&'a str> {
        self.file.labels.lines().nth(k)
    }
    /// Class name of `k`, or its number when the model carries no labels: what to show a person.
    #[cfg(feature = "std")]
    pub fn class_name(&self, k: usize) -> String {
        self.label(k).map_or_else(|| k.to_string(), String::from)
    }
    /// The model's own rounding setting.
    pub fn rounding_bits(&self) -> Option<u8> {
        self.file.rounding_bits
    }
    /// Quantizes one pixel value of channel `c` into its input code.
    pub fn input_code(&self, c: usize, pixel: u8) -> i8 {
        self.file.input.table[c * 256 + pixel as usize] as i8
    }
}

fn max_abs(w: &[i8]) -> i32 {
    w.iter().map(|&v| (v as i32).abs()).max().unwrap_or(0)
}

fn check_weights(i: usize, w: &[i8], out_c: usize, in_c: usize, kh: usize, kw: usize) -> Result<(), ModelError> {
    if w.len() != weight_len(out_c, in_c, kh, kw) {
        return Err(ModelError::invalid(i, "weight count does not match the blocked layout of this shape"));
    }
    // The kernels read padded lanes, so padding must be zero for them to agree with the definition.
    // Index = (((block·taps + tap)·groups + group)·16 + o%16)·4 + c%4, see `weight_index`.
    let c4 = round_up(in_c, GROUP_IN);
    let per_block = BLOCK_OUT * c4 * kh * kw;
    for (idx, &v) in w.iter().enumerate() {
        let c = idx % GROUP_IN + GROUP_IN * ((idx / (GROUP_IN * BLOCK_OUT)) % (c4 / GROUP_IN));
        let o = (idx / GROUP_IN) % BLOCK_OUT + BLOCK_OUT * (idx / per_block);
        if v != 0 && (c >= in_c || o >= out_c) {
            return Err(ModelError::invalid(i, "padding lanes of the weights must be zero"));
        }
    }
    Ok(())
}

/// Format version 1, decoded into the current layout: its lookups had no centre.
mod v1 {
    use super::{Conv, Dequant, InputQuant, Linear, SumPool, MAX_STAGES};
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct ModelFile<'a> {
        name: &'a str,
        description: &'a str,
        labels: &'a str,
        #[serde(borrow)]
        input: InputQuant<'a>,
        #[serde(borrow)]
        stages: heapless::Vec<Stage<'a>, MAX_STAGES>,
        rounding_bits: Option<u8>,
        #[serde(borrow)]
        output: Dequant<'a>,
    }

    #[derive(Deserialize)]
    enum Stage<'a> {
        Conv(#[serde(borrow)] Conv<'a>),
        SumPool(SumPool),
        Linear(#[serde(borrow)] Linear<'a>),
        Lookup(#[serde(borrow)] Lookup<'a>),
    }

    #[derive(Deserialize)]
    struct Lookup<'a> {
        acc_bits: u8,
        out_lo: i8,
        out_hi: i8,
        thresholds: &'a [u8],
        calibrated: (i32, i32),
    }

    impl<'a> From<ModelFile<'a>> for super::ModelFile<'a> {
        fn from(f: ModelFile<'a>) -> Self {
            let stages = f
                .stages
                .into_iter()
                .map(|s| match s {
                    Stage::Conv(c) => super::Stage::Conv(c),
                    Stage::SumPool(p) => super::Stage::SumPool(p),
                    Stage::Linear(l) => super::Stage::Linear(l),
                    Stage::Lookup(l) => super::Stage::Lookup(super::Lookup {
                        acc_bits: l.acc_bits,
                        centre: 0,
                        out_lo: l.out_lo,
                        out_hi: l.out_hi,
                        thresholds: l.thresholds,
                        calibrated: l.calibrated,
                    }),
                })
                .collect();
            super::ModelFile {
                name: f.name,
                description: f.description,
                labels: f.labels,
                input: f.input,
                stages,
                rounding_bits: f.rounding_bits,
                output: f.output,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Dequant;

    #[test]
    fn probabilities_are_the_softmax_of_the_logits() {
        // logits: 2·0.5 + 0 = 1, 1·1 + 2 = 3, 4·0.5 + 0 = 2, -1·50 + 0 = -50
        let f = |v: [f32; 4]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<heapless::Vec<u8, 16>>();
        let (scale, offset) = (f([0.5, 1.0, 0.5, 50.0]), f([0.0, 2.0, 0.0, 0.0]));
        let out = Dequant { scale: &scale, offset: &offset };
        let mut p = [0.0f32; 5];
        out.probabilities(&[2, 1, 4, -1], &mut p);
        assert!((p[..4].iter().sum::<f32>() - 1.0).abs() < 1e-6, "{p:?}");
        assert!(p[1] > p[2] && p[2] > p[0] && p[0] > p[3], "{p:?}");
        assert!((p[1] / p[2] - core::f32::consts::E).abs() < 1e-4, "one logit apart: a factor e");
        assert_eq!(p[4], 0.0, "entries past the classes are left alone");
    }
}
