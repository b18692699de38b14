//! The naive definitions, written for clarity, never for speed: what every executor must equal.
//!
//! Tensors here are plain codes (channels-last, no padding, no zero point), so these functions
//! state the circuit's meaning independently of the fast kernels' storage tricks. [`Taps`] is the
//! structure of a linear stage — which inputs, times which weights, make each output — and is the
//! one place that structure is written: the naive integer evaluation below and the TFHE evaluator
//! (which sums ciphertexts instead of integers) both walk it.
use crate::model::{weight_index, Shape, Stage};

/// What a linear stage multiplies its inputs by.
#[derive(Debug, Clone, Copy)]
enum Weights<'w> {
    /// A convolution over all input channels, weights in the blocked layout.
    Dense(&'w [i8]),
    /// A window sum per channel (weight 1).
    Sum,
}

/// The taps of a linear stage (convolution, linear or sum-pool) on an unpadded channels-last input.
#[derive(Debug, Clone, Copy)]
pub struct Taps<'w> {
    weights: Weights<'w>,
    inp: Shape,
    out: Shape,
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
}

impl<'w> Taps<'w> {
    /// A convolution with zero padding: `out[y][x][o] = Σ w[o][c][ky][kx] · x[c][y·s+ky−p][x·s+kx−p]`.
    pub fn conv(inp: Shape, w: &'w [i8], out_c: usize, kh: usize, kw: usize, stride: usize, pad: usize) -> Self {
        let out = Shape { h: (inp.h + 2 * pad - kh) / stride + 1, w: (inp.w + 2 * pad - kw) / stride + 1, c: out_c };
        Taps { weights: Weights::Dense(w), inp, out, kh, kw, stride, pad }
    }

    /// A sum over `k × k` windows with stride `s`, per channel, no padding.
    pub fn sum_pool(inp: Shape, k: usize, s: usize) -> Self {
        let out = Shape { h: (inp.h - k) / s + 1, w: (inp.w - k) / s + 1, c: inp.c };
        Taps { weights: Weights::Sum, inp, out, kh: k, kw: k, stride: s, pad: 0 }
    }

    /// The taps of a model's linear stage reading a tensor of shape `inp` (`None` for a lookup).
    pub fn of_stage(stage: &'w Stage<'_>, inp: Shape) -> Option<Self> {
        Some(match stage {
            Stage::Conv(c) => {
                Self::conv(inp, c.weights(), c.out_channels as usize, c.kernel_h as usize, c.kernel_w as usize, c.stride as usize, c.padding as usize)
            }
            Stage::Linear(l) => Self::conv(inp, l.weights(), l.out_features as usize, inp.h, inp.w, 1, 0),
            Stage::SumPool(p) => Self::sum_pool(inp, p.kernel as usize, p.stride as usize),
            Stage::Lookup(_) => return None,
        })
    }

    /// Shape of the output.
    pub fn output(&self) -> Shape {
        self.out
    }

    /// Calls `f(input index, weight)` for every non-padding tap of output element `o`
    /// (channels-last index into the output).
    #[inline]
    pub fn for_each(&self, o: usize, mut f: impl FnMut(usize, i32)) {
        let (inp, oc) = (self.inp, o % self.out.c);
        let (oy, ox) = ((o / self.out.c) / self.out.w, (o / self.out.c) % self.out.w);
        for ky in 0..self.kh {
            for kx in 0..self.kw {
                let (iy, ix) = ((oy * self.stride + ky) as isize - self.pad as isize, (ox * self.stride + kx) as isize - self.pad as isize);
                if iy < 0 || ix < 0 || iy >= inp.h as isize || ix >= inp.w as isize {
                    continue;
                }
                let base = (iy as usize * inp.w + ix as usize) * inp.c;
                match self.weights {
                    Weights::Dense(w) => {
                        for c in 0..inp.c {
                            f(base + c, w[weight_index(oc, c, ky, kx, inp.c, self.kh, self.kw)] as i32);
                        }
                    }
                    Weights::Sum => f(base + oc, 1),
                }
            }
        }
    }

    /// Largest 2-norm, over output channels, of the weights one output sums (what an output's
    /// noise grows by when the inputs are independent noisy ciphertexts).
    pub fn max_weight_norm(&self) -> f64 {
        let per_position = self.out.c;
        let largest = (0..per_position)
            .map(|o| {
                let mut s = 0.0;
                // The centre position of the output sees every tap (no padding cut).
                let centre = ((self.out.h / 2) * self.out.w + self.out.w / 2) * self.out.c + o;
                self.for_each(centre, |_, w| s += (w * w) as f64);
                s
            })
            .fold(0.0f64, f64::max);
        libm::sqrt(largest)
    }

    /// Evaluates the stage on integer codes.
    pub fn apply(&self, x: &[i32], out: &mut [i32]) -> Shape {
        for (o, v) in out[..self.out.len()].iter_mut().enumerate() {
            let mut acc = 0i32;
            self.for_each(o, |i, w| acc += x[i] * w);
            *v = acc;
        }
        self.out
    }
}

/// Convolution with zero padding (see [`Taps::conv`]).
#[allow(clippy::too_many_arguments)]
pub fn conv(x: &[i32], inp: Shape, w: &[i8], out_c: usize, kh: usize, kw: usize, stride: usize, pad: usize, out: &mut [i32]) -> Shape {
    Taps::conv(inp, w, out_c, kh, kw, stride, pad).apply(x, out)
}

/// Sum over `k × k` windows with stride `s`, no padding.
pub fn sum_pool(x: &[i32], inp: Shape, k: usize, s: usize, out: &mut [i32]) -> Shape {
    Taps::sum_pool(inp, k, s).apply(x, out)
}

/// The input codes of `image` (channel planes of pixels), channels-last.
#[cfg(feature = "std")]
pub fn input_codes(model: &crate::Model<'_>, image: &[u8]) -> Vec<i32> {
    let s = model.input_shape();
    (0..s.h * s.w * s.c)
        .map(|i| {
            let (p, c) = (i / s.c, i % s.c);
            model.input_code(c, image[c * s.h * s.w + p]) as i32
        })
        .collect()
}

/// The whole circuit, naively, with exact rounding and no noise: the final accumulators of `image`.
/// Independent of the simulator's buffers, zero points and rounded thresholds, so tests can hold
/// the simulator and the TFHE evaluator to it.
#[cfg(feature = "std")]
pub fn evaluate(model: &crate::Model<'_>, image: &[u8], rounding_bits: Option<u8>) -> Vec<i32> {
    use crate::rounding::StageRounding;
    let mut x = input_codes(model, image);
    let mut shape = model.input_shape();
    for (stage, info) in model.stages().iter().zip(model.info()) {
        let mut out = vec![0i32; info.output.len()];
        shape = match stage {
            Stage::Lookup(l) => {
                let rnd = StageRounding::of(l, rounding_bits);
                for (i, o) in out.iter_mut().enumerate() {
                    *o = rnd.lookup(l, rnd.round(x[i]), i % shape.c, shape.c) as i32;
                }
                shape
            }
            linear => Taps::of_stage(linear, shape).expect("a linear stage").apply(&x, &mut out),
        };
        x = out;
    }
    x
}
