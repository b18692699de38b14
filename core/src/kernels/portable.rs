//! The portable convolution: plain Rust over the blocked layout, for `no_std` targets without SIMD.
use super::ConvGeom;

/// See [`super::conv`].
pub fn conv(g: &ConvGeom, input: &[u8], w: &[i8], out: &mut [i32]) {
    let taps = g.kh * g.kw;
    let groups = g.c4 / 4;
    let block_len = taps * groups * 64;
    for p in 0..g.out_h * g.out_w {
        let win = g.window(p);
        for b in 0..g.o16 / 16 {
            let wb = &w[b * block_len..][..block_len];
            let mut acc = [0i32; 16];
            for t in 0..taps {
                let x = &input[win + g.tap(t)..][..g.c4];
                let wt = &wb[t * groups * 64..][..groups * 64];
                for (xg, wg) in x.chunks_exact(4).zip(wt.chunks_exact(64)) {
                    for (a, wo) in acc.iter_mut().zip(wg.chunks_exact(4)) {
                        *a += xg[0] as i32 * wo[0] as i32
                            + xg[1] as i32 * wo[1] as i32
                            + xg[2] as i32 * wo[2] as i32
                            + xg[3] as i32 * wo[3] as i32;
                    }
                }
            }
            out[p * g.o16 + b * 16..][..16].copy_from_slice(&acc);
        }
    }
}
