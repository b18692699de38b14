//! The FHE simulator: the compiled circuit evaluated in the clear, with the errors TFHE would make.
//!
//! Per image it quantizes the pixels, runs each linear stage with the integer kernels, and at each
//! lookup rounds the accumulators, lets the [`Sampler`] perturb them as the PBS noise would, and
//! applies the tables. No allocation: everything lives in the caller's scratch arena.
use crate::error::RunError;
use crate::kernels::{self, ConvGeom, Isa};
use crate::model::{round_up, Lookup, Model, Shape, Stage, StageInfo};
use crate::noise::{self, NoiseModel, Sampler, StageNoise};
use crate::rounding::{RoundingMode, StageRounding};
use core::ops::ControlFlow;

/// How to run a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunConfig {
    /// Bits kept before each lookup (`None`: no rounding).
    pub rounding_bits: Option<u8>,
    /// Exact or approximate rounding.
    pub mode: RoundingMode,
    /// PBS noise at each lookup input, per stage.
    pub noise: StageNoise,
    /// Seed of the noise; image `i` of a run uses the stream `(seed, i)`.
    pub seed: u64,
    /// Convolution kernels to use (must be available on this CPU).
    pub isa: Isa,
}

impl RunConfig {
    /// The model's own rounding, exact mode, Concrete's default `p_error` of 2^-40, the fastest kernels.
    pub fn new(model: &Model<'_>) -> Self {
        RunConfig {
            rounding_bits: model.rounding_bits(),
            mode: RoundingMode::Exact,
            noise: NoiseModel::from_p_error(noise::DEFAULT_P_ERROR).into(),
            seed: 0,
            isa: Isa::detect(),
        }
    }
}

/// What happened during one run, beyond the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunStats {
    /// Lookups evaluated (PBS in TFHE).
    pub lookups: u64,
    /// Lookup inputs the noise moved.
    pub noise_events: u64,
    /// Accumulators outside their declared width (wrapped on the torus, as TFHE wraps them).
    pub overflows: u64,
}

impl core::ops::AddAssign for RunStats {
    fn add_assign(&mut self, o: Self) {
        self.lookups += o.lookups;
        self.noise_events += o.noise_events;
        self.overflows += o.overflows;
    }
}

/// Where the codes a linear stage reads are stored: channels-last, padded for that stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CodeLayout {
    shape: Shape,
    pad: usize,
    c4: usize,
}

impl CodeLayout {
    fn rows(&self) -> usize {
        self.shape.h + 2 * self.pad
    }
    fn cols(&self) -> usize {
        self.shape.w + 2 * self.pad
    }
    fn len(&self) -> usize {
        self.rows() * self.cols() * self.c4
    }
    fn offset(&self, y: usize, x: usize) -> usize {
        ((y + self.pad) * self.cols() + x + self.pad) * self.c4
    }
}

/// Sizes, in `u64` words, of the scratch arena's regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Arena {
    codes: usize,
    acc: usize,
    thresholds: usize,
    vectors: usize,
}

impl Arena {
    fn total(&self) -> usize {
        self.codes + self.acc + self.thresholds + self.vectors + noise::TABLE_WORDS
    }
}

fn arena(model: &Model<'_>) -> Arena {
    let mut a = Arena { codes: code_layout(model, 0).len().div_ceil(8), ..Arena::default() };
    let mut max_c = 0;
    for (i, (stage, info)) in model.stages().iter().zip(model.info()).enumerate() {
        max_c = max_c.max(info.output.c).max(info.input.c);
        match stage {
            Stage::Lookup(l) => {
                if i + 1 < model.stages().len() {
                    a.codes = a.codes.max(code_layout(model, i + 1).len().div_ceil(8));
                }
                a.thresholds = a.thresholds.max((l.levels() * info.output.c).div_ceil(2));
            }
            _ => a.acc = a.acc.max((info.output.h * info.output.w * round_up(info.output.c, 16)).div_ceil(2)),
        }
    }
    // Rounded values and counts of one position (2 × channels), or the weight sums of a stage (o16).
    a.vectors = round_up(max_c, 16);
    a
}

/// The layout the linear stage `i` reads its codes in.
fn code_layout(model: &Model<'_>, i: usize) -> CodeLayout {
    let shape = model.info()[i].input;
    let pad = match &model.stages()[i] {
        Stage::Conv(c) => c.padding as usize,
        _ => 0,
    };
    CodeLayout { shape, pad, c4: round_up(shape.c, 4) }
}

impl Model<'_> {
    /// Size of the scratch arena [`Simulator::run`] needs, in `u64` words.
    pub fn scratch_words(&self) -> usize {
        arena(self).total()
    }
}

/// Runs one model under one configuration.
#[derive(Debug, Clone)]
pub struct Simulator<'m, 'a> {
    model: &'m Model<'a>,
    cfg: RunConfig,
    arena: Arena,
}

impl<'m, 'a> Simulator<'m, 'a> {
    /// Checks the configuration against the model.
    pub fn new(model: &'m Model<'a>, cfg: RunConfig) -> Result<Self, RunError> {
        if let Some(bits) = cfg.rounding_bits {
            if bits == 0 || bits > 24 {
                return Err(RunError::BadRounding { bits });
            }
        }
        Ok(Simulator { model, cfg, arena: arena(model) })
    }

    /// The model.
    pub fn model(&self) -> &'m Model<'a> {
        self.model
    }

    /// The configuration.
    pub fn config(&self) -> &RunConfig {
        &self.cfg
    }

    /// Runs image number `index` (its noise stream) and writes the final accumulators, one per
    /// class, into `out` — what TFHE would decrypt.
    pub fn run(&self, image: &[u8], index: u64, scratch: &mut [u64], out: &mut [i32]) -> Result<RunStats, RunError> {
        self.run_traced(image, index, scratch, out, |_, _, _| ControlFlow::Continue(()))
    }

    /// [`Simulator::run`], showing `trace` the accumulators of every linear stage as they are
    /// computed: `(stage index, stage info, accumulators)`, channels-last with a channel stride
    /// rounded up to 16. Returning `Break` stops the run there (`out` is then left untouched).
    /// Calibration uses this to observe each stage's accumulators.
    pub fn run_traced(
        &self,
        image: &[u8],
        index: u64,
        scratch: &mut [u64],
        out: &mut [i32],
        mut trace: impl FnMut(usize, &StageInfo, &[i32]) -> ControlFlow<()>,
    ) -> Result<RunStats, RunError> {
        let m = self.model;
        if image.len() != m.image_len() {
            return Err(RunError::ImageSize { expected: m.image_len(), actual: image.len() });
        }
        if scratch.len() < self.arena.total() {
            return Err(RunError::ScratchTooSmall { needed: self.arena.total(), actual: scratch.len() });
        }
        if out.len() < m.classes() {
            return Err(RunError::OutputTooSmall { needed: m.classes(), actual: out.len() });
        }
        let (codes, rest) = scratch.split_at_mut(self.arena.codes);
        let (acc, rest) = rest.split_at_mut(self.arena.acc);
        let (thresholds, rest) = rest.split_at_mut(self.arena.thresholds);
        let (vectors, table) = rest.split_at_mut(self.arena.vectors);
        let codes: &mut [u8] = bytemuck::cast_slice_mut(codes);
        let acc: &mut [i32] = bytemuck::cast_slice_mut(acc);
        let thresholds: &mut [i32] = bytemuck::cast_slice_mut(thresholds);
        let vectors: &mut [i32] = bytemuck::cast_slice_mut(vectors);

        self.quantize_input(image, codes);
        let mut sampler = Sampler::new(NoiseModel::NONE, self.cfg.seed, index);
        let mut stats = RunStats::default();
        let mut zp = m.input_codes().zero_point();
        for (i, (stage, info)) in m.stages().iter().zip(m.info()).enumerate() {
            match stage {
                Stage::Conv(c) => {
                    let geom = conv_geom(code_layout(m, i), info, c.kernel_h as usize, c.kernel_w as usize, c.stride as usize);
                    self.linear(&geom, info, zp, codes, c.weights(), acc, vectors);
                }
                Stage::Linear(l) => {
                    let geom = conv_geom(code_layout(m, i), info, info.input.h, info.input.w, 1);
                    self.linear(&geom, info, zp, codes, l.weights(), acc, vectors);
                }
                Stage::SumPool(p) => {
                    let lay = code_layout(m, i);
                    let (k, s, o) = (p.kernel as usize, p.stride as usize, info.output);
                    let o16 = round_up(o.c, 16);
                    kernels::sum_pool(codes, lay.cols(), lay.c4, k, s, o.h, o.w, acc, o16);
                    let correction = (k * k) as i32 * zp;
                    if correction != 0 {
                        acc[..o.h * o.w * o16].iter_mut().for_each(|a| *a -= correction);
                    }
                }
                Stage::Lookup(l) => {
                    let lay = code_layout(m, i + 1);
                    sampler.set_noise(self.cfg.noise.at(i));
                    stats += self.lookup(l, info, lay, acc, codes, thresholds, vectors, table, &mut sampler);
                    zp = info.codes.zero_point();
                    continue;
                }
            }
            let o = info.output;
            if trace(i, info, &acc[..o.h * o.w * round_up(o.c, 16)]).is_break() {
                return Ok(stats);
            }
        }
        out[..m.classes()].copy_from_slice(&acc[..m.classes()]);
        Ok(stats)
    }

    /// Runs image `index` and returns the predicted class (argmax of the dequantized logits).
    pub fn classify(&self, image: &[u8], index: u64, scratch: &mut [u64], out: &mut [i32]) -> Result<(usize, RunStats), RunError> {
        let stats = self.run(image, index, scratch, out)?;
        Ok((argmax(self.model, &out[..self.model.classes()]), stats))
    }

    fn quantize_input(&self, image: &[u8], codes: &mut [u8]) {
        let m = self.model;
        let lay = code_layout(m, 0);
        let zp = m.input_codes().zero_point();
        codes[..lay.len()].fill(zp as u8);
        let s = lay.shape;
        for c in 0..s.c {
            let plane = &image[c * s.h * s.w..][..s.h * s.w];
            for y in 0..s.h {
                for x in 0..s.w {
                    codes[lay.offset(y, x) + c] = (m.input_code(c, plane[y * s.w + x]) as i32 + zp) as u8;
                }
            }
        }
    }

    /// A convolution or linear stage, with the zero point of its `u8` operands taken back out:
    /// `Σ (x + zp) · w = Σ x · w + zp · Σ w` over every tap, padding included (padding holds `zp`).
    #[allow(clippy::too_many_arguments)]
    fn linear(&self, geom: &ConvGeom, info: &StageInfo, zp: i32, codes: &[u8], w: &[i8], acc: &mut [i32], wsum: &mut [i32]) {
        let max_u8 = info.codes.hi + zp;
        let isa = if self.cfg.isa.exact_for(max_u8, info.max_abs_weight) { self.cfg.isa } else { Isa::Portable };
        kernels::conv(isa, geom, codes, w, acc);
        if zp != 0 {
            let per_block = geom.kh * geom.kw * geom.c4 * 16;
            let wsum = &mut wsum[..geom.o16];
            for (o, s) in wsum.iter_mut().enumerate() {
                let block = &w[(o / 16) * per_block..][..per_block];
                *s = block.chunks_exact(4).skip(o % 16).step_by(16).flatten().map(|&v| v as i32).sum::<i32>() * zp;
            }
            for row in acc[..geom.output_len()].chunks_exact_mut(geom.o16) {
                row.iter_mut().zip(wsum.iter()).for_each(|(a, s)| *a -= s);
            }
        }
    }

    /// One lookup stage: round, perturb as the PBS noise would, apply the tables, and store the
    /// codes where the next linear stage reads them.
    #[allow(clippy::too_many_arguments)]
    fn lookup(
        &self,
        l: &Lookup<'_>,
        info: &StageInfo,
        lay: CodeLayout,
        acc: &[i32],
        codes: &mut [u8],
        tau: &mut [i32],
        vectors: &mut [i32],
        table: &mut [u64],
        sampler: &mut Sampler,
    ) -> RunStats {
        let (s, levels) = (info.output, l.levels());
        let ch = s.c;
        let o16 = round_up(ch, 16);
        let rnd = StageRounding::of(l, self.cfg.rounding_bits);
        let (acc_lo, acc_hi) = rnd.acc_range();
        let (r_lo, r_hi) = rnd.rounded_range();
        for lv in 0..levels {
            for c in 0..ch {
                tau[lv * ch + c] = rnd.threshold(l.threshold(lv, c, ch));
            }
        }
        let tau = &tau[..levels * ch];
        let approximate = self.cfg.mode == RoundingMode::Approximate && rnd.lsbs > 0 && sampler.noise().sigma() > 0.0;
        if approximate {
            sampler.prepare(table);
        }
        let zp = info.codes.zero_point();
        let base = l.out_lo as i32 + zp;
        codes[..lay.len()].fill(zp as u8);
        let (r, cnt) = vectors[..2 * ch].split_at_mut(ch);
        let mut stats = RunStats { lookups: (s.h * s.w * ch) as u64, ..RunStats::default() };
        let beyond = |r: i32| r < r_lo || r > r_hi;
        for p in 0..s.h * s.w {
            let a = &acc[p * o16..][..ch];
            // Whether some input is beyond the table's ends: rare (an accumulator outside its
            // width, or noise at an end), and then read from the table's mirror below.
            let mut mirrored = false;
            for (ri, &ai) in r.iter_mut().zip(a) {
                let outside = ai < acc_lo || ai > acc_hi;
                stats.overflows += outside as u64;
                mirrored |= outside;
                *ri = rnd.round(ai);
            }
            if approximate {
                for (ri, &ai) in r.iter_mut().zip(a) {
                    let j = sampler.approximate_offset(rnd.low_bits(ai), rnd.lsbs, table);
                    if j != 0 {
                        *ri = rnd.wrap(*ri + j);
                        mirrored |= beyond(*ri);
                        stats.noise_events += 1;
                    }
                }
            } else {
                sampler.exact_errors(ch, |c, j| {
                    r[c] = rnd.wrap(r[c] + j);
                    mirrored |= beyond(r[c]);
                    stats.noise_events += 1;
                });
            }
            cnt.fill(0);
            for t in tau.chunks_exact(ch) {
                for ((n, &ti), &ri) in cnt.iter_mut().zip(t).zip(r.iter()) {
                    *n += (ti <= ri) as i32;
                }
            }
            let dst = &mut codes[lay.offset(p / s.w, p % s.w)..][..ch];
            for (d, &n) in dst.iter_mut().zip(cnt.iter()) {
                *d = (base + n) as u8;
            }
            if mirrored {
                for (c, (d, &ri)) in dst.iter_mut().zip(r.iter()).enumerate().filter(|(_, (_, &ri))| beyond(ri)) {
                    *d = (rnd.lookup(l, ri, c, ch) as i32 + zp) as u8;
                }
            }
        }
        stats
    }
}

fn conv_geom(lay: CodeLayout, info: &StageInfo, kh: usize, kw: usize, stride: usize) -> ConvGeom {
    ConvGeom { in_h: lay.rows(), in_w: lay.cols(), c4: lay.c4, kh, kw, stride, out_h: info.output.h, out_w: info.output.w, o16: round_up(info.output.c, 16) }
}

/// The class with the largest dequantized logit (the first one on ties).
pub fn argmax(model: &Model<'_>, acc: &[i32]) -> usize {
    let out = &model.file().output;
    let mut best = (0, f32::NEG_INFINITY);
    for (k, &a) in acc.iter().enumerate() {
        let v = out.logit(k, a);
        if v > best.1 {
            best = (k, v);
        }
    }
    best.0
}
