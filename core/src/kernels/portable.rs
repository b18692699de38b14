//! The portable convolution: plain Rust over the blocked layout, for `no_std` targets without SIMD.
use super::ConvGeom;

/// See [`super::conv`].
pub fn conv(g: &ConvGeom, input: &[u8], w: &[i8], out: &mut [i32]) {
    for p in 0..g.out_h * g.out_w {
        for b in 0..g.o16 / 16 {
            let mut acc = [0i32; 16];
            for (x, wt) in g.taps(input, w, p, b) {
                for (xg, wg) in x.chunks_exact(4).zip(wt.chunks_exact(64)) {
                    for (a, wo) in acc.iter_mut().zip(wg.chunks_exact(4)) {
                        *a += xg[0] as i32 * wo[0] as i32 + xg[1] as i32 * wo[1] as i32 + xg[2] as i32 * wo[2] as i32 + xg[3] as i32 * wo[3] as i32;
                    }
                }
            }
            out[p * g.o16 + b * 16..][..16].copy_from_slice(&acc);
        }
    }
}
