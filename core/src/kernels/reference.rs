//! The naive definitions, written for clarity, never for speed: what every kernel must equal.
//!
//! Tensors here are plain codes (`i32`, channels-last, no padding, no zero point), so these
//! functions state the circuit's meaning independently of the fast kernels' storage tricks.
use crate::model::{weight_index, Shape};

/// Convolution with zero padding: `out[y][x][o] = Σ w[o][c][ky][kx] · x[c][y·s+ky−p][x·s+kx−p]`.
#[allow(clippy::too_many_arguments)]
pub fn conv(x: &[i32], inp: Shape, w: &[i8], out_c: usize, kh: usize, kw: usize, stride: usize, pad: usize, out: &mut [i32]) -> Shape {
    let oh = (inp.h + 2 * pad - kh) / stride + 1;
    let ow = (inp.w + 2 * pad - kw) / stride + 1;
    for oy in 0..oh {
        for ox in 0..ow {
            for o in 0..out_c {
                let mut acc = 0i32;
                for ky in 0..kh {
                    for kx in 0..kw {
                        let (iy, ix) = ((oy * stride + ky) as isize - pad as isize, (ox * stride + kx) as isize - pad as isize);
                        if iy < 0 || ix < 0 || iy >= inp.h as isize || ix >= inp.w as isize {
                            continue;
                        }
                        for c in 0..inp.c {
                            let xv = x[(iy as usize * inp.w + ix as usize) * inp.c + c];
                            acc += xv * w[weight_index(o, c, ky, kx, inp.c, kh, kw)] as i32;
                        }
                    }
                }
                out[(oy * ow + ox) * out_c + o] = acc;
            }
        }
    }
    Shape { h: oh, w: ow, c: out_c }
}

/// Sum over `k × k` windows with stride `s`, no padding.
pub fn sum_pool(x: &[i32], inp: Shape, k: usize, s: usize, out: &mut [i32]) -> Shape {
    let (oh, ow) = ((inp.h - k) / s + 1, (inp.w - k) / s + 1);
    for oy in 0..oh {
        for ox in 0..ow {
            for c in 0..inp.c {
                let mut acc = 0;
                for ky in 0..k {
                    for kx in 0..k {
                        acc += x[((oy * s + ky) * inp.w + ox * s + kx) * inp.c + c];
                    }
                }
                out[(oy * ow + ox) * inp.c + c] = acc;
            }
        }
    }
    Shape { h: oh, w: ow, c: inp.c }
}

/// The whole circuit, naively, with exact rounding and no noise: the final accumulators of `image`.
/// Independent of the simulator's buffers, zero points and rounded thresholds, so tests can hold
/// the simulator (and later the TFHE evaluator) to it.
#[cfg(feature = "std")]
pub fn evaluate(model: &crate::Model<'_>, image: &[u8], rounding_bits: Option<u8>) -> Vec<i32> {
    use crate::model::Stage;
    use crate::rounding::StageRounding;
    let s = model.input_shape();
    let mut x: Vec<i32> = (0..s.h * s.w * s.c)
        .map(|i| {
            let (p, c) = (i / s.c, i % s.c);
            model.input_code(c, image[c * s.h * s.w + p]) as i32
        })
        .collect();
    let mut shape = s;
    for (stage, info) in model.stages().iter().zip(model.info()) {
        let mut out = vec![0i32; info.output.len()];
        shape = match stage {
            Stage::Conv(c) => conv(
                &x,
                shape,
                c.weights(),
                c.out_channels as usize,
                c.kernel_h as usize,
                c.kernel_w as usize,
                c.stride as usize,
                c.padding as usize,
                &mut out,
            ),
            Stage::Linear(l) => conv(&x, shape, l.weights(), l.out_features as usize, shape.h, shape.w, 1, 0, &mut out),
            Stage::SumPool(p) => sum_pool(&x, shape, p.kernel as usize, p.stride as usize, &mut out),
            Stage::Lookup(l) => {
                let rnd = StageRounding::new(l.acc_bits, rounding_bits);
                for (i, o) in out.iter_mut().enumerate() {
                    let r = rnd.round(x[i]);
                    *o = l.apply(r << rnd.lsbs, i % shape.c, shape.c) as i32;
                }
                shape
            }
        };
        x = out;
    }
    x
}
