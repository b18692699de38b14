//! x86-64 SIMD convolutions over the blocked weight layout.
//!
//! Both kernels broadcast four consecutive input bytes of one output position and multiply them by
//! a 64-byte weight group holding 16 output channels × 4 input channels, accumulating 16 output
//! channels of that position in one register (no horizontal sums). A tile keeps several positions
//! × several 16-channel blocks of accumulators in registers, so each weight load serves several
//! positions and each broadcast several blocks.
use super::{ConvGeom, Isa};
use core::arch::x86_64::*;

/// # Safety
/// The CPU must support `isa`, and the buffers must be as large as `g` says.
pub unsafe fn conv(isa: Isa, g: &ConvGeom, input: &[u8], w: &[i8], out: &mut [i32]) {
    let (inp, wp, outp) = (input.as_ptr(), w.as_ptr(), out.as_mut_ptr());
    match isa {
        // SAFETY: forwarded from the caller.
        Isa::Avx512Vnni => unsafe { conv_vnni(g, inp, wp, outp) },
        Isa::Avx2 => unsafe { conv_avx2(g, inp, wp, outp) },
        Isa::Portable | Isa::Simd128 => unreachable!("only the x86 kernels come here"),
    }
}

/// Positions per tile and 16-channel blocks per tile of the VNNI kernel: 6 × 4 = 24 accumulators,
/// 4 weight registers and a broadcast fit the 32 zmm registers.
const VNNI_NP: usize = 6;
const VNNI_NB: usize = 4;

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn conv_vnni(g: &ConvGeom, input: *const u8, w: *const i8, out: *mut i32) {
    let (positions, blocks) = (g.out_h * g.out_w, g.o16 / 16);
    let mut b = 0;
    while b < blocks {
        let nb = (blocks - b).min(VNNI_NB);
        let mut p = 0;
        while p < positions {
            let np = (positions - p).min(VNNI_NP);
            // SAFETY: tile (p..p+np, b..b+nb) lies inside the geometry the caller vouched for.
            unsafe {
                match nb {
                    1 => vnni_np::<1>(np, g, input, w, out, p, b),
                    2 => vnni_np::<2>(np, g, input, w, out, p, b),
                    3 => vnni_np::<3>(np, g, input, w, out, p, b),
                    _ => vnni_np::<4>(np, g, input, w, out, p, b),
                }
            }
            p += np;
        }
        b += nb;
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn vnni_np<const NB: usize>(np: usize, g: &ConvGeom, input: *const u8, w: *const i8, out: *mut i32, p: usize, b: usize) {
    // SAFETY: forwarded.
    unsafe {
        match np {
            1 => vnni_tile::<1, NB>(g, input, w, out, p, b),
            2 => vnni_tile::<2, NB>(g, input, w, out, p, b),
            3 => vnni_tile::<3, NB>(g, input, w, out, p, b),
            4 => vnni_tile::<4, NB>(g, input, w, out, p, b),
            5 => vnni_tile::<5, NB>(g, input, w, out, p, b),
            _ => vnni_tile::<6, NB>(g, input, w, out, p, b),
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn vnni_tile<const NP: usize, const NB: usize>(g: &ConvGeom, input: *const u8, w: *const i8, out: *mut i32, p0: usize, b0: usize) {
    let (taps, groups) = (g.kh * g.kw, g.c4 / 4);
    let block_len = taps * groups * 64;
    let mut acc = [[_mm512_setzero_si512(); NB]; NP];
    let mut win = [0usize; NP];
    for (i, wi) in win.iter_mut().enumerate() {
        *wi = g.window(p0 + i);
    }
    for t in 0..taps {
        let toff = g.tap(t);
        // SAFETY (whole block): offsets stay inside the buffers the geometry describes.
        unsafe {
            let wt = w.add(b0 * block_len + t * groups * 64);
            for gi in 0..groups {
                let mut wv = [_mm512_setzero_si512(); NB];
                for (j, v) in wv.iter_mut().enumerate() {
                    *v = _mm512_loadu_si512(wt.add(j * block_len + gi * 64).cast());
                }
                for (row, &w0) in acc.iter_mut().zip(&win) {
                    let x = input.add(w0 + toff + gi * 4).cast::<i32>().read_unaligned();
                    let a = _mm512_set1_epi32(x);
                    for (v, &wj) in row.iter_mut().zip(&wv) {
                        *v = _mm512_dpbusd_epi32(*v, a, wj);
                    }
                }
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            // SAFETY: inside the output the geometry describes.
            unsafe { _mm512_storeu_si512(out.add((p0 + i) * g.o16 + (b0 + j) * 16).cast(), v) };
        }
    }
}

/// Positions per tile of the AVX2 kernel: 4 positions × 2 halves = 8 accumulators of 16 ymm.
const AVX2_NP: usize = 4;

#[target_feature(enable = "avx2")]
unsafe fn conv_avx2(g: &ConvGeom, input: *const u8, w: *const i8, out: *mut i32) {
    let positions = g.out_h * g.out_w;
    for b in 0..g.o16 / 16 {
        let mut p = 0;
        while p < positions {
            let np = (positions - p).min(AVX2_NP);
            // SAFETY: tile inside the geometry.
            unsafe {
                match np {
                    1 => avx2_tile::<1>(g, input, w, out, p, b),
                    2 => avx2_tile::<2>(g, input, w, out, p, b),
                    3 => avx2_tile::<3>(g, input, w, out, p, b),
                    _ => avx2_tile::<4>(g, input, w, out, p, b),
                }
            }
            p += np;
        }
    }
}

#[target_feature(enable = "avx2")]
unsafe fn avx2_tile<const NP: usize>(g: &ConvGeom, input: *const u8, w: *const i8, out: *mut i32, p0: usize, b: usize) {
    let (taps, groups) = (g.kh * g.kw, g.c4 / 4);
    let block_len = taps * groups * 64;
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_si256(); 2]; NP];
    let mut win = [0usize; NP];
    for (i, wi) in win.iter_mut().enumerate() {
        *wi = g.window(p0 + i);
    }
    for t in 0..taps {
        let toff = g.tap(t);
        // SAFETY (whole block): offsets stay inside the buffers the geometry describes.
        unsafe {
            let wt = w.add(b * block_len + t * groups * 64);
            for gi in 0..groups {
                let w0 = _mm256_loadu_si256(wt.add(gi * 64).cast());
                let w1 = _mm256_loadu_si256(wt.add(gi * 64 + 32).cast());
                for i in 0..NP {
                    let x = input.add(win[i] + toff + gi * 4).cast::<i32>().read_unaligned();
                    let a = _mm256_set1_epi32(x);
                    // u8 × i8 pairs summed into i16 (exact under `Isa::exact_for`), then pairs of i16 into i32.
                    acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(_mm256_maddubs_epi16(a, w0), ones));
                    acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(_mm256_maddubs_epi16(a, w1), ones));
                }
            }
        }
    }
    for (i, a) in acc.iter().enumerate() {
        // SAFETY: inside the output.
        unsafe {
            let o = out.add((p0 + i) * g.o16 + b * 16);
            _mm256_storeu_si256(o.cast(), a[0]);
            _mm256_storeu_si256(o.add(8).cast(), a[1]);
        }
    }
}
