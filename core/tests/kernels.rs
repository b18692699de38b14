//! Every convolution kernel equals the naive definition, bit for bit, on random geometries.
use cifhe_core::kernels::{self, reference, ConvGeom, Isa};
use cifhe_core::model::{round_up, weight_len, Shape};
use proptest::prelude::*;

fn check(inp: Shape, out_c: usize, k: (usize, usize), stride: usize, pad: usize, x: &[i32], w_seed: &[i8]) {
    let (kh, kw) = k;
    let (c4, o16) = (round_up(inp.c, 4), round_up(out_c, 16));
    // Blocked weights with zero padding lanes: fill the real lanes from the seed bytes.
    let mut w = vec![0i8; weight_len(out_c, inp.c, kh, kw)];
    for o in 0..out_c {
        for c in 0..inp.c {
            for ky in 0..kh {
                for kx in 0..kw {
                    let i = cifhe_core::model::weight_index(o, c, ky, kx, inp.c, kh, kw);
                    w[i] = w_seed[i % w_seed.len()];
                }
            }
        }
    }
    let oh = (inp.h + 2 * pad - kh) / stride + 1;
    let ow = (inp.w + 2 * pad - kw) / stride + 1;
    let mut expect = vec![0; oh * ow * out_c];
    reference::conv(x, inp, &w, out_c, kh, kw, stride, pad, &mut expect);
    // The kernels' operand: codes as u8 in a zero-padded channels-last buffer.
    let (ph, pw) = (inp.h + 2 * pad, inp.w + 2 * pad);
    let mut buf = vec![0u8; ph * pw * c4];
    for y in 0..inp.h {
        for xx in 0..inp.w {
            for c in 0..inp.c {
                buf[((y + pad) * pw + xx + pad) * c4 + c] = x[(y * inp.w + xx) * inp.c + c] as u8;
            }
        }
    }
    let geom = ConvGeom { in_h: ph, in_w: pw, c4, kh, kw, stride, out_h: oh, out_w: ow, o16 };
    for isa in Isa::available() {
        let mut got = vec![-1; geom.output_len()];
        kernels::conv(isa, &geom, &buf, &w, &mut got);
        for p in 0..oh * ow {
            assert_eq!(&got[p * o16..p * o16 + out_c], &expect[p * out_c..(p + 1) * out_c], "{isa:?} position {p}");
            assert!(got[p * o16 + out_c..(p + 1) * o16].iter().all(|&v| v == 0), "{isa:?}: padded outputs must be zero");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn conv_kernels_match_the_definition(
        h in 1usize..9, w in 1usize..9, c in 1usize..21, out_c in 1usize..70,
        kh in 1usize..4, kw in 1usize..4, stride in 1usize..4, pad in 0usize..3,
        x_max in prop::sample::select(vec![1i32, 15, 31, 127, 255]),
        seed in prop::collection::vec(any::<u8>(), 64..512),
        w_seed in prop::collection::vec(-128i8..=127, 64..512),
    ) {
        prop_assume!(h + 2 * pad >= kh && w + 2 * pad >= kw);
        let inp = Shape { h, w, c };
        let x: Vec<i32> = (0..inp.len()).map(|i| seed[i % seed.len()] as i32 % (x_max + 1)).collect();
        // AVX2 is only used where it is exact; keep its operands in that range here too.
        let w_lim: Vec<i8> = if 2 * x_max * 128 > i16::MAX as i32 {
            w_seed.iter().map(|&v| (v as i32 * 32767 / (2 * x_max * 128)) as i8).collect()
        } else { w_seed.clone() };
        check(inp, out_c, (kh, kw), stride, pad, &x, &w_lim);
    }
}

#[test]
fn vgg_sized_layers_match_the_definition() {
    let seed: Vec<i8> = (0..997).map(|i| ((i * 37 % 31) - 15) as i8).collect();
    let x: Vec<i32> = (0..9 * 9 * 128).map(|i| i * 7 % 16).collect();
    check(Shape { h: 9, w: 9, c: 128 }, 256, (3, 3), 1, 1, &x, &seed);
    let x: Vec<i32> = (0..32 * 32 * 3).map(|i| i * 11 % 32).collect();
    check(Shape { h: 32, w: 32, c: 3 }, 64, (3, 3), 1, 1, &x, &seed);
}

#[test]
fn sum_pool_matches_the_definition() {
    let inp = Shape { h: 7, w: 6, c: 5 };
    let x: Vec<i32> = (0..inp.len()).map(|i| (i * 13 % 200) as i32).collect();
    for (k, s) in [(1, 1), (2, 1), (2, 2), (3, 2), (6, 1)] {
        let (oh, ow) = ((inp.h - k) / s + 1, (inp.w - k) / s + 1);
        let mut expect = vec![0; oh * ow * inp.c];
        reference::sum_pool(&x, inp, k, s, &mut expect);
        let buf: Vec<u8> = (0..inp.h * inp.w * 8).map(|i| if i % 8 < 5 { x[i / 8 * 5 + i % 8] as u8 } else { 0 }).collect();
        let mut got = vec![0; oh * ow * 16];
        kernels::sum_pool(&buf, inp.w, 8, k, s, oh, ow, &mut got, 16);
        for p in 0..oh * ow {
            assert_eq!(&got[p * 16..p * 16 + 5], &expect[p * 5..p * 5 + 5], "k {k} s {s} p {p}");
        }
    }
}
