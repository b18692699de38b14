//! The WebAssembly SIMD convolution (`simd128`, which every current browser runs).
//!
//! WebAssembly has no u8 × i8 dot product, so each group of 4 input channels is widened to i16
//! once, as `[x0 x1 x2 x3 x0 x1 x2 x3]`, and each 16-byte weight row (4 output channels × 4 input
//! channels) as two i16 vectors; `i32x4.dot_i16x8_s` then sums pairs of products, exactly (at most
//! 2 · 255 · 128 per lane). Each output channel thus collects two partial sums, added once at the
//! end of its window.
use super::ConvGeom;
use core::arch::wasm32::*;

/// See [`super::conv`]; the caller has checked the buffer sizes against `g`.
pub fn conv(g: &ConvGeom, input: &[u8], w: &[i8], out: &mut [i32]) {
    for p in 0..g.out_h * g.out_w {
        for b in 0..g.o16 / 16 {
            // acc[j]: the two partial sums of output channels 2j and 2j + 1.
            let mut acc = [i32x4_splat(0); 8];
            for (x, wt) in g.taps(input, w, p, b) {
                for (xg, wg) in x.chunks_exact(4).zip(wt.chunks_exact(64)) {
                    let xs = u16x8_extend_low_u8x16(u32x4_splat(u32::from_le_bytes([xg[0], xg[1], xg[2], xg[3]])));
                    for (r, row) in wg.chunks_exact(16).enumerate() {
                        // SAFETY: `row` is 16 bytes long; v128 loads need no alignment.
                        let wr = unsafe { v128_load(row.as_ptr() as *const v128) };
                        acc[2 * r] = i32x4_add(acc[2 * r], i32x4_dot_i16x8(i16x8_extend_low_i8x16(wr), xs));
                        acc[2 * r + 1] = i32x4_add(acc[2 * r + 1], i32x4_dot_i16x8(i16x8_extend_high_i8x16(wr), xs));
                    }
                }
            }
            let dst = &mut out[p * g.o16 + b * 16..][..16];
            for (q, pair) in acc.chunks_exact(2).enumerate() {
                // [a0 + a1, a2 + a3, b0 + b1, b2 + b3]: output channels 4q … 4q + 3.
                let sums = i32x4_add(i32x4_shuffle::<0, 2, 4, 6>(pair[0], pair[1]), i32x4_shuffle::<1, 3, 5, 7>(pair[0], pair[1]));
                // SAFETY: `dst` holds 16 channels, so 4q … 4q + 3 are inside it.
                unsafe { v128_store(dst[4 * q..].as_mut_ptr() as *mut v128, sums) };
            }
        }
    }
}
